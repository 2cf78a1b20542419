//! The relay's TLS identity: a self-signed certificate made on first start and kept in the
//! state folder (the only thing the relay ever writes to disk), and the TLS 1.3 server
//! configuration with ALPN `hum/1` (docs/PROTOCOL.md §1).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use hum_shared::Fingerprint;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::RelayError;

/// The ALPN protocol name of hum/1.
pub const ALPN: &[u8] = b"hum/1";
const KEY_FILE: &str = "relay-key.der";
const CERT_FILE: &str = "relay-cert.der";

/// The relay's certificate and key.
pub(crate) struct Identity {
    pub(crate) cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Identity {
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
    pub(crate) fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_certificate(&self.cert)
    }

    /// The TLS 1.3 server configuration for this identity.
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, RelayError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        // No resumption tickets: nothing links two connections of one client.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }
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
