//! The relay as a value: bind it, read its address, run it, stop it.

use std::net::SocketAddr;
use std::sync::Arc;

use hum_shared::{Fingerprint, RelayAddr, cover_cell};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::shutdown::Shutdown;
use crate::state::Shared;
use crate::stats::{Stats, StatsSnapshot};
use crate::tls::Identity;
use crate::v1::mailbox::Store;
use crate::{Config, RelayError, beat, listener, stats};

/// A relay bound to its port, not yet serving.
pub struct Relay {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    address: RelayAddr,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Validates `config`, loads or makes the TLS identity, and binds the port.
    ///
    /// # Errors
    /// [`RelayError::Config`] for bad settings, [`RelayError::State`] when the state
    /// folder cannot be used, [`RelayError::Io`] when the port cannot be bound.
    pub async fn bind(config: Config) -> Result<Self, RelayError> {
        config.validate()?;
        let identity = Identity::load_or_create(config.state_dir.as_deref())?;
        let acceptor = TlsAcceptor::from(identity.server_config()?);
        let listener = TcpListener::bind(config.listen).await?;
        let local = listener.local_addr()?;
        let address = RelayAddr {
            host: reachable_host(local),
            port: local.port(),
            fingerprint: identity.fingerprint(),
        };
        let cover = cover_cell(config.cell_size).map_err(|e| RelayError::Config(e.to_string()))?;
        let store = Store::new(
            config.clock.clone(),
            config.ttl,
            config.mailbox_quota,
            config.global_quota,
        );
        Ok(Self {
            listener,
            acceptor,
            shared: Arc::new(Shared {
                config,
                store,
                stats: Stats::default(),
                cover,
            }),
            address,
        })
    }

    /// The address clients use: `hum://HOST:PORT#FINGERPRINT`, with the real port when
    /// bound to port 0, and a loopback host when bound to all interfaces.
    pub fn address(&self) -> RelayAddr {
        self.address.clone()
    }

    /// The socket address actually bound.
    ///
    /// # Errors
    /// When the operating system cannot tell.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The certificate fingerprint clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.address.fingerprint
    }

    /// Starts serving on the current tokio runtime.
    pub fn spawn(self) -> RelayHandle {
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::clone(&self.shared);
        let address = self.address.clone();
        let task = tokio::spawn(self.serve(stop_rx));
        RelayHandle {
            stop,
            task: Some(task),
            address,
            shared,
        }
    }

    async fn serve(self, stop: watch::Receiver<bool>) {
        let shared = self.shared;
        let (tick_tx, tick_rx) = watch::channel(0u64);
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let beat = tokio::spawn(beat::run(
            Arc::clone(&shared),
            tick_tx,
            Shutdown::new(stop.clone()),
        ));
        let stats_task = shared.config.stats_every.map(|every| {
            let shared = Arc::clone(&shared);
            let shutdown = Shutdown::new(stop.clone());
            tokio::spawn(async move {
                stats::log_every(every, &shared.stats, &shared.store, shutdown).await;
            })
        });
        listener::accept_loop(
            self.listener,
            self.acceptor,
            Arc::clone(&shared),
            tick_rx,
            Shutdown::new(stop),
            done_tx,
        )
        .await;
        // Every connection holds a sender: recv returns None when the last has ended.
        let _ = done_rx.recv().await;
        let _ = beat.await;
        if let Some(t) = stats_task {
            let _ = t.await;
        }
        let s = shared.stats.snapshot(&shared.store);
        tracing::info!(
            cells_out = s.cells_out,
            cells_in = s.cells_in,
            envelopes_dropped = s.envelopes,
            "relay stopped; everything it held is gone"
        );
    }
}

/// The host a local client can reach a socket address at.
fn reachable_host(local: SocketAddr) -> String {
    match local {
        SocketAddr::V4(a) if a.ip().is_unspecified() => "127.0.0.1".to_owned(),
        SocketAddr::V6(a) if a.ip().is_unspecified() => "::1".to_owned(),
        a => a.ip().to_string(),
    }
}

/// A running relay. Dropping it stops the relay without waiting; [`RelayHandle::shutdown`]
/// waits until every connection has closed.
#[derive(Debug)]
pub struct RelayHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    address: RelayAddr,
    shared: Arc<Shared>,
}

impl RelayHandle {
    /// The address clients use (see [`Relay::address`]).
    pub fn address(&self) -> &RelayAddr {
        &self.address
    }

    /// The relay's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot(&self.shared.store)
    }

    /// Stops accepting, closes every connection, drops everything held, and waits until
    /// all of that is done.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
