//! The relay's errors.

use std::path::PathBuf;

/// Why the relay could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// A setting is out of range; the text says which.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Binding or accepting failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The state folder could not be read or written.
    #[error("state folder {path}: {source}")]
    State {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The TLS key or certificate could not be made or used.
    #[error("TLS certificate: {0}")]
    Certificate(String),
    /// The relays file could not be read or is invalid.
    #[error("relays file {path}: {reason}")]
    Peers {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why connecting to a relay failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The TCP connection or TLS handshake failed.
    #[error("cannot reach the relay: {0}")]
    Io(#[from] std::io::Error),
    /// The relay presented a certificate other than the one its address pins: a wrong
    /// address, a relay whose key changed, or someone in between.
    #[error("the relay's certificate does not match the fingerprint in its address")]
    WrongCertificate,
    /// The host is not a name rustls accepts.
    #[error("invalid relay host name")]
    Host,
    /// The relay did not agree on ALPN `hum/1`.
    #[error("the relay does not speak hum/1")]
    Alpn,
    /// The relay's hello was missing or invalid.
    #[error("bad hello from the relay: {0}")]
    Hello(#[from] hum_shared::CellIoError),
}
