//! Whether a server's certificate is accepted: the one place that decides.
//!
//! Owns [`Verifier`], the `rustls` certificate verifier of every client,
//! and [`PinnedKeys`], curl's `--pinnedpubkey` values. Three ways to
//! accept a certificate, each keeping the checks people count on:
//!
//! - **Pinned keys** (when any are given): the certificate's public key
//!   must be one of them, whatever else is true; no chain is needed, since
//!   the key is what the user vouched for. Its names and dates are still
//!   checked.
//! - **The certificate itself in a CA file**: a server whose certificate
//!   is byte-identical to one the user trusts (the self-signed certificate
//!   `openssl req -x509` makes, which says `CA:TRUE`, and which webpki
//!   refuses as a server's own) is accepted with its names and dates
//!   checked.
//! - **Otherwise** webpki's verifier: a chain to the Mozilla roots or to a
//!   CA file's certificates.
//!
//! In every case the handshake's signature is checked against the
//! certificate's key, so a server has to hold the private key. Nothing here
//! turns a check off. Building the TLS configuration is `tls`'s.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::error::{Error, ErrorKind, Result};
use crate::http::x509;
use crate::sha256::Sha256;
use crate::util::base64;

/// How a pin is spelled: curl's prefix, then the base64 of a SHA-256
/// digest of the key's DER `SubjectPublicKeyInfo`.
const PIN_PREFIX: &str = "sha256//";

/// The SHA-256 digests of the public keys a server may present, as curl's
/// `--pinnedpubkey` gives them. Empty: no key is pinned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinnedKeys(Vec<[u8; 32]>);

impl PinnedKeys {
    /// Adds the pins of one value: `sha256//BASE64`, several joined by `;`,
    /// or the path of a public key file (PEM `PUBLIC KEY` or DER), as curl
    /// takes them. An error names the value.
    pub fn add(&mut self, value: &str) -> Result<()> {
        if !value.starts_with(PIN_PREFIX) {
            self.0.push(digest_of_key_file(Path::new(value))?);
            return Ok(());
        }
        for pin in value.split(';') {
            let digest = pin
                .strip_prefix(PIN_PREFIX)
                .and_then(base64::decode)
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        "pinned public key: not sha256// and the base64 of a 32-byte SHA-256 \
                         digest (44 characters ending in =)",
                    )
                    .with_subject(if pin.is_empty() { value } else { pin })
                })?;
            self.0.push(digest);
        }
        Ok(())
    }

    /// True when no key is pinned.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `spki` (a DER `SubjectPublicKeyInfo`) is one of the keys.
    fn allows(&self, spki: &[u8]) -> bool {
        self.0.contains(&spki_digest(spki))
    }

    /// The pins as they are written.
    fn spelled(&self) -> Vec<String> {
        self.0.iter().map(spell).collect()
    }
}

fn spki_digest(spki: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(spki);
    hash.finish()
}

fn spell(digest: &[u8; 32]) -> String {
    format!("{PIN_PREFIX}{}", base64::encode(digest))
}

/// The digest of the public key in the file at `path`: PEM (`-----BEGIN
/// PUBLIC KEY-----`, what `openssl pkey -pubout` writes) or else DER.
fn digest_of_key_file(path: &Path) -> Result<[u8; 32]> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::SubjectPublicKeyInfoDer;
    let unusable = |what: String| {
        Error::new(ErrorKind::Io, format!("pinned public key file: {what}"))
            .with_subject(path.display())
    };
    let bytes = std::fs::read(path).map_err(|e| {
        unusable(format!(
            "{e} (a pin is a key file or {PIN_PREFIX} and the base64 of its digest)"
        ))
    })?;
    if bytes.starts_with(b"-----BEGIN") {
        let key = SubjectPublicKeyInfoDer::from_pem_slice(&bytes)
            .map_err(|_| unusable("no PEM PUBLIC KEY in it".to_owned()))?;
        return Ok(spki_digest(key.as_ref()));
    }
    // DER: a SEQUENCE, as every SubjectPublicKeyInfo is.
    if bytes.first() != Some(&0x30) {
        return Err(unusable("neither a PEM nor a DER public key".to_owned()));
    }
    Ok(spki_digest(&bytes))
}

/// A server's key is not one of those pinned: the pins and the key's own
/// spelling, so that a user who means to trust it can see what to pin.
#[derive(Debug)]
pub struct KeyNotPinned {
    pub presented: String,
    pub pinned: Vec<String>,
}

impl std::fmt::Display for KeyNotPinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "its public key is {}, not the pinned {}",
            self.presented,
            self.pinned.join(" or ")
        )
    }
}

impl std::error::Error for KeyNotPinned {}

/// The certificate verifier of a client (see the module's documentation).
#[derive(Debug)]
pub struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// Every certificate of the CA files, each trusted as a server's own.
    trusted_as_is: Vec<CertificateDer<'static>>,
    pins: PinnedKeys,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    /// A verifier trusting `roots` as authorities, `trusted_as_is` as
    /// servers' own certificates, and requiring one of `pins` if any.
    pub fn new(
        roots: rustls::RootCertStore,
        trusted_as_is: Vec<CertificateDer<'static>>,
        pins: PinnedKeys,
        provider: Arc<CryptoProvider>,
    ) -> Result<Verifier> {
        let algorithms = provider.signature_verification_algorithms;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| Error::new(ErrorKind::Tls, e.to_string()))?;
        Ok(Verifier {
            webpki,
            trusted_as_is,
            pins,
            algorithms,
        })
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if !self.pins.is_empty() {
            let parsed = ParsedCertificate::try_from(end_entity)?;
            let spki = parsed.subject_public_key_info();
            if !self.pins.allows(spki.as_ref()) {
                let refusal = KeyNotPinned {
                    presented: spell(&spki_digest(spki.as_ref())),
                    pinned: self.pins.spelled(),
                };
                return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(refusal)),
                )));
            }
            return check_dates_and_name(end_entity, &parsed, server_name, now);
        }
        if self
            .trusted_as_is
            .iter()
            .any(|trusted| trusted.as_ref() == end_entity.as_ref())
        {
            let parsed = ParsedCertificate::try_from(end_entity)?;
            return check_dates_and_name(end_entity, &parsed, server_name, now);
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The checks a certificate accepted without a chain still passes: `now`
/// inside its validity, then `server_name` among its names (webpki's order,
/// and its errors, so that they read the same).
fn check_dates_and_name(
    der: &CertificateDer<'_>,
    parsed: &ParsedCertificate<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> std::result::Result<ServerCertVerified, rustls::Error> {
    let validity = x509::validity(der.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let at = |secs: i64| UnixTime::since_unix_epoch(Duration::from_secs(secs.max(0) as u64));
    let seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if seconds < validity.not_before {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYetContext {
                time: now,
                not_before: at(validity.not_before),
            },
        ));
    }
    if seconds > validity.not_after {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: now,
                not_after: at(validity.not_after),
            },
        ));
    }
    rustls::client::verify_server_name(parsed, server_name)?;
    Ok(ServerCertVerified::assertion())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_read_as_curl_writes_them() {
        let a = base64::encode(&[1; 32]);
        let b = base64::encode(&[2; 32]);
        let mut pins = PinnedKeys::default();
        pins.add(&format!("sha256//{a}")).unwrap();
        pins.add(&format!("sha256//{a};sha256//{b}")).unwrap();
        assert_eq!(pins, PinnedKeys(vec![[1; 32], [1; 32], [2; 32]]));
        assert_eq!(pins.spelled()[2], format!("sha256//{b}"));
    }

    #[test]
    fn a_malformed_pin_is_refused_naming_it() {
        let short = base64::encode(&[1; 20]);
        let good = format!("sha256//{}", base64::encode(&[1; 32]));
        for (value, named) in [
            (format!("sha256//{short}"), format!("sha256//{short}")),
            (
                "sha256//not base64".to_owned(),
                "sha256//not base64".to_owned(),
            ),
            (format!("{good};sha1//{short}"), format!("sha1//{short}")),
            (format!("{good};"), format!("{good};")),
        ] {
            let err = PinnedKeys::default().add(&value).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert_eq!(err.subject(), Some(&named[..]), "{err}");
            assert!(err.to_string().contains("sha256//"), "{err}");
        }
    }

    #[test]
    fn a_key_file_is_pinned_by_the_digest_of_its_key() {
        let key = rcgen::KeyPair::generate().unwrap();
        let dir = std::env::temp_dir().join(format!("partfetch-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("key.pem");
        let der = dir.join("key.der");
        std::fs::write(&pem, key.public_key_pem()).unwrap();
        std::fs::write(&der, key.public_key_der()).unwrap();
        let expected = spki_digest(&key.public_key_der());
        for path in [&pem, &der] {
            let mut pins = PinnedKeys::default();
            pins.add(path.to_str().unwrap()).unwrap();
            assert_eq!(pins, PinnedKeys(vec![expected]));
        }
        let missing = dir.join("missing.pem");
        let err = PinnedKeys::default()
            .add(missing.to_str().unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(err.subject(), Some(&missing.display().to_string()[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
