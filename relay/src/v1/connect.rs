//! The client side of hum/1's transport: TLS 1.3 that accepts exactly the certificate
//! whose fingerprint the relay address pins, ALPN `hum/1`, then the relay's hello
//! (docs/PROTOCOL.md §1).

use std::sync::Arc;

use hum_shared::{Fingerprint, Hello, RelayAddr, read_hello};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;

use crate::{ALPN, ConnectError};

/// A TLS stream to a relay, after the handshake.
pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Accepts exactly the certificate with the pinned fingerprint; names, dates and issuers
/// do not matter, the signature over the handshake does.
#[derive(Debug)]
struct Pinned {
    fingerprint: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
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
        if Fingerprint::of_certificate(end_entity) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // hum/1 is TLS 1.3 only.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS 1.3 client configuration that pins `fingerprint` and offers ALPN `hum/1`.
pub fn client_config(fingerprint: &Fingerprint) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3");
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            fingerprint: *fingerprint,
            algorithms,
        }))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    // No resumption: nothing links two connections of one client.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// Connects to a relay: TCP, TLS with the pinned fingerprint, then reads its hello.
///
/// # Errors
/// [`ConnectError`] when the relay is unreachable, presents another certificate, does
/// not speak hum/1, or sends no valid hello.
pub async fn connect(addr: &RelayAddr) -> Result<(TlsStream, Hello), ConnectError> {
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
) -> Result<(TlsStream, Hello), ConnectError> {
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
