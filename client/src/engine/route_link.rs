//! The hum/2 link: one connection, to the entry relay, for everything, on a thread of its
//! own that owns the route session (`hum_shared::route::session`).
//!
//! Per down cell it reads the cell, writes the up cell the session sealed a tick ahead
//! at a random moment of up to a quarter tick after the read, and only then gives the
//! down cell to the session, takes the engine's operations and seals the next tick's
//! cell: the moment an up cell leaves never depends on what it carries nor on what the
//! down cell brought. Sealing (X25519 per slot) happens here, so the answer's timing
//! never waits on the engine.
//!
//! The engine tells the link what to expect and what to send ([`RouteOp`]); the link
//! reports what happened ([`RouteReport`]). What it was told outlives a connection: on
//! every new connection a new session starts from the last state, expects every key
//! again and takes back the deposits the last one did not see stored. It reconnects with
//! jittered backoff after a lost connection only, never because of whom the user talks
//! to or because an answer was missing or bad.

use std::collections::BTreeMap;
use std::time::Duration;

use hum_shared::RelayAddr;
use hum_shared::crypto::Envelope;
use hum_shared::route::session::{
    Behaviour, Card, DepositId, Outgoing, SenderId, Session, SessionEvent, SessionState, Status,
    Unwrap, system_rng,
};
use hum_shared::route::{CELL_LEN, Directory, HELLO_HEADER_LEN, Hello, TagKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedSender};

use tokio::sync::watch;

use super::Relays;
use super::link::{Backoff, LinkControl, answer_jitter, random_below};

/// How long TCP, TLS and the hello may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many operations wait for the link at most.
pub(crate) const ROUTE_QUEUE: usize = 4096;

/// The engine's name for a sender it expects items from (a contact, a group member, an
/// invite's answer): the link reports items under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Expected(pub(crate) u64);

/// What the engine tells the link.
#[allow(dead_code)] // the core's delivery on hum/2 takes the rest next
pub(crate) enum RouteOp {
    /// Recognise items sent under `key`, reported as from `who`.
    Expect {
        /// The engine's name for the sender.
        who: Expected,
        /// The sending direction's tag key.
        key: TagKey,
        /// How its items are unwrapped.
        unwrap: Unwrap,
    },
    /// Recognise items sent under `key`, a tag key many clients write under (an invite's:
    /// every acceptor of the code answers under it), unwrapped as our own.
    ExpectShared {
        /// The engine's name for the sender.
        who: Expected,
        /// The invite's tag key.
        key: TagKey,
    },
    /// Stop recognising `who`'s items.
    Forget(Expected),
    /// Deposit this (first in, first out).
    Queue(Outgoing),
    /// Drop this deposit if it has not left yet.
    Cancel(DepositId),
    /// Catch up this epoch of the home relay.
    CatchUp(u32),
}

impl std::fmt::Debug for RouteOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Expect { who, .. } => write!(f, "Expect({})", who.0),
            Self::ExpectShared { who, .. } => write!(f, "ExpectShared({})", who.0),
            Self::Forget(who) => write!(f, "Forget({})", who.0),
            Self::Queue(m) => write!(f, "Queue({})", m.id.0),
            Self::Cancel(id) => write!(f, "Cancel({})", id.0),
            Self::CatchUp(e) => write!(f, "CatchUp({e})"),
        }
    }
}

/// What the link tells the engine.
#[derive(Debug, Clone)]
#[allow(dead_code)] // the core's delivery on hum/2 reads the rest next
pub(crate) enum RouteReport {
    /// On the beat of the entry relay.
    Up {
        /// Whether the entry relay is a single relay (it can see who talks to whom).
        single: bool,
        /// The entry relay's tick length.
        tick_micros: u32,
    },
    /// The connection is down; the next attempt is in `retry_in_ms`.
    Down {
        /// When the next attempt is.
        retry_in_ms: u64,
        /// Why, when waiting will not help (a wrong certificate, a relay of the wrong role).
        cause: Option<String>,
    },
    /// An item from `who`.
    Received {
        /// The sender, as the engine named it.
        who: Expected,
        /// The sealed envelope.
        envelope: Envelope,
        /// The entry tick of the down cell that carried it.
        tick: u64,
    },
    /// A deposit left (every attempt), in the up cell of entry tick `tick`.
    Deposited {
        /// The deposit.
        id: DepositId,
        /// The entry tick.
        tick: u64,
    },
    /// A deposit was stored at its destination: it is sent.
    Stored(DepositId),
    /// A deposit came back (full bucket, wrong epoch, no answer): the session sends it
    /// again by itself.
    Again(DepositId),
    /// A deposit cannot be sent (its relay is not in the directory); it left the link.
    Unsendable {
        /// The deposit.
        id: DepositId,
        /// Why, in words.
        why: String,
    },
    /// Every page of a caught-up epoch was asked for.
    CaughtUp(u32),
    /// A mailbox relay restarted (it announces new slot keys, signed by its pinned
    /// certificate, for an epoch it had keys for, seen on one connection or from one
    /// connection to the next): what it stored and nobody read yet is gone.
    Restarted(hum_shared::route::RelayId),
    /// The session's state, worth saving now.
    State(SessionState),
    /// What the link knows now (for the status bar), about once a second, with the cell
    /// rates of the last second.
    Status {
        /// The session's status.
        status: Status,
        /// Cells per second, each way (one up for every one down).
        rate: u32,
    },
}

/// Where a link's reports go: the engine's inputs, or a test's channel. Sending never
/// waits, so the link's beat never waits on whoever reads them.
pub(crate) struct Reports(Box<dyn Fn(RouteReport) -> bool + Send>);

impl Reports {
    /// Reports go to `to`; it returns `false` once nobody reads them.
    pub(crate) fn new(to: impl Fn(RouteReport) -> bool + Send + 'static) -> Reports {
        Reports(Box::new(to))
    }

    /// Hands on one report; `false` when nobody reads them any more.
    fn send(&self, r: RouteReport) -> bool {
        (self.0)(r)
    }
}

impl From<UnboundedSender<RouteReport>> for Reports {
    fn from(to: UnboundedSender<RouteReport>) -> Reports {
        Reports::new(move |r| to.send(r).is_ok())
    }
}

/// What a link is set up with.
#[derive(Debug)]
pub(crate) struct RouteSetup {
    /// The entry and home relays.
    pub(crate) relays: Relays,
    /// This profile as its contacts know it.
    pub(crate) me: Card,
    /// The session's own behaviour (loops, delays in ticks) for the entry relay's tick
    /// length in microseconds, as its hello announces it (the chat client:
    /// [`Behaviour::design`]).
    pub(crate) behaviour: fn(u32) -> Behaviour,
    /// The state the last session left (from the store).
    pub(crate) state: SessionState,
}

/// Why a connection could not be made or was lost.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    /// TCP, TLS or the hello failed on the way.
    #[error("cannot reach the relay: {0}")]
    Io(#[from] std::io::Error),
    /// The relay presented a certificate other than the one its address pins.
    #[error("the relay's certificate does not match the fingerprint in its address")]
    WrongCertificate,
    /// The host is not a name rustls accepts.
    #[error("invalid relay host name")]
    Host,
    /// The relay did not agree on ALPN `hum/2`.
    #[error("the relay does not speak hum/2")]
    Alpn,
    /// The hello did not decode.
    #[error("bad hello from the relay: {0}")]
    Hello(hum_shared::route::RouteError),
    /// The relay's role does not fit the configuration.
    #[error("{0}")]
    Role(&'static str),
}

impl LinkError {
    /// A cause the user must act on (waiting will not fix it).
    fn shown(&self) -> Option<String> {
        match self {
            Self::Io(_) => None,
            other => Some(other.to_string()),
        }
    }
}

/// Whether the entry relay's directory fits the configuration: an entry relay that is
/// also the home relay must be a single relay (it sees everything anyway, and says so),
/// and a single relay is used as entry and home at once.
fn check_roles(relays: &Relays, directory: &Directory) -> Result<(), LinkError> {
    match (relays.is_single(), directory.single) {
        (true, false) => Err(LinkError::Role(
            "the entry relay is also your home relay but is part of a mesh: give another home relay (--home)",
        )),
        (false, true) => Err(LinkError::Role(
            "the entry relay is a single relay: use it alone (--relay), as entry and home",
        )),
        _ => Ok(()),
    }
}

type Stream = tokio_rustls::client::TlsStream<TcpStream>;

/// TCP, TLS 1.3 pinned to the entry relay's fingerprint with ALPN `hum/2`, the hello.
async fn connect(entry: &RelayAddr) -> Result<(Stream, Hello), LinkError> {
    let tcp = TcpStream::connect(entry.host_port()).await?;
    tcp.set_nodelay(true)?;
    let name =
        rustls::pki_types::ServerName::try_from(entry.host.clone()).map_err(|_| LinkError::Host)?;
    let connector =
        tokio_rustls::TlsConnector::from(hum_relay::client_config_hum2(&entry.fingerprint));
    let mut tls = connector.connect(name, tcp).await.map_err(|e| {
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
            LinkError::WrongCertificate
        } else {
            LinkError::Io(e)
        }
    })?;
    if tls.get_ref().1.alpn_protocol() != Some(hum_shared::route::ALPN_HUM2) {
        return Err(LinkError::Alpn);
    }
    let mut bytes = vec![0u8; HELLO_HEADER_LEN];
    tls.read_exact(&mut bytes).await?;
    let total = Hello::total_len(&bytes).map_err(LinkError::Hello)?;
    bytes.resize(total, 0);
    tls.read_exact(&mut bytes[HELLO_HEADER_LEN..]).await?;
    let hello = Hello::decode(&bytes).map_err(LinkError::Hello)?;
    Ok((tls, hello))
}

/// What the link was told, kept across connections.
struct Told {
    /// Each sender's tag key, how its items unwrap, and whether many write under it.
    expected: BTreeMap<Expected, (TagKey, Unwrap, bool)>,
    /// Deposits not yet handed to a session (or taken back from the last one).
    outbox: Vec<Outgoing>,
    catch_ups: Vec<u32>,
    state: SessionState,
    /// The directory the last connection ended with, to tell a relay restarted while
    /// the link was down.
    directory: Option<hum_shared::route::Directory>,
}

impl Told {
    /// Takes an operation while no session runs.
    fn take(&mut self, op: RouteOp) {
        match op {
            RouteOp::Expect { who, key, unwrap } => {
                self.expected.insert(who, (key, unwrap, false));
            }
            RouteOp::ExpectShared { who, key } => {
                self.expected.insert(who, (key, Unwrap::Mine, true));
            }
            RouteOp::Forget(who) => {
                self.expected.remove(&who);
            }
            RouteOp::Queue(m) => self.outbox.push(m),
            RouteOp::Cancel(id) => self.outbox.retain(|m| m.id != id),
            RouteOp::CatchUp(e) => self.catch_ups.push(e),
        }
    }
}

/// One connection's session, with the engine's names of its senders.
struct Live {
    session: Session,
    names: BTreeMap<SenderId, Expected>,
}

impl Live {
    /// A session for a new connection, from what the link was told.
    fn start(setup: &RouteSetup, told: &mut Told, hello: Hello, reports: &Reports) -> Live {
        let pins = told
            .outbox
            .iter()
            .flat_map(|m| m.to.iter().map(|c| c.home.clone()))
            .collect();
        let mut session = Session::new(
            setup.me.clone(),
            pins,
            (setup.behaviour)(hello.tick_micros),
            told.state.clone(),
            hello,
            system_rng(),
        );
        if let Some(before) = &told.directory {
            for relay in session
                .directory()
                .restarted_since(before, &session.pinned())
            {
                let _ = reports.send(RouteReport::Restarted(relay));
            }
        }
        let mut names = BTreeMap::new();
        for (who, (key, unwrap, shared)) in &told.expected {
            let sender = if *shared {
                session.expect_shared(key.clone(), unwrap.clone())
            } else {
                session.expect(key.clone(), unwrap.clone())
            };
            names.insert(sender, *who);
        }
        for m in told.outbox.drain(..) {
            session.queue(m);
        }
        for e in told.catch_ups.drain(..) {
            session.catch_up(e);
        }
        Live { session, names }
    }

    /// Takes an operation, and keeps what must outlive the connection in `told`.
    fn take(&mut self, told: &mut Told, op: RouteOp) {
        match op {
            RouteOp::Expect { who, key, unwrap } => {
                let sender = self.session.expect(key.clone(), unwrap.clone());
                self.names.insert(sender, who);
                told.expected.insert(who, (key, unwrap, false));
            }
            RouteOp::ExpectShared { who, key } => {
                let sender = self.session.expect_shared(key.clone(), Unwrap::Mine);
                self.names.insert(sender, who);
                told.expected.insert(who, (key, Unwrap::Mine, true));
            }
            RouteOp::Forget(who) => {
                told.expected.remove(&who);
                let senders: Vec<SenderId> = self
                    .names
                    .iter()
                    .filter(|(_, w)| **w == who)
                    .map(|(s, _)| *s)
                    .collect();
                for s in senders {
                    self.names.remove(&s);
                    self.session.forget(s);
                }
            }
            RouteOp::Queue(m) => {
                for c in &m.to {
                    self.session.add_pin(c.home.clone());
                }
                self.session.queue(m);
            }
            RouteOp::Cancel(id) => {
                self.session.cancel(id);
            }
            RouteOp::CatchUp(e) => self.session.catch_up(e),
        }
    }

    /// The session's events as reports.
    fn report(&mut self, reports: &Reports) {
        let events: Vec<SessionEvent> = self.session.events().collect();
        for e in events {
            let r = match e {
                SessionEvent::Received {
                    sender,
                    envelope,
                    tick,
                    ..
                } => match self.names.get(&sender) {
                    Some(&who) => RouteReport::Received {
                        who,
                        envelope,
                        tick,
                    },
                    None => continue,
                },
                SessionEvent::Deposited { id, tick, .. } => RouteReport::Deposited { id, tick },
                SessionEvent::Stored { id } => RouteReport::Stored(id),
                SessionEvent::Full { id }
                | SessionEvent::Retry { id, .. }
                | SessionEvent::Unknown { id } => RouteReport::Again(id),
                SessionEvent::Unsendable { id, why } => RouteReport::Unsendable {
                    id,
                    why: why.to_string(),
                },
                SessionEvent::CaughtUp { epoch } => RouteReport::CaughtUp(epoch),
                SessionEvent::Restarted { relay } => RouteReport::Restarted(relay),
                SessionEvent::StateChanged => RouteReport::State(self.session.state()),
                _ => continue,
            };
            let _ = reports.send(r);
        }
    }

    /// The connection is over: what it did not finish goes back to `told`.
    fn end(self, told: &mut Told, reports: &Reports) {
        told.directory = Some(self.session.directory().clone());
        let (state, outbox) = self.session.into_parts();
        let _ = reports.send(RouteReport::State(state.clone()));
        told.state = state;
        // Taken back first: what was in flight left before what was queued meanwhile.
        let later = std::mem::take(&mut told.outbox);
        told.outbox = outbox;
        told.outbox.extend(later);
    }
}

/// Runs the link until told to stop, reconnecting with backoff.
pub(crate) async fn run(
    setup: RouteSetup,
    mut ops: mpsc::Receiver<RouteOp>,
    reports: Reports,
    mut control: watch::Receiver<LinkControl>,
) {
    let entry = setup.relays.entry.clone();
    let mut told = Told {
        expected: BTreeMap::new(),
        outbox: Vec::new(),
        catch_ups: Vec::new(),
        state: setup.state.clone(),
        directory: None,
    };
    let mut backoff = Backoff::new();
    loop {
        if control.borrow().stop {
            return;
        }
        let started = tokio::time::Instant::now();
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect(&entry));
        tokio::pin!(attempt);
        let connected = loop {
            tokio::select! {
                r = &mut attempt => break r,
                changed = control.changed() => {
                    if changed.is_err() || control.borrow().stop {
                        return;
                    }
                }
                Some(op) = ops.recv() => told.take(op),
            }
        };
        let connected = match connected {
            Ok(Ok((tls, hello))) => {
                check_roles(&setup.relays, &hello.directory).map(|()| (tls, hello))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(LinkError::Io(std::io::ErrorKind::TimedOut.into())),
        };
        let (quick, cause) = match connected {
            Err(e) => {
                tracing::info!(relay = %entry.host_port(), cause = %e, "entry relay unreachable");
                let quick = matches!(&e, LinkError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused)
                    && started.elapsed() < Duration::from_secs(1);
                (quick, e.shown())
            }
            Ok((tls, hello)) => {
                backoff = Backoff::new();
                tracing::info!(relay = %entry.host_port(), "link up");
                let _ = reports.send(RouteReport::Up {
                    single: hello.directory.single,
                    tick_micros: hello.tick_micros,
                });
                let tick = Duration::from_micros(u64::from(hello.tick_micros));
                let live = Live::start(&setup, &mut told, hello, &reports);
                let (live, why) =
                    beat(tls, tick, live, &mut told, &mut ops, &reports, &mut control).await;
                live.end(&mut told, &reports);
                if control.borrow().stop {
                    return;
                }
                tracing::info!(relay = %entry.host_port(), cause = %why, "link lost");
                (false, None)
            }
        };
        let wait = backoff.wait(quick, random_below);
        let _ = reports.send(RouteReport::Down {
            retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            cause,
        });
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                changed = control.changed() => {
                    if changed.is_err() || control.borrow().stop {
                        return;
                    }
                    backoff = Backoff::new();
                    break;
                }
                Some(op) = ops.recv() => told.take(op),
            }
        }
    }
}

/// One connection's beat; returns the session and why the connection ended.
async fn beat(
    mut tls: Stream,
    tick: Duration,
    mut live: Live,
    told: &mut Told,
    ops: &mut mpsc::Receiver<RouteOp>,
    reports: &Reports,
    control: &mut watch::Receiver<LinkControl>,
) -> (Live, String) {
    let mut buf = vec![0u8; CELL_LEN];
    let silence = (tick * 50).max(Duration::from_secs(5));
    let mut cells = 0u32;
    let mut since = tokio::time::Instant::now();
    loop {
        let read = {
            // A cell read must not be cut short (the stream would lose its framing).
            let reading = tokio::time::timeout(silence, tls.read_exact(&mut buf));
            tokio::pin!(reading);
            loop {
                tokio::select! {
                    r = &mut reading => break r,
                    changed = control.changed() => {
                        if changed.is_err() || control.borrow().stop {
                            let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
                            return (live, "stopped".into());
                        }
                    }
                }
            }
        };
        match read {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return (live, e.to_string()),
            Err(_) => return (live, "the relay stopped beating".into()),
        }
        // The answer leaves at a random moment of up to a quarter tick after the read,
        // and before the down cell is even looked at: the cell sealed a tick ahead goes
        // out, then the down cell is processed. A plain sleep of this link's own thread,
        // to the deadline, so nothing done before it shows.
        let deadline = std::time::Instant::now() + answer_jitter(tick);
        let up = live.session.take_up();
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        if let Err(e) = tls.write_all(&up[..]).await {
            return (live, e.to_string());
        }
        cells += 1;
        if let Err(e) = live.session.on_down(&buf) {
            live.report(reports);
            return (live, e.to_string());
        }
        while let Ok(op) = ops.try_recv() {
            live.take(told, op);
        }
        live.session.prepare();
        live.report(reports);
        if since.elapsed() >= Duration::from_secs(1) {
            let secs = since.elapsed().as_secs_f64();
            let _ = reports.send(RouteReport::Status {
                status: live.session.status(),
                rate: (f64::from(cells) / secs).round() as u32,
            });
            cells = 0;
            since = tokio::time::Instant::now();
        }
    }
}

/// A running link: its operations channel, control and thread.
pub(crate) struct RouteLink {
    pub(crate) ops: mpsc::Sender<RouteOp>,
    pub(crate) control: watch::Sender<LinkControl>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RouteLink {
    /// Starts the link on a thread of its own with its own small runtime, so the answer
    /// to a beat never waits behind the UI, the engine or anything else.
    ///
    /// # Errors
    /// When the thread cannot start.
    pub(crate) fn spawn(
        setup: RouteSetup,
        reports: impl Into<Reports>,
    ) -> std::io::Result<RouteLink> {
        let reports = reports.into();
        let (ops, ops_rx) = mpsc::channel(ROUTE_QUEUE);
        let (control, control_rx) = watch::channel(LinkControl::default());
        let thread = std::thread::Builder::new()
            .name("hum-route".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(run(setup, ops_rx, reports, control_rx)),
                    Err(e) => tracing::error!(cause = %e, "a link runtime could not start"),
                }
            })?;
        Ok(RouteLink {
            ops,
            control,
            thread: Some(thread),
        })
    }

    /// Stops the link (its connection closed) and waits for its thread.
    pub(crate) fn stop(&mut self) {
        self.control.send_modify(|c| c.stop = true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RouteLink {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests;
