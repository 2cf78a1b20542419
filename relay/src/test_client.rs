//! A small hum/2 client for tests and measurements (feature `test-client`), built on
//! `hum_shared::route`: it connects to an entry relay, answers every beat with exactly
//! one up cell (a real deposit from its outbox, else a dummy), recognises the items
//! meant for it by their tags, and catches up epochs on request.
//!
//! It is not the chat client: there are no sessions or ratchets, only what a relay
//! sees. Senders and receivers share a [`TagKey`] per direction (and a [`GroupTagKey`]
//! per group, for the wrap), as a handshake would give them.
//!
//! ```no_run
//! # async fn demo(relay: hum_shared::RelayAddr) -> Result<(), hum_relay::test_client::ClientError> {
//! use hum_relay::test_client::{Card, TestClient};
//! use hum_shared::route::{DeliverySecret, TagKey};
//! let (alice, bob) = (Card::new(relay.clone()), Card::new(relay.clone()));
//! let key = TagKey::generate();
//! let mut a = TestClient::connect(&relay, &alice, &[]).await?;
//! let mut b = TestClient::connect(&relay, &bob, &[]).await?;
//! b.expect_from(&key);
//! a.send(&bob, &key, b"hello");
//! # Ok(()) }
//! ```

mod core;
pub mod load;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hum_shared::RelayAddr;
use hum_shared::route::{
    ALPN_HUM2, CELL_LEN, DeliverySecret, GroupTagKey, HELLO_HEADER_LEN, Hello, Refusal, RouteError,
    TagKey,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use self::core::MAX_BODY;
use self::core::{Core, Outgoing, Unwrap};

/// What a contact knows of a user: the delivery secret and the home relay.
#[derive(Debug, Clone)]
pub struct Card {
    /// The user's delivery secret.
    pub secret: DeliverySecret,
    /// The user's home relay, pinned.
    pub home: RelayAddr,
}

impl Card {
    /// A new user homed at `home`.
    pub fn new(home: RelayAddr) -> Self {
        Self {
            secret: DeliverySecret::generate(),
            home,
        }
    }
}

/// How an item reached the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// The live bucket stream (even ticks).
    Live,
    /// A catch-up reply item (odd ticks).
    CatchUp,
}

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An item for us: from the `sender`-th expected sender, in the home epoch `epoch`.
    Received {
        /// Index of the sender, in the order of `expect_*` calls.
        sender: usize,
        /// The message body.
        body: Vec<u8>,
        /// How it came.
        via: Via,
        /// The home relay's epoch it was deposited for.
        epoch: u32,
    },
    /// An item we had already seen (dropped).
    Duplicate,
    /// Message `id` was stored.
    Stored {
        /// The message.
        id: u64,
    },
    /// Message `id` was answered `Full`; it stays in the outbox.
    Full {
        /// The message.
        id: u64,
    },
    /// Message `id` was for the wrong epoch; it is made again for the current one.
    Retry {
        /// The message.
        id: u64,
        /// The epoch the relay is in.
        epoch: u32,
    },
    /// Message `id` got no readable answer; it stays in the outbox.
    Unknown {
        /// The message.
        id: u64,
    },
    /// Message `id` could not be sealed (no key for its relay or epoch).
    Unsendable {
        /// The message.
        id: u64,
        /// Why.
        why: String,
    },
    /// Every page of `epoch` was asked for.
    CaughtUp {
        /// The epoch.
        epoch: u32,
    },
    /// The connection ended.
    Ended(Result<(), ClientError>),
}

/// Why the test client stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// TCP or TLS failed, or the relay closed.
    #[error("connection: {0}")]
    Io(String),
    /// The hello did not decode.
    #[error("bad hello: {0}")]
    Hello(RouteError),
    /// The entry relay refused us.
    #[error("refused: {}", .0.reason())]
    Refused(Refusal),
    /// A down cell did not decode.
    #[error("a down cell did not decode")]
    BadCell,
    /// The directory does not list our home relay (or its key).
    #[error("the directory does not list the home relay")]
    NoHome,
    /// A seal failed.
    #[error("route: {0}")]
    Route(#[from] RouteError),
}

/// Cells each way, counted by the client.
#[derive(Debug, Default)]
pub struct Counts {
    /// Down cells read.
    pub cells_in: AtomicU64,
    /// Up cells written.
    pub cells_out: AtomicU64,
}

enum Command {
    Expect(TagKey, Unwrap),
    Send(Outgoing),
    CatchUp(u32),
}

/// A running test client.
pub struct TestClient {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<Event>,
    counts: Arc<Counts>,
    status: Arc<std::sync::Mutex<Status>>,
    next_id: u64,
    senders: usize,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient").finish_non_exhaustive()
    }
}

/// What the client knows now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// The entry relay's tick of the last down cell.
    pub tick: u64,
    /// The home relay's epoch now.
    pub epoch: u32,
    /// Our bucket in it.
    pub bucket: u16,
    /// Whether the entry relay is a single relay.
    pub single: bool,
    /// Messages not yet stored.
    pub outbox: usize,
}

/// A TLS connection to a relay.
pub type Stream = tokio_rustls::client::TlsStream<TcpStream>;

/// Opens TLS 1.3 to `addr` with its fingerprint pinned and ALPN `hum/2`.
async fn tls(tcp: TcpStream, addr: &RelayAddr) -> Result<Stream, ClientError> {
    let _ = tcp.set_nodelay(true);
    let config = crate::tls::pinned_client_config(&addr.fingerprint, ALPN_HUM2, None);
    let name =
        ServerName::try_from(addr.host.clone()).map_err(|e| ClientError::Io(e.to_string()))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| ClientError::Io(e.to_string()))
}

async fn read_hello<S: AsyncRead + Unpin>(s: &mut S) -> Result<Hello, ClientError> {
    let io = |e: std::io::Error| ClientError::Io(e.to_string());
    let mut bytes = vec![0u8; HELLO_HEADER_LEN];
    s.read_exact(&mut bytes).await.map_err(io)?;
    let total = Hello::total_len(&bytes).map_err(ClientError::Hello)?;
    bytes.resize(total, 0);
    s.read_exact(&mut bytes[HELLO_HEADER_LEN..])
        .await
        .map_err(io)?;
    Hello::decode(&bytes).map_err(ClientError::Hello)
}

/// A raw hum/2 connection to `entry`, after its hello: for tests that misbehave.
///
/// # Errors
/// [`ClientError`] when the relay cannot be reached or its hello is bad.
pub async fn connect_raw(entry: &RelayAddr) -> Result<(Stream, Hello), ClientError> {
    let tcp = TcpStream::connect(entry.host_port())
        .await
        .map_err(|e| ClientError::Io(e.to_string()))?;
    let mut stream = tls(tcp, entry).await?;
    let hello = read_hello(&mut stream).await?;
    Ok((stream, hello))
}

/// A raw relay link to `to`, as the relay whose identity is kept in `state` (its
/// certificate is presented and must be pinned in `to`'s relays file): for tests that
/// play a misbehaving peer. Nothing is sent yet, not even the link hello.
///
/// # Errors
/// [`ClientError::Io`] when the identity cannot be read or the link is refused.
pub async fn link_as(state: &std::path::Path, to: &RelayAddr) -> Result<Stream, ClientError> {
    let io = |e: String| ClientError::Io(e);
    let identity =
        crate::tls::TlsIdentity::load_or_create(Some(state)).map_err(|e| io(e.to_string()))?;
    let config = crate::tls::pinned_client_config(
        &to.fingerprint,
        hum_shared::route::ALPN_LINK,
        Some(&identity),
    );
    let tcp = TcpStream::connect(to.host_port())
        .await
        .map_err(|e| io(e.to_string()))?;
    let name = ServerName::try_from(to.host.clone()).map_err(|e| io(e.to_string()))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| io(e.to_string()))
}

impl TestClient {
    /// Connects `me` to the entry relay `entry`; `pins` are the other relays it may
    /// deposit to (its home is pinned by its card).
    ///
    /// # Errors
    /// [`ClientError`] when the relay cannot be reached or its hello is bad.
    pub async fn connect(
        entry: &RelayAddr,
        me: &Card,
        pins: &[RelayAddr],
    ) -> Result<Self, ClientError> {
        let tcp = TcpStream::connect(entry.host_port())
            .await
            .map_err(|e| ClientError::Io(e.to_string()))?;
        Self::connect_over(tcp, entry, me, pins).await
    }

    /// As [`TestClient::connect`], from the source address `from` (port 0).
    ///
    /// # Errors
    /// As [`TestClient::connect`].
    pub async fn connect_from(
        from: std::net::IpAddr,
        entry: &RelayAddr,
        me: &Card,
        pins: &[RelayAddr],
    ) -> Result<Self, ClientError> {
        let io = |e: std::io::Error| ClientError::Io(e.to_string());
        let sock = TcpSocket::new_v4().map_err(io)?;
        sock.bind(std::net::SocketAddr::new(from, 0)).map_err(io)?;
        let to = tokio::net::lookup_host(entry.host_port())
            .await
            .map_err(io)?
            .next()
            .ok_or_else(|| ClientError::Io("no address".to_owned()))?;
        let tcp = sock.connect(to).await.map_err(io)?;
        Self::connect_over(tcp, entry, me, pins).await
    }

    async fn connect_over(
        tcp: TcpStream,
        entry: &RelayAddr,
        me: &Card,
        pins: &[RelayAddr],
    ) -> Result<Self, ClientError> {
        let mut stream = tls(tcp, entry).await?;
        let hello = read_hello(&mut stream).await?;
        let mut core = Core::new(me.secret.clone(), me.home.clone(), pins.to_vec(), hello);
        let (commands, mut rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let counts = Arc::new(Counts::default());
        let status = Arc::new(std::sync::Mutex::new(Status::default()));
        let (c, st) = (Arc::clone(&counts), Arc::clone(&status));
        let task = tokio::spawn(async move {
            let mut cell = vec![0u8; CELL_LEN];
            let end = loop {
                if let Err(e) = stream.read_exact(&mut cell).await {
                    break Err(ClientError::Io(e.to_string()));
                }
                c.cells_in.fetch_add(1, Ordering::Relaxed);
                while let Ok(cmd) = rx.try_recv() {
                    match cmd {
                        Command::Expect(k, u) => core.expect(k, u),
                        Command::Send(m) => core.queue(m),
                        Command::CatchUp(e) => core.catch_up(e),
                    }
                }
                let up = core.on_down(&cell);
                for e in core.events.drain(..) {
                    let _ = events_tx.send(e);
                }
                let up = match up {
                    Ok(up) => up,
                    Err(e) => break Err(e),
                };
                if let Err(e) = stream.write_all(&up[..]).await {
                    break Err(ClientError::Io(e.to_string()));
                }
                c.cells_out.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut s) = st.lock() {
                    let epoch = core.epoch_at(&hum_shared::route::RelayId::of_fingerprint(
                        &core_home(&core),
                    ));
                    *s = Status {
                        tick: core_tick(&core),
                        epoch: epoch.unwrap_or(0),
                        bucket: epoch.and_then(|e| core.bucket(e)).unwrap_or(0),
                        single: core.single(),
                        outbox: core.outbox_len(),
                    };
                }
            };
            let _ = events_tx.send(Event::Ended(end));
        });
        Ok(Self {
            commands,
            events,
            counts,
            status,
            next_id: 1,
            senders: 0,
            task,
        })
    }

    /// Recognises 1:1 items sent under `key` from now on; returns the sender's index.
    pub fn expect_from(&mut self, key: &TagKey) -> usize {
        let _ = self
            .commands
            .send(Command::Expect(key.clone(), Unwrap::Mine));
        self.senders += 1;
        self.senders - 1
    }

    /// Recognises a group's items sent under `key` and wrapped under `group`.
    pub fn expect_group(&mut self, key: &TagKey, group: &GroupTagKey) -> usize {
        let _ = self
            .commands
            .send(Command::Expect(key.clone(), Unwrap::Group(group.clone())));
        self.senders += 1;
        self.senders - 1
    }

    fn queue(
        &mut self,
        to: Vec<Card>,
        key: &TagKey,
        group: Option<&GroupTagKey>,
        body: &[u8],
        epoch: Option<u32>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let _ = self.commands.send(Command::Send(Outgoing {
            id,
            to,
            key: key.clone(),
            group: group.cloned(),
            body: body.to_vec(),
            epoch,
        }));
        id
    }

    /// Sends `body` to `to` under `key`; returns the message id of its answers.
    pub fn send(&mut self, to: &Card, key: &TagKey, body: &[u8]) -> u64 {
        self.queue(vec![to.clone()], key, None, body, None)
    }

    /// Sends `body` to `to` deposited for `epoch` of its home relay (to test `Retry`).
    pub fn send_for_epoch(&mut self, to: &Card, key: &TagKey, body: &[u8], epoch: u32) -> u64 {
        self.queue(vec![to.clone()], key, None, body, Some(epoch))
    }

    /// Sends `body` to every member of a group (our own card included if we are to
    /// see it): one deposit per destination relay, with one copy per member there.
    pub fn send_group(
        &mut self,
        to: &[Card],
        key: &TagKey,
        group: &GroupTagKey,
        body: &[u8],
    ) -> Vec<u64> {
        let mut by_relay: Vec<Vec<Card>> = Vec::new();
        for c in to {
            match by_relay
                .iter_mut()
                .find(|g| g[0].home.fingerprint == c.home.fingerprint)
            {
                Some(g) => g.push(c.clone()),
                None => by_relay.push(vec![c.clone()]),
            }
        }
        by_relay
            .into_iter()
            .map(|members| self.queue(members, key, Some(group), body, None))
            .collect()
    }

    /// Asks for every item of our bucket in `epoch` of our home relay.
    pub fn catch_up(&self, epoch: u32) {
        let _ = self.commands.send(Command::CatchUp(epoch));
    }

    /// The next event, waiting at most `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Event> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits up to `timeout` for an event `want` accepts, skipping the others.
    ///
    /// # Errors
    /// A description of what did come, if the wanted one did not.
    pub async fn until<T>(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| format!("timed out; saw {skipped:?}"))?
                .ok_or_else(|| "client ended".to_owned())?;
            if let Some(t) = want(&e) {
                return Ok(t);
            }
            if skipped.len() < 16 {
                skipped.push(e);
            }
        }
    }

    /// Every event that arrived so far.
    pub fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }

    /// Cells each way so far.
    pub fn cells(&self) -> (u64, u64) {
        (
            self.counts.cells_in.load(Ordering::Relaxed),
            self.counts.cells_out.load(Ordering::Relaxed),
        )
    }

    /// What the client knows now.
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| *s).unwrap_or_default()
    }

    /// Whether the client's connection task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn core_home(core: &Core) -> hum_shared::CertFingerprint {
    core.home_fingerprint()
}

fn core_tick(core: &Core) -> u64 {
    core.current_tick()
}
