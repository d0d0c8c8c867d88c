//! The TLS client configuration: trust anchors and protocol versions.
//!
//! Owns building one `rustls::ClientConfig` per client: the Mozilla roots
//! from `webpki-roots`, plus any PEM certificates the user names (curl's
//! `--cacert`), with the `ring` provider and TLS 1.2 and 1.3. There is no
//! option that disables verification. Handshakes happen in `conn`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::error::{Error, ErrorKind, Result};

/// Builds the configuration, trusting the Mozilla roots and `extra_roots`.
pub fn client_config(extra_roots: &[impl AsRef<Path>]) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for path in extra_roots {
        let path = path.as_ref();
        let mut added = 0;
        let certificates = CertificateDer::pem_file_iter(path).map_err(|e| {
            Error::new(ErrorKind::Io, format!("cannot read CA certificates ({e})"))
                .with_subject(path.display())
        })?;
        for certificate in certificates {
            let certificate = certificate.map_err(|e| {
                Error::new(ErrorKind::Tls, format!("invalid PEM certificate ({e})"))
                    .with_subject(path.display())
            })?;
            roots.add(certificate).map_err(|e| {
                Error::new(ErrorKind::Tls, format!("unusable CA certificate ({e})"))
                    .with_subject(path.display())
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(
                Error::new(ErrorKind::Tls, "no PEM certificate found").with_subject(path.display())
            );
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Tls, e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
