//! The relay as a value: bind it, read its address, run it, stop it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use hum_shared::route::{ALPN_LINK, RelayId};
use hum_shared::{CertFingerprint, RelayAddr, cover_cell};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::curious::Curious;
use crate::entry::{Entry, HeldClient};
use crate::link::{LinkSnapshot, Links};
use crate::listener::{Accept, Configs};
use crate::mailbox::Mailbox;
use crate::shutdown::Shutdown;
use crate::state::Shared;
use crate::stats::{Stats, StatsSnapshot};
use crate::tls::{TlsIdentity, pinned_client_config};
use crate::v1::mailbox::Store;
use crate::{Config, RelayError, beat, link, listener, stats};

/// hum/2 tick numbers count from 2026-01-01T00:00:00Z, so that a restarted relay goes
/// on counting up and epochs (u32) last: at 20 ms ticks and 20-tick epochs, 54 years.
const TICK_ORIGIN_UNIX_MICROS: u64 = 1_767_225_600_000_000;

/// A relay bound to its port, not yet serving.
pub struct Relay {
    listener: TcpListener,
    configs: Configs,
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
        let listener = TcpListener::bind(config.listen).await?;
        Self::bind_on(config, listener).await
    }

    /// As [`Relay::bind`], on a listener the caller bound (so peers can be told the
    /// port before the relay starts).
    ///
    /// # Errors
    /// As [`Relay::bind`].
    pub async fn bind_on(config: Config, listener: TcpListener) -> Result<Self, RelayError> {
        config.validate()?;
        let identity = TlsIdentity::load_or_create(config.state_dir.as_deref())?;
        let peer_pins: Vec<CertFingerprint> =
            config.peers.iter().map(|p| p.address.fingerprint).collect();
        let configs = Configs {
            hum1: identity.server_config()?,
            hum2: identity.hum2_config()?,
            link: identity.link_config(peer_pins)?,
        };
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
        let id = identity.relay_id();
        if config.peers.iter().any(|p| p.id() == id) {
            return Err(RelayError::Config(
                "the relays file lists this relay itself".to_owned(),
            ));
        }
        let tick_base = config
            .clock
            .unix_micros()
            .saturating_sub(TICK_ORIGIN_UNIX_MICROS)
            / u64::from(config.tick_micros().max(1));
        let single = config.is_single();
        let entry = config.role.is_entry().then(|| {
            let mut homes: Vec<(RelayAddr, usize)> = config
                .peers
                .iter()
                .filter(|p| p.role.is_mailbox())
                .map(|p| (p.address.clone(), usize::from(p.capacity)))
                .collect();
            if config.role.is_mailbox() {
                // Its own mailbox role is in its directory (contacts may be homed here);
                // only the single relay is also its clients' home.
                let capacity = if single { config.max_clients } else { 0 };
                homes.push((address.clone(), capacity));
            }
            Entry::new(id, single, homes)
        });
        let per_tick = if single {
            config.max_clients
        } else {
            config
                .peers
                .iter()
                .filter(|p| p.role.is_entry())
                .map(|p| usize::from(p.capacity))
                .sum()
        };
        let mailbox = config
            .role
            .is_mailbox()
            .then(|| Mailbox::new(&config, id, identity.pkcs8(), per_tick));
        if let Some(mailbox) = &mailbox {
            // Keys and epoch from the start: the first link may come up before the beat.
            mailbox.on_tick(tick_base);
        }
        if let (Some(entry), Some(mailbox)) = (&entry, &mailbox) {
            // Its own mailbox role is known to its entry role from the start (as a home
            // of clients only when single).
            entry.own_mailbox(id, identity.cert.to_vec(), single);
            entry.on_directory(id, mailbox.update(tick_base), tick_base);
        }
        let client_configs: HashMap<RelayId, Arc<rustls::ClientConfig>> = config
            .peers
            .iter()
            .filter(|p| link::dials(id, p.id()))
            .map(|p| {
                let c = pinned_client_config(&p.address.fingerprint, ALPN_LINK, Some(&identity));
                (p.id(), c)
            })
            .collect();
        let links = Links::new(&config.peers, client_configs);
        let curious = Curious::open(&config)?;
        Ok(Self {
            listener,
            configs,
            shared: Arc::new(Shared {
                config,
                store,
                stats: Stats::default(),
                cover,
                id,
                tick_base,
                beat: AtomicU64::new(0),
                entry,
                mailbox,
                links,
                curious,
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
    pub fn fingerprint(&self) -> CertFingerprint {
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
        let dialers: Vec<_> = shared
            .links
            .peers()
            .filter(|p| link::dials(shared.id, p.id()))
            .map(|p| {
                tokio::spawn(link::dial_loop(
                    Arc::clone(&shared),
                    p.id(),
                    Shutdown::new(stop.clone()),
                ))
            })
            .collect();
        listener::accept_loop(Accept {
            listener: self.listener,
            configs: self.configs,
            shared: Arc::clone(&shared),
            ticks: tick_rx,
            shutdown: Shutdown::new(stop),
            done: done_tx,
        })
        .await;
        shared.links.close_all();
        for d in dialers {
            let _ = d.await;
        }
        // Every connection holds a sender: recv returns None when the last has ended.
        let _ = done_rx.recv().await;
        let _ = beat.await;
        if let Some(t) = stats_task {
            let _ = t.await;
        }
        let s = snapshot(&shared);
        tracing::info!(
            cells_out = s.cells_out,
            cells_in = s.cells_in,
            envelopes_dropped = s.envelopes,
            "relay stopped; everything it held is gone"
        );
    }
}

/// Loads the relay identity kept in `dir`, or makes one there, and returns its
/// fingerprint: what the relays files of its peers pin.
///
/// # Errors
/// [`RelayError::State`] or [`RelayError::Certificate`].
pub fn init_identity(dir: &std::path::Path) -> Result<CertFingerprint, RelayError> {
    Ok(TlsIdentity::load_or_create(Some(dir))?.fingerprint())
}

/// The counters, with what the mailbox role holds.
fn snapshot(shared: &Shared) -> StatsSnapshot {
    let mut s = shared.stats.snapshot(&shared.store);
    s.items = shared.mailbox.as_ref().map_or(0, |m| m.counts().items);
    s
}

/// What a seizure of a relay finds in its memory: for the entry role, its clients'
/// addresses, connection times and current buckets; for the mailbox role, sealed items
/// (counted here) and its current slot keys. Nothing else is kept, and nothing of it is
/// ever written to disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Held {
    /// Entry role: every client connected now.
    pub clients: Vec<HeldClient>,
    /// Mailbox role: sealed items held.
    pub items: usize,
    /// Mailbox role: epochs with items held.
    pub item_epochs: usize,
    /// Mailbox role: the epochs whose slot keys are held.
    pub slot_key_epochs: Vec<u32>,
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
        snapshot(&self.shared)
    }

    /// What went over each relay link so far (counts by frame kind and size).
    pub fn links(&self) -> Vec<LinkSnapshot> {
        self.shared.links.snapshots()
    }

    /// What a seizure of this relay would find in memory (test and audit view).
    pub fn held(&self) -> Held {
        let s = &self.shared;
        Held {
            clients: s.entry.as_ref().map(Entry::held).unwrap_or_default(),
            items: s.mailbox.as_ref().map_or(0, |m| m.counts().items),
            item_epochs: s.mailbox.as_ref().map_or(0, |m| m.counts().epochs),
            slot_key_epochs: s
                .mailbox
                .as_ref()
                .map(Mailbox::key_epochs)
                .unwrap_or_default(),
        }
    }

    /// The relay's hum/2 id.
    pub fn id(&self) -> RelayId {
        self.shared.id
    }

    /// The relay's hum/2 tick now.
    pub fn tick(&self) -> u64 {
        self.shared.now_tick()
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
