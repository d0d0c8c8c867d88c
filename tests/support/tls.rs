//! Test certificates: a CA made at test time, a server certificate it signs
//! for the names a test chooses, the CA written to a PEM file for
//! `--cacert`, and the rustls server configuration (ring provider).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::unique_temp_path;

/// A test CA, a server certificate and key, and the CA's PEM file (removed
/// on drop).
pub struct TestPki {
    ca_pem_path: PathBuf,
    ca_der: CertificateDer<'static>,
    server_config: Arc<rustls::ServerConfig>,
}

impl TestPki {
    /// A CA and a server certificate for `localhost` and `127.0.0.1`.
    pub fn new() -> TestPki {
        TestPki::for_names(&["localhost", "127.0.0.1"])
    }

    /// A CA and a server certificate whose subject alternative names are
    /// exactly `names` (an IP address literal becomes an IP SAN).
    pub fn for_names(names: &[&str]) -> TestPki {
        let ca_key: KeyPair = KeyPair::generate().expect("CA key");
        let mut ca_params: CertificateParams =
            CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "partfetch test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert: rcgen::Certificate = ca_params.self_signed(&ca_key).expect("CA cert");

        let server_key: KeyPair = KeyPair::generate().expect("server key");
        let mut params: CertificateParams =
            CertificateParams::new(Vec::<String>::new()).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("test"));
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into().expect("DNS name")),
            })
            .collect();
        let server_cert: rcgen::Certificate = params
            .signed_by(&server_key, &ca_cert, &ca_key)
            .expect("server cert");

        TestPki::serving(&ca_cert, &server_cert, &server_key)
    }

    /// Trusts `ca` (written to a PEM file) and serves `cert` with `key`.
    fn serving(ca: &rcgen::Certificate, cert: &rcgen::Certificate, key: &KeyPair) -> TestPki {
        let ca_pem_path: PathBuf = unique_temp_path("ca").with_extension("pem");
        std::fs::write(&ca_pem_path, ca.pem()).expect("write CA PEM");
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key: PrivateKeyDer<'static> =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config: rustls::ServerConfig = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        TestPki {
            ca_pem_path,
            ca_der: ca.der().clone(),
            server_config: Arc::new(config),
        }
    }

    /// One self-signed certificate for `127.0.0.1` marked as a CA
    /// (`CA:TRUE`, as `openssl req -x509` makes by default), served as the
    /// server's own and trusted as the CA.
    pub fn ca_as_server() -> TestPki {
        let key: KeyPair = KeyPair::generate().expect("key");
        let mut params: CertificateParams =
            CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().expect("IP"))];
        let cert: rcgen::Certificate = params.self_signed(&key).expect("cert");
        TestPki::serving(&cert, &cert, &key)
    }

    /// The CA certificate as a PEM file, for `--cacert`.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_pem_path
    }

    /// The CA certificate, DER, for a rustls client in self-tests.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// The server configuration for [`super::Server::https`].
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.server_config)
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_pem_path);
    }
}
