//! Test certificates: a CA made at test time, a server certificate it signs
//! for the names a test chooses, the CA written to a PEM file for
//! `--cacert`, and the rustls server configuration (ring provider); and
//! self-signed certificates as people make them, with `openssl req -x509`
//! (or rcgen, for dates `openssl` 3.0 cannot set), with their key pins.

use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{run_tool, unique_temp_path};

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

    /// One self-signed certificate marked as a CA, as `openssl req -x509`
    /// makes it, for `names`, valid from `not_before` to `not_after`
    /// (year, month, day), served as the server's own and trusted as the CA.
    pub fn self_signed_between(
        names: &[&str],
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> TestPki {
        let key: KeyPair = KeyPair::generate().expect("key");
        let mut params: CertificateParams =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let cert: rcgen::Certificate = params.self_signed(&key).expect("cert");
        TestPki::serving(&cert, &cert, &key)
    }

    /// A self-signed certificate for `localhost` trusted as the server's
    /// own, served by an impostor that lacks its key: the handshake is
    /// signed with another key of the same kind.
    pub fn impostor() -> TestPki {
        let real_key: KeyPair = KeyPair::generate().expect("key");
        let mut params: CertificateParams =
            CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert: rcgen::Certificate = params.self_signed(&real_key).expect("cert");
        let other_key: KeyPair = KeyPair::generate().expect("another key");
        let ca_pem_path: PathBuf = unique_temp_path("ca").with_extension("pem");
        std::fs::write(&ca_pem_path, cert.pem()).expect("write CA PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing_key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                other_key.serialize_der(),
            )))
            .expect("signing key");
        // Built by hand: rustls's own builder refuses a key that does not
        // match the certificate.
        let certified = rustls::sign::CertifiedKey::new(vec![cert.der().clone()], signing_key);
        let config: rustls::ServerConfig = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(AlwaysThis(Arc::new(certified))));
        TestPki {
            ca_pem_path,
            ca_der: cert.der().clone(),
            server_config: Arc::new(config),
        }
    }

    /// Serves the certificate of the PEM file `cert` with the PEM key
    /// `key`, and trusts a copy of that file as the CA file.
    pub fn from_pem_files(cert: &Path, key: &Path) -> TestPki {
        use rustls::pki_types::pem::PemObject;
        let ca_pem_path: PathBuf = unique_temp_path("ca").with_extension("pem");
        std::fs::copy(cert, &ca_pem_path).expect("copy the certificate");
        let der: CertificateDer<'static> = CertificateDer::from_pem_file(cert).expect("cert PEM");
        let key: PrivateKeyDer<'static> = PrivateKeyDer::from_pem_file(key).expect("key PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config: rustls::ServerConfig = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .expect("server config");
        TestPki {
            ca_pem_path,
            ca_der: der,
            server_config: Arc::new(config),
        }
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

/// Presents one certificate and key, whatever the client asks for.
#[derive(Debug)]
struct AlwaysThis(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for AlwaysThis {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A self-signed certificate and its key, made in `dir` the way most people
/// make a test certificate (`CA:TRUE`, as `openssl req -x509` sets by
/// default), for the subject alternative name `san` (`DNS:localhost`).
/// `None` when `openssl` is not installed (see `support::skip`).
pub struct OpensslCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl OpensslCertificate {
    pub fn new(dir: &Path, label: &str, san: &str) -> Option<OpensslCertificate> {
        let cert: PathBuf = dir.join(format!("{label}.cert.pem"));
        let key: PathBuf = dir.join(format!("{label}.key.pem"));
        let san: String = format!("subjectAltName={san}");
        openssl(&[
            "req".as_ref(),
            "-x509".as_ref(),
            "-newkey".as_ref(),
            "rsa:2048".as_ref(),
            "-nodes".as_ref(),
            "-keyout".as_ref(),
            key.as_os_str(),
            "-out".as_ref(),
            cert.as_os_str(),
            "-subj".as_ref(),
            "/CN=localhost".as_ref(),
            "-addext".as_ref(),
            san.as_ref(),
        ])?;
        Some(OpensslCertificate { cert, key })
    }

    /// The certificate's public key as a PEM file, written next to it
    /// (`openssl x509 -pubkey`).
    pub fn public_key_pem(&self) -> Option<PathBuf> {
        let path: PathBuf = self.cert.with_extension("pub.pem");
        let pem: String = openssl(&[
            "x509".as_ref(),
            "-in".as_ref(),
            self.cert.as_os_str(),
            "-pubkey".as_ref(),
            "-noout".as_ref(),
        ])?;
        std::fs::write(&path, pem).expect("write the public key");
        Some(path)
    }

    /// The key's pin, `sha256//BASE64`, computed as curl's manual says:
    /// `openssl pkey -pubin -outform der | openssl dgst -sha256 -binary |
    /// openssl enc -base64`.
    pub fn pin(&self) -> Option<String> {
        let public: PathBuf = self.public_key_pem()?;
        let der: PathBuf = self.cert.with_extension("pub.der");
        let digest: PathBuf = self.cert.with_extension("pub.sha256");
        openssl(&[
            "pkey".as_ref(),
            "-pubin".as_ref(),
            "-in".as_ref(),
            public.as_os_str(),
            "-outform".as_ref(),
            "der".as_ref(),
            "-out".as_ref(),
            der.as_os_str(),
        ])?;
        openssl(&[
            "dgst".as_ref(),
            "-sha256".as_ref(),
            "-binary".as_ref(),
            "-out".as_ref(),
            digest.as_os_str(),
            der.as_os_str(),
        ])?;
        let base64: String = openssl(&[
            "enc".as_ref(),
            "-base64".as_ref(),
            "-in".as_ref(),
            digest.as_os_str(),
        ])?;
        Some(format!("sha256//{}", base64.trim()))
    }
}

fn openssl(args: &[&OsStr]) -> Option<String> {
    run_tool("openssl", args)
}
