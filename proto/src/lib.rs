//! The newsroom gRPC contracts.
//!
//! Package names (`user.v1`, `content.v1`, `comment.v1`) are a public contract:
//! outside clients are generated from the same `.proto` files, so a breaking
//! change means a new `v2` package, never an edit in place.

pub mod user {
    pub mod v1 {
        tonic::include_proto!("user.v1");
        /// Encoded descriptors for gRPC server reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            tonic::include_file_descriptor_set!("user_descriptor");
    }
}

pub mod content {
    pub mod v1 {
        tonic::include_proto!("content.v1");
        /// Encoded descriptors for gRPC server reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            tonic::include_file_descriptor_set!("content_descriptor");
    }
}

pub mod comment {
    pub mod v1 {
        tonic::include_proto!("comment.v1");
        /// Encoded descriptors for gRPC server reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            tonic::include_file_descriptor_set!("comment_descriptor");
    }
}

// new-service: packages

pub use prost_types::Timestamp;
