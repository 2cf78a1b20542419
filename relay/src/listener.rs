//! The accept loop: a connection cap (a semaphore, as in mini-redis), then the TLS
//! handshake, whose configuration follows the ALPN the other end offers: `hum/2-link`
//! for peer relays (client certificate required, pinned), `hum/2` and `hum/1` for
//! clients of a relay with the entry role. One task per connection.

use std::sync::Arc;
use std::time::Duration;

use hum_shared::CertFingerprint;
use hum_shared::route::{ALPN_HUM2, ALPN_LINK};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::LazyConfigAcceptor;

use crate::entry::client::ClientHandler;
use crate::shutdown::Shutdown;
use crate::state::Shared;
use crate::stats::Stats;
use crate::v1::connection::Handler;
use crate::{ALPN, link};

/// The server configurations of the three ALPNs.
#[derive(Debug, Clone)]
pub(crate) struct Configs {
    pub(crate) hum1: Arc<ServerConfig>,
    pub(crate) hum2: Arc<ServerConfig>,
    pub(crate) link: Arc<ServerConfig>,
}

/// Everything the accept loop hands to connections.
pub(crate) struct Accept {
    pub(crate) listener: TcpListener,
    pub(crate) configs: Configs,
    pub(crate) shared: Arc<Shared>,
    pub(crate) ticks: watch::Receiver<u64>,
    pub(crate) shutdown: Shutdown,
    pub(crate) done: mpsc::Sender<()>,
}

/// What the other end asked for.
enum Wants {
    Link,
    Hum2,
    Hum1,
}

/// Accepts connections until shutdown. Past `max_clients`, new connections wait in the
/// listen backlog until a slot frees (a peer relay's link gives its slot back once it is
/// known to be one).
pub(crate) async fn accept_loop(accept: Accept) {
    let Accept {
        listener,
        configs,
        shared,
        ticks,
        mut shutdown,
        done,
    } = accept;
    let limit = Arc::new(Semaphore::new(shared.config.max_clients));
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            () = shutdown.recv() => return,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.recv() => return,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(err) => {
                // Out of file descriptors and the like: wait a little, keep serving.
                tracing::warn!(cause = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let conn = Connection {
            configs: configs.clone(),
            shared: Arc::clone(&shared),
            ticks: ticks.clone(),
            shutdown: shutdown.clone(),
            done: done.clone(),
            permit,
        };
        tokio::spawn(conn.handshake(tcp));
    }
}

/// One accepted connection before its handshake.
struct Connection {
    configs: Configs,
    shared: Arc<Shared>,
    ticks: watch::Receiver<u64>,
    shutdown: Shutdown,
    done: mpsc::Sender<()>,
    permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn handshake(mut self, tcp: TcpStream) {
        let _ = tcp.set_nodelay(true);
        let Ok(peer) = tcp.peer_addr() else {
            return;
        };
        let role = self.shared.config.role;
        let has_peers = !self.shared.config.peers.is_empty();
        let configs = self.configs.clone();
        let handshake = async move {
            let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
                .await
                .ok()?;
            let offered: Vec<Vec<u8>> = start
                .client_hello()
                .alpn()
                .map(|a| a.map(<[u8]>::to_vec).collect())
                .unwrap_or_default();
            let has = |p: &[u8]| offered.iter().any(|o| o == p);
            let (wants, config) = if has(ALPN_LINK) && has_peers {
                (Wants::Link, configs.link)
            } else if has(ALPN_HUM2) && role.is_entry() {
                (Wants::Hum2, configs.hum2)
            } else if has(ALPN) && role.is_entry() {
                (Wants::Hum1, configs.hum1)
            } else {
                return None;
            };
            let tls = start.into_stream(config).await.ok()?;
            Some((wants, tls))
        };
        let timeout = self.shared.config.handshake_timeout;
        let done = tokio::select! {
            r = tokio::time::timeout(timeout, handshake) => r.ok().flatten(),
            () = self.shutdown.recv() => return,
        };
        let Some((wants, tls)) = done else {
            Stats::add(&self.shared.stats.handshakes_failed, 1);
            return;
        };
        match wants {
            Wants::Hum1 => {
                let handler = Handler {
                    shared: self.shared,
                    ticks: self.ticks,
                    shutdown: self.shutdown,
                    done: self.done,
                    permit: self.permit,
                };
                handler.serve(tls).await;
            }
            Wants::Hum2 => {
                let handler = ClientHandler {
                    shared: self.shared,
                    ticks: self.ticks,
                    shutdown: self.shutdown,
                    done: self.done,
                    permit: self.permit,
                };
                // The client's life runs in a task of its own: the handshake's memory is
                // given back now.
                tokio::spawn(handler.serve(tls, peer));
            }
            Wants::Link => {
                drop(self.permit);
                let cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec());
                let Some(cert) = cert else {
                    return;
                };
                let fp = CertFingerprint::of_certificate(&cert);
                let Some(id) = self.shared.links.by_fingerprint(&fp) else {
                    return;
                };
                let _done = self.done;
                link::run(Arc::clone(&self.shared), id, tls, cert, self.shutdown).await;
            }
        }
    }
}
