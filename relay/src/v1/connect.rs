//! The client side of hum/1's transport: TLS 1.3 that accepts exactly the certificate
//! whose fingerprint the relay address pins, ALPN `hum/1`, then the relay's hello
//! (docs/PROTOCOL.md §1).

use std::sync::Arc;

use hum_shared::{CertFingerprint, HelloV1, RelayAddr, read_hello};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::{ALPN, ConnectError};

/// A TLS stream to a relay, after the handshake.
pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS 1.3 client configuration that pins `fingerprint` and offers ALPN `hum/1`.
pub fn client_config(fingerprint: &CertFingerprint) -> Arc<rustls::ClientConfig> {
    crate::tls::pinned_client_config(fingerprint, ALPN, None)
}

/// Connects to a relay: TCP, TLS with the pinned fingerprint, then reads its hello.
///
/// # Errors
/// [`ConnectError`] when the relay is unreachable, presents another certificate, does
/// not speak hum/1, or sends no valid hello.
pub async fn connect(addr: &RelayAddr) -> Result<(TlsStream, HelloV1), ConnectError> {
    let tcp = TcpStream::connect(addr.host_port()).await?;
    connect_over(tcp, addr).await
}

/// Like [`connect`], over a TCP stream the caller opened (for instance from a chosen
/// source address).
///
/// # Errors
/// As [`connect`].
pub async fn connect_over(
    tcp: TcpStream,
    addr: &RelayAddr,
) -> Result<(TlsStream, HelloV1), ConnectError> {
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(addr.host.clone()).map_err(|_| ConnectError::Host)?;
    let connector = tokio_rustls::TlsConnector::from(client_config(&addr.fingerprint));
    let mut tls = connector.connect(name, tcp).await.map_err(|e| {
        // The pinning verifier is the only source of this certificate error.
        let pinned = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|r| {
                matches!(
                    r,
                    rustls::Error::InvalidCertificate(
                        rustls::CertificateError::ApplicationVerificationFailure
                    )
                )
            });
        if pinned {
            ConnectError::WrongCertificate
        } else {
            ConnectError::Io(e)
        }
    })?;
    if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
        return Err(ConnectError::Alpn);
    }
    let hello = read_hello(&mut tls).await?;
    Ok((tls, hello))
}
