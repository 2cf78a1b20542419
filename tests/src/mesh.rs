//! Relays that know each other before they start, for whole-system tests of hum/2: each
//! has its state folder (so its certificate, and so its fingerprint, exists before it
//! listens) and a bound port; a relay link may pass through an observer.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use hum_relay::{Config, Peer, Relay, RelayHandle, Role};
use hum_shared::RelayAddr;
use tokio::net::TcpListener;

use crate::harness::TempDir;

/// Relays with identities and ports, not yet started.
#[derive(Debug)]
pub struct Mesh {
    /// Every relay's state folder (its TLS key, nothing else).
    pub dirs: Vec<PathBuf>,
    /// Every relay's address, with its pinned fingerprint.
    pub addrs: Vec<RelayAddr>,
    listeners: Vec<Option<TcpListener>>,
    /// Where relay `i` reaches relay `j` instead of `addrs[j]` (an observer on the link).
    via: Vec<(usize, usize, SocketAddr)>,
    dir: TempDir,
}

impl Mesh {
    /// `n` relays: identities made, ports bound on 127.0.0.1.
    ///
    /// # Errors
    /// When a folder, an identity or a port cannot be made.
    pub async fn new(name: &str, n: usize) -> Result<Self> {
        let dir = TempDir::new(&format!("mesh-{name}"))?;
        let mut m = Mesh {
            dirs: Vec::new(),
            addrs: Vec::new(),
            listeners: Vec::new(),
            via: Vec::new(),
            dir,
        };
        for i in 0..n {
            let state = m.dir.path().join(format!("relay-{i}"));
            let fingerprint = hum_relay::init_identity(&state)?;
            let l = TcpListener::bind("127.0.0.1:0").await?;
            m.addrs.push(RelayAddr {
                host: "127.0.0.1".to_owned(),
                port: l.local_addr()?.port(),
                fingerprint,
            });
            m.dirs.push(state);
            m.listeners.push(Some(l));
        }
        Ok(m)
    }

    /// Relay `from` reaches relay `to` at `at` (an observer's address) instead.
    pub fn route_via(&mut self, from: usize, to: usize, at: SocketAddr) {
        self.via.push((from, to, at));
    }

    /// The configuration of relay `i` with `role` and the given peers (index, role,
    /// capacity), on top of `base`.
    pub fn config(
        &self,
        i: usize,
        role: Role,
        peers: &[(usize, Role, u16)],
        base: &Config,
    ) -> Config {
        let mut c = base.clone();
        c.role = role;
        c.state_dir = Some(self.dirs[i].clone());
        c.peers = peers
            .iter()
            .map(|&(j, r, cap)| {
                let mut addr = self.addrs[j].clone();
                if let Some(&(_, _, at)) = self.via.iter().find(|v| v.0 == i && v.1 == j) {
                    addr.host = at.ip().to_string();
                    addr.port = at.port();
                }
                Peer::new(addr, r, cap)
            })
            .collect();
        c
    }

    /// The listener of relay `i` (its port, bound again after a restart).
    ///
    /// # Errors
    /// When the port cannot be bound again.
    pub async fn listener(&mut self, i: usize) -> Result<TcpListener> {
        Ok(match self.listeners[i].take() {
            Some(l) => l,
            None => TcpListener::bind(("127.0.0.1", self.addrs[i].port)).await?,
        })
    }

    /// The listener of relay `i`, to start it in another runtime (a relay on a thread of
    /// its own: [`crate::harness::relay_on_own_thread_with`]).
    ///
    /// # Errors
    /// When the port cannot be bound again.
    pub async fn std_listener(&mut self, i: usize) -> Result<std::net::TcpListener> {
        Ok(self.listener(i).await?.into_std()?)
    }

    /// Starts relay `i` with `role` and the given peers, in this runtime.
    ///
    /// # Errors
    /// When it cannot start.
    pub async fn start(
        &mut self,
        i: usize,
        role: Role,
        peers: &[(usize, Role, u16)],
        base: &Config,
    ) -> Result<RelayHandle> {
        let c = self.config(i, role, peers, base);
        let listener = self.listener(i).await?;
        Ok(Relay::bind_on(c, listener).await?.spawn())
    }

    /// Two relays, both roles, each the other's peer with `capacity` slots a tick.
    ///
    /// # Errors
    /// When either cannot start.
    pub async fn start_pair(
        &mut self,
        base: &Config,
        capacity: u16,
    ) -> Result<(RelayHandle, RelayHandle)> {
        let a = self
            .start(0, Role::Both, &[(1, Role::Both, capacity)], base)
            .await?;
        let b = self
            .start(1, Role::Both, &[(0, Role::Both, capacity)], base)
            .await?;
        Ok((a, b))
    }
}
