//! Load runs of test clients. [`Swarm`]: many clients from source addresses spread over
//! 127.0.0.0/8, paired, each sending its partner a message every few ticks (the figures
//! at a fixed client count). [`run`]: the proof's load, a known world of users with
//! contacts and groups, chatting with churn across epoch changes, writing the ground
//! truth ([`Truth`]) and measuring latency, delivery, catch-up and bytes ([`Report`]).

mod away;
mod figures;
pub mod procs;
mod scenario;
mod truth;
mod world;

pub use away::{AwayReport, AwaySpec, away};
pub use figures::{CatchUpRow, KeptUp, Percentiles, Report};
pub use scenario::{LoadError, Progress, Spec, run};
pub use truth::{SendRecord, To, Truth};
pub use world::{Shape, Topology, User, World};

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hum_shared::RelayAddr;
use hum_shared::route::TagKey;
use tokio::sync::Semaphore;

use super::{Card, ClientError, TestClient};

/// Source address of client `i`: spread over 127.0.0.0/8 so ports never run out.
pub fn source(i: usize) -> IpAddr {
    let i = u32::try_from(i).unwrap_or(u32::MAX);
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + u8::try_from(i / 62_500).unwrap_or(u8::MAX),
        u8::try_from((i / 250) % 250).unwrap_or(0),
        u8::try_from(i % 250 + 1).unwrap_or(1),
    ))
}

/// Paired clients: client `i` talks with client `i ^ 1`.
pub struct Swarm {
    /// The clients.
    pub clients: Vec<TestClient>,
    /// Their cards.
    pub cards: Vec<Card>,
    keys: Vec<TagKey>,
    sent: u64,
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm")
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

impl Swarm {
    /// Connects `n` clients (an even number) to `entry`, all homed at `home`, at most
    /// 32 handshakes at a time.
    ///
    /// # Errors
    /// The first client that could not connect.
    pub async fn connect(
        n: usize,
        entry: &RelayAddr,
        home: &RelayAddr,
        pins: &[RelayAddr],
    ) -> Result<Self, ClientError> {
        let gate = Arc::new(Semaphore::new(32));
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let (entry, pins, gate) = (entry.clone(), pins.to_vec(), Arc::clone(&gate));
            let card = Card::new(home.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await;
                let c = TestClient::connect_from(source(i), &entry, &card, &pins).await;
                c.map(|c| (c, card))
            }));
        }
        let mut clients = Vec::with_capacity(n);
        let mut cards = Vec::with_capacity(n);
        for t in tasks {
            let (c, card) = t.await.map_err(|e| ClientError::Io(e.to_string()))??;
            clients.push(c);
            cards.push(card);
        }
        let keys: Vec<TagKey> = (0..n).map(|_| TagKey::generate()).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            c.expect_from(&keys[i ^ 1]);
        }
        Ok(Self {
            clients,
            cards,
            keys,
            sent: 0,
        })
    }

    /// Every client whose turn it is at `round` sends its partner one message: client
    /// `i` when `round % every == i % every`, so the load is spread evenly.
    pub fn chat(&mut self, round: u64, every: u64) {
        let every = every.max(1);
        for i in 0..self.clients.len() {
            if (i as u64) % every == round % every {
                let to = self.cards[i ^ 1].clone();
                let key = self.keys[i].clone();
                self.clients[i].send(&to, &key, &round.to_be_bytes());
                self.sent += 1;
            }
        }
    }

    /// Messages sent so far, across the swarm.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Messages received so far, across the swarm (drains the events).
    pub fn received(&mut self) -> usize {
        self.clients
            .iter_mut()
            .map(|c| {
                c.drain()
                    .iter()
                    .filter(|e| matches!(e, super::Event::Received { .. }))
                    .count()
            })
            .sum()
    }
}
