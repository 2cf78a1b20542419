//! The relay's TLS identity: a self-signed certificate made on first start and kept in the
//! state folder (the only thing the relay ever writes to disk), the TLS 1.3 server
//! configurations of ALPN `hum/1`, `hum/2` and `hum/2-link` (docs/PROTOCOL.md §1, hum/2
//! §H1), and the pinned verifiers of both directions.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use hum_shared::CertFingerprint;
use hum_shared::route::{ALPN_HUM2, ALPN_LINK, RelayId};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DistinguishedName, ServerConfig};

use crate::RelayError;

/// The ALPN protocol name of hum/1.
pub const ALPN: &[u8] = b"hum/1";
const KEY_FILE: &str = "relay-key.der";
const CERT_FILE: &str = "relay-cert.der";

/// The relay's certificate and key.
pub(crate) struct TlsIdentity {
    pub(crate) cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Reads the identity from `dir`, or makes one and stores it there; with no folder,
    /// makes one held in memory only.
    pub(crate) fn load_or_create(dir: Option<&Path>) -> Result<Self, RelayError> {
        let Some(dir) = dir else {
            return Self::generate();
        };
        let state = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RelayError::State { path, source }
        };
        let (key_path, cert_path) = (dir.join(KEY_FILE), dir.join(CERT_FILE));
        if key_path.exists() && cert_path.exists() {
            let key = fs::read(&key_path).map_err(state(&key_path))?;
            let cert = fs::read(&cert_path).map_err(state(&cert_path))?;
            return Ok(Self {
                cert: CertificateDer::from(cert),
                key: PrivatePkcs8KeyDer::from(key),
            });
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(state(dir))?;
        let id = Self::generate()?;
        write_private(&key_path, id.key.secret_pkcs8_der(), 0o600).map_err(state(&key_path))?;
        write_private(&cert_path, &id.cert, 0o644).map_err(state(&cert_path))?;
        Ok(id)
    }

    fn generate() -> Result<Self, RelayError> {
        let made = rcgen::generate_simple_self_signed(vec!["hum-relay".to_owned()])
            .map_err(|e| RelayError::Certificate(e.to_string()))?;
        Ok(Self {
            cert: made.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()),
        })
    }

    /// The fingerprint clients pin.
    pub(crate) fn fingerprint(&self) -> CertFingerprint {
        CertFingerprint::of_certificate(&self.cert)
    }

    /// The relay's id in hum/2 (from its fingerprint).
    pub(crate) fn relay_id(&self) -> RelayId {
        RelayId::of_fingerprint(&self.fingerprint())
    }

    /// The certificate key (PKCS#8), which signs the slot keys.
    pub(crate) fn pkcs8(&self) -> &[u8] {
        self.key.secret_pkcs8_der()
    }

    /// The TLS 1.3 server configuration for hum/1 clients (ALPN `hum/1`).
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>, RelayError> {
        self.server(ALPN, None)
    }

    /// The TLS 1.3 server configuration for hum/2 clients (ALPN `hum/2`).
    pub(crate) fn hum2_config(&self) -> Result<Arc<ServerConfig>, RelayError> {
        self.server(ALPN_HUM2, None)
    }

    /// The TLS 1.3 server configuration for relay links (ALPN `hum/2-link`): the peer
    /// must present a certificate whose fingerprint the relays file pins.
    pub(crate) fn link_config(
        &self,
        peers: Vec<CertFingerprint>,
    ) -> Result<Arc<ServerConfig>, RelayError> {
        self.server(ALPN_LINK, Some(Arc::new(Pinned::new(peers))))
    }

    fn server(
        &self,
        alpn: &[u8],
        clients: Option<Arc<Pinned>>,
    ) -> Result<Arc<ServerConfig>, RelayError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?;
        let builder = match clients {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(
            vec![self.cert.clone()],
            PrivateKeyDer::Pkcs8(self.key.clone_key()),
        )?;
        config.alpn_protocols = vec![alpn.to_vec()];
        // No resumption tickets: nothing links two connections of one client.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }
}

/// Accepts exactly the certificates whose fingerprints are pinned; names, dates and
/// issuers do not matter, the TLS 1.3 signature over the handshake does. As a server
/// verifier it pins a relay for its clients and peers; as a client verifier it admits
/// exactly the peer relays of the relays file on links.
#[derive(Debug)]
pub(crate) struct Pinned {
    fingerprints: Vec<CertFingerprint>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    pub(crate) fn new(fingerprints: Vec<CertFingerprint>) -> Self {
        Self {
            fingerprints,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if self
            .fingerprints
            .contains(&CertFingerprint::of_certificate(end_entity))
        {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

/// hum is TLS 1.3 only.
fn no_tls12() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered)
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(no_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(no_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A hum/2 client's TLS 1.3 configuration: pins `fingerprint`, offers ALPN `hum/2`, no
/// client certificate, no resumption.
pub fn client_config_hum2(fingerprint: &CertFingerprint) -> Arc<rustls::ClientConfig> {
    pinned_client_config(fingerprint, ALPN_HUM2, None)
}

/// A TLS 1.3 client configuration that pins `fingerprint`, offers `alpn`, and presents
/// `identity`'s certificate when given (relay links).
pub(crate) fn pinned_client_config(
    fingerprint: &CertFingerprint,
    alpn: &[u8],
    identity: Option<&TlsIdentity>,
) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned::new(vec![*fingerprint])));
    let with_cert = identity.and_then(|id| {
        builder
            .clone()
            .with_client_auth_cert(
                vec![id.cert.clone()],
                PrivateKeyDer::Pkcs8(id.key.clone_key()),
            )
            .ok()
    });
    let mut config = with_cert.unwrap_or_else(|| builder.with_no_client_auth());
    config.alpn_protocols = vec![alpn.to_vec()];
    // No resumption: nothing links two connections of one client.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// Writes a new file with `mode`, through a temporary name so a crash never leaves half
/// a key behind.
fn write_private(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}
