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

#[cfg(test)]
mod bench;
mod core;
pub mod load;
mod rng;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hum_shared::RelayAddr;
use hum_shared::route::session::Unwrap;
use hum_shared::route::{
    ALPN_HUM2, CELL_LEN, GroupTagKey, HELLO_HEADER_LEN, Hello, Refusal, RouteError, TagKey,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use self::core::{Behaviour, MAX_BODY, Origin, Profile, SendKind, Target};
use self::core::{Core, Meta, Outgoing};
pub use self::rng::Rng;
pub use hum_shared::route::session::padded_parts;

pub use hum_shared::route::session::{Card, Via};

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An item for us: from the `sender`-th expected sender, in the home epoch `epoch`.
    Received {
        /// Index of the sender, in the order of `expect_*` calls (contacts and group
        /// members of a profile come first, in the order they were added).
        sender: usize,
        /// The message body.
        body: Vec<u8>,
        /// How it came.
        via: Via,
        /// The home relay's epoch it was deposited for.
        epoch: u32,
        /// Who sent it, as the profile knows them.
        from: Origin,
        /// What it carries.
        kind: SendKind,
        /// The sender's message number (texts), or the receipt's own number.
        msg: u64,
        /// Which part of the message.
        part: u16,
        /// Of how many (padded to the part classes).
        parts: u16,
        /// The sender's receipts for our texts, by message number.
        acks: Vec<u64>,
        /// Digest of the attempt's tag seed (as the relays' curious logs name it).
        seed: String,
        /// The entry relay's tick of the down cell that carried it.
        tick: u64,
        /// A part we already had, re-sent under a fresh tag (an answer was lost).
        again: bool,
    },
    /// An item we had already seen (dropped).
    Duplicate,
    /// A real deposit left in the up cell of `tick` (every attempt, re-sends included).
    Deposited {
        /// The message id its answers name.
        id: u64,
        /// What it carries.
        kind: SendKind,
        /// Whom it is for.
        target: Target,
        /// The message number (texts).
        msg: u64,
        /// Which part.
        part: u16,
        /// Of how many.
        parts: u16,
        /// Receipts it carries.
        acks: usize,
        /// Digest of its tag seed (joins the mailbox relay's deposit records).
        seed: String,
        /// Digest of its wrapped envelope.
        payload: String,
        /// Digest of the sealed slot (joins the entry relay's slot records).
        slot: String,
        /// The entry tick of the down cell the up cell answered.
        tick: u64,
    },
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

/// Cells and bytes each way, counted by the client.
#[derive(Debug, Default)]
pub struct Counts {
    /// Down cells read.
    pub cells_in: AtomicU64,
    /// Up cells written.
    pub cells_out: AtomicU64,
    /// Bytes read from the TCP connection (TLS records, handshake included).
    pub bytes_in: AtomicU64,
    /// Bytes written to the TCP connection.
    pub bytes_out: AtomicU64,
}

/// A TCP stream that counts its bytes.
#[derive(Debug)]
struct Counted {
    tcp: TcpStream,
    counts: Arc<Counts>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.counts.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.counts
                .bytes_out
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

enum Command {
    Expect(TagKey, Unwrap),
    Send(Outgoing),
    Text(Target, u64, u16),
    CatchUp(u32),
    Stop,
}

/// A running test client.
pub struct TestClient {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<(u64, Event)>,
    counts: Arc<Counts>,
    status: Arc<std::sync::Mutex<Status>>,
    local: SocketAddr,
    next_id: u64,
    senders: usize,
    task: Option<JoinHandle<Profile>>,
}

impl std::fmt::Debug for TestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient").finish_non_exhaustive()
    }
}

/// A session that ended: the profile, and the events it made that were not drained.
#[derive(Debug)]
pub struct Closed {
    /// The profile, to start the next session with.
    pub profile: Profile,
    /// Events not drained before the end, with the Unix milliseconds of their beat.
    pub events: Vec<(u64, Event)>,
}

/// A session that did not start, and the profile it was to run.
#[derive(Debug)]
pub struct NotStarted {
    /// Why.
    pub error: ClientError,
    /// The profile, unchanged.
    pub profile: Box<Profile>,
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

/// Opens TLS 1.3 over `io` to `addr` with its fingerprint pinned and ALPN `hum/2`.
async fn tls<IO: AsyncRead + AsyncWrite + Unpin>(
    io: IO,
    addr: &RelayAddr,
) -> Result<tokio_rustls::client::TlsStream<IO>, ClientError> {
    let config = crate::tls::pinned_client_config(&addr.fingerprint, ALPN_HUM2, None);
    let name =
        ServerName::try_from(addr.host.clone()).map_err(|e| ClientError::Io(e.to_string()))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
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

/// Unix milliseconds now.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A raw hum/2 connection to `entry`, after its hello: for tests that misbehave.
///
/// # Errors
/// [`ClientError`] when the relay cannot be reached or its hello is bad.
pub async fn connect_raw(entry: &RelayAddr) -> Result<(Stream, Hello), ClientError> {
    let tcp = TcpStream::connect(entry.host_port())
        .await
        .map_err(|e| ClientError::Io(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
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
        let profile = Profile::new(
            me.clone(),
            pins.to_vec(),
            Behaviour::default(),
            Rng::from_os(),
        );
        Self::start(entry, None, profile).await.map_err(|n| n.error)
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
        let profile = Profile::new(
            me.clone(),
            pins.to_vec(),
            Behaviour::default(),
            Rng::from_os(),
        );
        Self::start(entry, Some(from), profile)
            .await
            .map_err(|n| n.error)
    }

    /// Starts a session of `profile` at the entry relay `entry`, from the source address
    /// `from` if given. [`TestClient::close`] gives the profile back.
    ///
    /// # Errors
    /// [`NotStarted`], with the profile, when the relay cannot be reached or its hello
    /// is bad.
    pub async fn start(
        entry: &RelayAddr,
        from: Option<std::net::IpAddr>,
        profile: Profile,
    ) -> Result<Self, NotStarted> {
        let counts = Arc::new(Counts::default());
        let opened = async {
            let io = |e: std::io::Error| ClientError::Io(e.to_string());
            let tcp = match from {
                Some(from) => {
                    let sock = TcpSocket::new_v4().map_err(io)?;
                    sock.bind(SocketAddr::new(from, 0)).map_err(io)?;
                    let to = tokio::net::lookup_host(entry.host_port())
                        .await
                        .map_err(io)?
                        .next()
                        .ok_or_else(|| ClientError::Io("no address".to_owned()))?;
                    sock.connect(to).await.map_err(io)?
                }
                None => TcpStream::connect(entry.host_port()).await.map_err(io)?,
            };
            let _ = tcp.set_nodelay(true);
            let local = tcp.local_addr().map_err(io)?;
            let counted = Counted {
                tcp,
                counts: Arc::clone(&counts),
            };
            let mut stream = tls(counted, entry).await?;
            let hello = read_hello(&mut stream).await?;
            Ok((stream, local, hello))
        };
        let (stream, local, hello) = match opened.await {
            Ok(o) => o,
            Err(error) => {
                return Err(NotStarted {
                    error,
                    profile: Box::new(profile),
                });
            }
        };
        let senders = profile.senders();
        let core = Core::new(profile, hello);
        let mut client = Self::run(stream, local, core, counts);
        client.senders = senders;
        Ok(client)
    }

    fn run(
        mut stream: tokio_rustls::client::TlsStream<Counted>,
        local: SocketAddr,
        mut core: Core,
        counts: Arc<Counts>,
    ) -> Self {
        let (commands, mut rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let status = Arc::new(std::sync::Mutex::new(Status::default()));
        let (c, st) = (Arc::clone(&counts), Arc::clone(&status));
        let task = tokio::spawn(async move {
            let mut cell = vec![0u8; CELL_LEN];
            let mut stop = false;
            let end = loop {
                if let Err(e) = stream.read_exact(&mut cell).await {
                    break Err(ClientError::Io(e.to_string()));
                }
                c.cells_in.fetch_add(1, Ordering::Relaxed);
                // The up cell leaves first: nothing the down cell carries, and no
                // command, runs before it.
                let up = core.take_up();
                if let Err(e) = stream.write_all(&up[..]).await {
                    break Err(ClientError::Io(e.to_string()));
                }
                c.cells_out.fetch_add(1, Ordering::Relaxed);
                while let Ok(cmd) = rx.try_recv() {
                    match cmd {
                        Command::Expect(k, u) => {
                            core.expect(k, u);
                        }
                        Command::Send(m) => core.queue(m),
                        Command::Text(to, msg, parts) => {
                            core.queue_text(to, msg, parts);
                        }
                        Command::CatchUp(e) => core.catch_up(e),
                        Command::Stop => stop = true,
                    }
                }
                if stop {
                    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
                    break Ok(());
                }
                let down = core.on_down(&cell);
                let ms = unix_ms();
                for e in core.events.drain(..) {
                    let _ = events_tx.send((ms, e));
                }
                if let Err(e) = down {
                    break Err(e);
                }
                // The next tick's cell is sealed now, so writing it costs the same
                // whatever it holds.
                core.prepare();
                let ms = unix_ms();
                for e in core.events.drain(..) {
                    let _ = events_tx.send((ms, e));
                }
                if let Ok(mut s) = st.lock() {
                    let now = core.status();
                    *s = Status {
                        tick: now.tick,
                        epoch: now.home_epoch.unwrap_or(0),
                        bucket: now.bucket.unwrap_or(0),
                        single: now.single,
                        outbox: now.outbox,
                    };
                }
            };
            let _ = events_tx.send((unix_ms(), Event::Ended(end)));
            core.into_profile()
        });
        Self {
            commands,
            events,
            counts,
            status,
            local,
            next_id: 1,
            senders: 0,
            task: Some(task),
        }
    }

    /// Ends the session (at the next beat: the connection is closed, not dropped) and
    /// gives the profile back, with what was in flight returned to its outbox, and the
    /// events not yet drained, each with the Unix milliseconds of its beat.
    ///
    /// # Errors
    /// [`ClientError::Io`] if the session's task was cancelled (the profile is lost).
    pub async fn close(mut self) -> Result<Closed, ClientError> {
        let _ = self.commands.send(Command::Stop);
        let task = self
            .task
            .take()
            .ok_or_else(|| ClientError::Io("closed twice".to_owned()))?;
        let profile = task.await.map_err(|e| ClientError::Io(e.to_string()))?;
        Ok(Closed {
            profile,
            events: self.drain_stamped(),
        })
    }

    /// The client's own address of this session's connection (what the entry relay
    /// sees as its peer).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends text `msg` of `parts` parts (padded to its class: 1, 4, 16, ...) to
    /// `target`, a contact or a group of the profile; a text to a contact carries the
    /// receipts owed to it.
    pub fn send_text(&self, target: Target, msg: u64, parts: u16) {
        let _ = self.commands.send(Command::Text(target, msg, parts));
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
            meta: Meta::raw(),
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
        let by_relay = hum_shared::route::session::Session::split_by_relay(to);
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
            .map(|(_, e)| e)
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
            let (_, e) = tokio::time::timeout_at(deadline, self.events.recv())
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
        self.drain_stamped().into_iter().map(|(_, e)| e).collect()
    }

    /// Every event that arrived so far, each with the Unix milliseconds of the beat
    /// that made it.
    pub fn drain_stamped(&mut self) -> Vec<(u64, Event)> {
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

    /// Bytes each way on the TCP connection so far (TLS records and handshake).
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.counts.bytes_in.load(Ordering::Relaxed),
            self.counts.bytes_out.load(Ordering::Relaxed),
        )
    }

    /// What the client knows now.
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| *s).unwrap_or_default()
    }

    /// Whether the client's connection task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}
