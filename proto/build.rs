//! Generates clients, servers and messages for every contract under `proto/`,
//! plus one encoded descriptor set per package for gRPC server reflection.

const PACKAGES: &[(&str, &str)] = &[
    ("user", "user/v1/user.proto"),
    ("content", "content/v1/content.proto"),
    ("comment", "comment/v1/comment.proto"),
    // new-service: packages
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    for (name, file) in PACKAGES {
        println!("cargo:rerun-if-changed={file}");
        tonic_prost_build::configure()
            .file_descriptor_set_path(out_dir.join(format!("{name}_descriptor.bin")))
            .compile_protos(&[*file], &["."])?;
    }
    Ok(())
}
