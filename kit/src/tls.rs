//! TLS to the data stores and to etcd: the certificate files a connection
//! trusts and presents.
//!
//! TLS needs the cargo feature `kit/tls` (rustls with ring, Mozilla's roots
//! compiled in; the Docker image turns it on). A build without it refuses a
//! TLS URL or TLS settings at start-up with an error naming the feature,
//! instead of failing at the first connection or falling back to plaintext.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Whether this build can speak TLS to the data stores and etcd.
pub const BUILT: bool = cfg!(feature = "tls");

/// PEM files for one TLS client. All optional: without `ca_file` the server
/// must present a certificate from a public CA (Mozilla's roots); without
/// `cert_file`/`key_file` the client presents none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsFiles {
    /// CA bundle (PEM) that signs the server's certificate, for a private CA.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM, chain allowed), for servers that ask for one.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
}

/// Why TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "{what} asks for TLS, but this binary was built without it: build with the cargo \
         feature `kit/tls` (`cargo build --features kit/tls`; the Docker image has it)"
    )]
    NotBuilt { what: &'static str },
    #[error("{what}: cert_file and key_file go together (a client certificate needs its key)")]
    HalfIdentity { what: &'static str },
    #[error("{what}: TLS files are set, but {why}")]
    NotTls {
        what: &'static str,
        why: &'static str,
    },
    #[error("{what}: cannot read {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The contents of [`TlsFiles`], read once.
#[derive(Clone, Default)]
pub struct TlsPem {
    pub ca: Option<Vec<u8>>,
    /// Certificate chain and key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a private key.
        f.debug_struct("TlsPem")
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

impl TlsFiles {
    /// Whether any file is set.
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }

    /// Checks that TLS is built in and reads the files; `what` names the
    /// settings section in errors (`discovery.tls`, …).
    pub fn read(&self, what: &'static str) -> Result<TlsPem, TlsError> {
        if !BUILT {
            return Err(TlsError::NotBuilt { what });
        }
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.to_owned(),
                source,
            })
        };
        let ca = self.ca_file.as_deref().map(read).transpose()?;
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            (None, None) => None,
            _ => return Err(TlsError::HalfIdentity { what }),
        };
        Ok(TlsPem { ca, identity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "tls"))]
    #[test]
    fn a_build_without_tls_refuses_tls_files_naming_the_feature() {
        let files = TlsFiles {
            ca_file: Some("/etc/ssl/ca.pem".into()),
            ..Default::default()
        };
        let message = files.read("cache.tls").unwrap_err().to_string();
        assert!(message.contains("cache.tls"), "{message}");
        assert!(message.contains("`kit/tls`"), "{message}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let files = TlsFiles {
            cert_file: Some("/etc/ssl/client.pem".into()),
            ..Default::default()
        };
        assert!(matches!(
            files.read("discovery.tls"),
            Err(TlsError::HalfIdentity { .. })
        ));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn an_unreadable_file_is_named() {
        let files = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let message = files.read("database.tls").unwrap_err().to_string();
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }
}
