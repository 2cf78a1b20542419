//! Relay links (docs/PROTOCOL.md, hum/2 §H5): one TLS 1.3 connection per pair of peer
//! relays, pinned by fingerprint in both directions (the dialler presents its relay
//! certificate as a client certificate), ALPN `hum/2-link`, the link hello
//! (`LinkHello::agree`), then fixed-size frames both ways.
//!
//! The relay with the lower id dials, again and again with jittered backoff; the other
//! accepts. A peer that sends garbage or a frame of a size the link does not carry,
//! stays silent, or stops reading, loses that link only, with a counted reason; the
//! beat and every client go on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hum_shared::CertFingerprint;
use hum_shared::route::{
    AgreedLink, FRAME_HEADER_LEN, ForwardAnswers, ForwardBatch, InnerBlob, LINK_HELLO_LEN,
    LinkFrame, LinkHello, RelayId, RouteError, read_frame_header,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::mailbox::{Fate, Mailbox};
use crate::shutdown::Shutdown;
use crate::state::Shared;
use crate::stats::Stats;
use crate::{Peer, random};

/// Frames waiting to be written on one link; a peer that lets more pile up is not
/// reading and loses the link.
const QUEUE: usize = 32;

/// Why a link ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkEnd {
    Garbage,
    WrongSize,
    Silent,
    Closed,
    Refused,
    Replaced,
    Shutdown,
}

/// Counts of what went over one link (never contents).
#[derive(Debug, Default)]
struct Counters {
    out: Mutex<BTreeMap<(u8, usize), u64>>,
    into: Mutex<BTreeMap<(u8, usize), u64>>,
}

/// What went over one link so far: frames by kind and size, each way.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkSnapshot {
    /// The peer relay.
    pub peer: RelayId,
    /// Whether the link is up now.
    pub up: bool,
    /// Frames sent: `(kind byte, frame length) -> count`.
    pub sent: BTreeMap<(u8, usize), u64>,
    /// Frames received: `(kind byte, frame length) -> count`.
    pub received: BTreeMap<(u8, usize), u64>,
}

/// A link that is up: where its frames go, the sizes agreed, the forward batches
/// waiting for answers (in order), and how to close it.
#[derive(Clone)]
struct Up {
    frames: mpsc::Sender<Arc<[u8]>>,
    agreed: AgreedLink,
    generation: u64,
    waiting: Arc<Mutex<VecDeque<oneshot::Sender<ForwardAnswers>>>>,
    close: Arc<Notify>,
}

/// One peer of the relays file and its link.
struct PeerLink {
    peer: Peer,
    id: RelayId,
    up: Mutex<Option<Up>>,
    counters: Counters,
}

/// Every peer relay and its link.
pub(crate) struct Links {
    peers: Vec<PeerLink>,
    generation: AtomicU64,
    client_configs: HashMap<RelayId, Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Links {
    pub(crate) fn new(
        peers: &[Peer],
        client_configs: HashMap<RelayId, Arc<rustls::ClientConfig>>,
    ) -> Self {
        Self {
            peers: peers
                .iter()
                .map(|p| PeerLink {
                    peer: p.clone(),
                    id: p.id(),
                    up: Mutex::new(None),
                    counters: Counters::default(),
                })
                .collect(),
            generation: AtomicU64::new(1),
            client_configs,
        }
    }

    fn find(&self, id: RelayId) -> Option<&PeerLink> {
        self.peers.iter().find(|p| p.id == id)
    }

    /// The peer whose certificate has this fingerprint.
    pub(crate) fn by_fingerprint(&self, fp: &CertFingerprint) -> Option<RelayId> {
        self.peers
            .iter()
            .find(|p| p.peer.address.fingerprint == *fp)
            .map(|p| p.id)
    }

    /// The peers, with their roles and capacities.
    pub(crate) fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().map(|p| &p.peer)
    }

    /// Whether the link to `id` is up.
    pub(crate) fn is_up(&self, id: RelayId) -> bool {
        self.find(id).is_some_and(|p| lock(&p.up).is_some())
    }

    /// Sends `frame` to `id`; false if the link is down or the frame does not fit it.
    /// A peer that does not read loses the link.
    pub(crate) fn send(&self, id: RelayId, frame: &LinkFrame, stats: &Stats) -> bool {
        let Some(p) = self.find(id) else {
            return false;
        };
        let Some(up) = lock(&p.up).clone() else {
            return false;
        };
        let bytes: Arc<[u8]> = match frame.encode(&up.agreed.outgoing) {
            Ok(b) => b.into(),
            Err(err) => {
                tracing::error!(cause = %err, "a frame does not fit its link");
                return false;
            }
        };
        self.send_bytes(p, &up, bytes, stats)
    }

    fn send_bytes(&self, p: &PeerLink, up: &Up, bytes: Arc<[u8]>, stats: &Stats) -> bool {
        let key = (bytes[0], bytes.len());
        match up.frames.try_send(bytes) {
            Ok(()) => {
                *lock(&p.counters.out).entry(key).or_default() += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                Stats::add(&stats.route.link_lagging, 1);
                tracing::warn!(peer = %p.id, "peer relay does not read; closing its link");
                up.close.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Sends `frame` to every peer whose role `to` accepts and whose link is up; each
    /// link's encoding is made once per distinct frame size.
    pub(crate) fn broadcast(&self, frame: &LinkFrame, to: impl Fn(&Peer) -> bool, stats: &Stats) {
        let mut made: Vec<(hum_shared::route::LinkConfig, Arc<[u8]>)> = Vec::new();
        for p in self.peers.iter().filter(|p| to(&p.peer)) {
            let Some(up) = lock(&p.up).clone() else {
                continue;
            };
            let cfg = up.agreed.outgoing;
            let bytes = match made.iter().find(|(c, _)| *c == cfg) {
                Some((_, b)) => Arc::clone(b),
                None => match frame.encode(&cfg) {
                    Ok(b) => {
                        let b: Arc<[u8]> = b.into();
                        made.push((cfg, Arc::clone(&b)));
                        b
                    }
                    Err(err) => {
                        tracing::error!(cause = %err, "a frame does not fit its link");
                        continue;
                    }
                },
            };
            self.send_bytes(p, &up, bytes, stats);
        }
    }

    /// Sends a forward batch to `dest` and returns where its answers will arrive.
    fn forward(
        &self,
        dest: RelayId,
        batch: ForwardBatch,
        stats: &Stats,
    ) -> Option<oneshot::Receiver<ForwardAnswers>> {
        let p = self.find(dest)?;
        let up = lock(&p.up).clone()?;
        let bytes: Arc<[u8]> = LinkFrame::Forward(batch)
            .encode(&up.agreed.outgoing)
            .ok()?
            .into();
        let (tx, rx) = oneshot::channel();
        // Queued before sending, so the answer always finds its place.
        lock(&up.waiting).push_back(tx);
        if self.send_bytes(p, &up, bytes, stats) {
            Some(rx)
        } else {
            lock(&up.waiting).pop_back();
            None
        }
    }

    /// The capacity agreed with `id`, if its link is up.
    fn capacity(&self, id: RelayId) -> Option<usize> {
        let p = self.find(id)?;
        lock(&p.up).as_ref().map(|u| u.agreed.outgoing.capacity)
    }

    /// What went over each link.
    pub(crate) fn snapshots(&self) -> Vec<LinkSnapshot> {
        self.peers
            .iter()
            .map(|p| LinkSnapshot {
                peer: p.id,
                up: lock(&p.up).is_some(),
                sent: lock(&p.counters.out).clone(),
                received: lock(&p.counters.into).clone(),
            })
            .collect()
    }

    /// Closes every link (shutdown).
    pub(crate) fn close_all(&self) {
        for p in &self.peers {
            if let Some(up) = lock(&p.up).as_ref() {
                up.close.notify_one();
            }
        }
    }
}

/// The relay with the lower id dials.
pub(crate) fn dials(me: RelayId, peer: RelayId) -> bool {
    me < peer
}

/// Dials `peer` until shutdown, with a backoff from one tick to `max_backoff`, doubled
/// after each failure and jittered by ±50 %.
pub(crate) async fn dial_loop(shared: Arc<Shared>, peer: RelayId, mut shutdown: Shutdown) {
    let Some(p) = shared.links.find(peer) else {
        return;
    };
    let address = p.peer.address.clone();
    let Some(config) = shared.links.client_configs.get(&peer).cloned() else {
        return;
    };
    let tick = shared.config.tick;
    let mut backoff = tick;
    loop {
        let attempt = async {
            let tcp = TcpStream::connect(address.host_port()).await.ok()?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from(address.host.clone()).ok()?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(&config))
                .connect(name, tcp)
                .await
                .ok()?;
            let cert = tls.get_ref().1.peer_certificates()?.first()?.to_vec();
            Some((tls, cert))
        };
        let connected = tokio::select! {
            r = tokio::time::timeout(shared.config.handshake_timeout, attempt) => r.ok().flatten(),
            () = shutdown.recv() => return,
        };
        if let Some((tls, cert)) = connected {
            let lasted = tokio::time::Instant::now();
            run(Arc::clone(&shared), peer, tls, cert, shutdown.clone()).await;
            if lasted.elapsed() > shared.config.max_backoff {
                backoff = tick;
            }
        }
        let jitter = 0.5 + random::below(1_000_000) as f64 / 1_000_000.0;
        let wait = backoff.mul_f64(jitter);
        backoff = (backoff * 2).min(shared.config.max_backoff);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.recv() => return,
        }
    }
}

/// Serves one link until it ends: hello, agreement, then frames both ways.
pub(crate) async fn run<S>(
    shared: Arc<Shared>,
    peer: RelayId,
    mut tls: S,
    certificate: Vec<u8>,
    mut shutdown: Shutdown,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(p) = shared.links.find(peer) else {
        return;
    };
    let config = &shared.config;
    let ours = LinkHello {
        relay: shared.id,
        role: config.role.link_role(),
        tick_micros: config.tick_micros(),
        tick: shared.now_tick(),
        capacity: p.peer.capacity,
        buckets: if config.role.is_mailbox() {
            config.bucket_count()
        } else {
            0
        },
        epoch_ticks: if config.role.is_mailbox() {
            config.epoch_ticks
        } else {
            0
        },
        flag_bits: if config.role.is_mailbox() {
            config.flag_bits
        } else {
            0
        },
    };
    let hello = async {
        tls.write_all(&ours.encode()).await.ok()?;
        tls.flush().await.ok()?;
        let mut theirs = [0u8; LINK_HELLO_LEN];
        tls.read_exact(&mut theirs).await.ok()?;
        Some(LinkHello::decode(&theirs))
    };
    let theirs = tokio::select! {
        r = tokio::time::timeout(config.handshake_timeout, hello) => r.ok().flatten(),
        () = shutdown.recv() => return,
    };
    let agreed = match theirs {
        Some(Ok(h)) if h.role != p.peer.role.link_role() => Err(RouteError::Link(
            "the peer's role is not the one in the relays file",
        )),
        Some(Ok(h)) => ours.agree(&h, peer),
        Some(Err(e)) => Err(e),
        None => Err(RouteError::Link("no hello")),
    };
    let agreed = match agreed {
        Ok(a) => a,
        Err(err) => {
            Stats::add(&shared.stats.route.link_refused, 1);
            tracing::warn!(peer = %peer, cause = %err, "relay link refused");
            return;
        }
    };
    let (frames, rx) = mpsc::channel::<Arc<[u8]>>(QUEUE);
    let up = Up {
        frames,
        agreed,
        generation: shared.links.generation.fetch_add(1, Ordering::Relaxed),
        waiting: Arc::new(Mutex::new(VecDeque::new())),
        close: Arc::new(Notify::new()),
    };
    if let Some(old) = lock(&p.up).replace(up.clone()) {
        old.close.notify_one();
    }
    shared.stats.route.links_up.fetch_add(1, Ordering::Relaxed);
    tracing::info!(peer = %peer, "relay link up");
    let peer_role = p.peer.role;
    if let Some(entry) = &shared.entry
        && peer_role.is_mailbox()
    {
        entry.link_up(peer, certificate);
    }
    if let Some(mailbox) = &shared.mailbox {
        // A new link hears our clock and keys at once.
        let update = LinkFrame::Directory(mailbox.update(shared.now_tick()));
        shared.links.send(peer, &update, &shared.stats);
    }
    let (read, write) = tokio::io::split(tls);
    let writer = tokio::spawn(write_frames(write, rx));
    let end = tokio::select! {
        end = read_frames(&shared, peer, read, agreed) => end,
        () = up.close.notified() => LinkEnd::Replaced,
        () = shutdown.recv() => LinkEnd::Shutdown,
    };
    writer.abort();
    {
        let mut slot = lock(&p.up);
        if slot.as_ref().is_some_and(|u| u.generation == up.generation) {
            *slot = None;
        }
    }
    lock(&up.waiting).clear();
    if let Some(entry) = &shared.entry
        && peer_role.is_mailbox()
        && !shared.links.is_up(peer)
    {
        entry.link_down(peer);
    }
    shared.stats.route.links_up.fetch_sub(1, Ordering::Relaxed);
    let r = &shared.stats.route;
    let counter = match end {
        LinkEnd::Garbage => Some(&r.link_garbage),
        LinkEnd::WrongSize => Some(&r.link_wrong_size),
        LinkEnd::Silent => Some(&r.link_silent),
        LinkEnd::Closed => Some(&r.link_closed),
        // Counted where it was found.
        LinkEnd::Refused | LinkEnd::Replaced | LinkEnd::Shutdown => None,
    };
    if let Some(c) = counter {
        Stats::add(c, 1);
    }
    tracing::info!(peer = %peer, end = ?end, "relay link down");
}

async fn write_frames<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Arc<[u8]>>) {
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() {
            return;
        }
        if rx.is_empty() && w.flush().await.is_err() {
            return;
        }
    }
}

async fn read_frames<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    peer: RelayId,
    mut r: R,
    agreed: AgreedLink,
) -> LinkEnd {
    let silence =
        shared.config.tick * u32::try_from(shared.config.link_silence).unwrap_or(u32::MAX);
    let Some(p) = shared.links.find(peer) else {
        return LinkEnd::Refused;
    };
    loop {
        let mut header = [0u8; FRAME_HEADER_LEN];
        match tokio::time::timeout(silence, r.read_exact(&mut header)).await {
            Err(_) => return LinkEnd::Silent,
            Ok(Err(_)) => return LinkEnd::Closed,
            Ok(Ok(_)) => {}
        }
        let len = match read_frame_header(&header, &agreed.incoming) {
            Ok((_, len)) => len,
            Err(RouteError::Length { .. }) => return LinkEnd::WrongSize,
            Err(_) => return LinkEnd::Garbage,
        };
        let mut bytes = vec![0u8; FRAME_HEADER_LEN + len];
        bytes[..FRAME_HEADER_LEN].copy_from_slice(&header);
        match tokio::time::timeout(silence, r.read_exact(&mut bytes[FRAME_HEADER_LEN..])).await {
            Err(_) => return LinkEnd::Silent,
            Ok(Err(_)) => return LinkEnd::Closed,
            Ok(Ok(_)) => {}
        }
        *lock(&p.counters.into)
            .entry((header[0], bytes.len()))
            .or_default() += 1;
        let Ok(frame) = LinkFrame::decode(&bytes, &agreed.incoming) else {
            return LinkEnd::Garbage;
        };
        if dispatch(shared, peer, p.peer.role, frame).is_err() {
            return LinkEnd::Garbage;
        }
    }
}

/// Hands a frame to the role it is for; a frame no role of ours takes from this peer is
/// garbage.
fn dispatch(
    shared: &Arc<Shared>,
    peer: RelayId,
    role: crate::Role,
    frame: LinkFrame,
) -> Result<(), ()> {
    let we = shared.config.role;
    match frame {
        LinkFrame::Slots(batch) if we.is_mailbox() && role.is_entry() => {
            let arrived = tokio::time::Instant::now();
            tokio::spawn(home_batch(Arc::clone(shared), peer, batch, arrived));
        }
        LinkFrame::Forward(batch) if we.is_mailbox() && role.is_mailbox() => {
            tokio::spawn(destination_batch(Arc::clone(shared), peer, batch));
        }
        LinkFrame::ForwardAnswers(answers) if we.is_mailbox() && role.is_mailbox() => {
            let waiting = shared
                .links
                .find(peer)
                .and_then(|p| lock(&p.up).as_ref().map(|u| Arc::clone(&u.waiting)));
            let next = waiting.and_then(|w| lock(&w).pop_front());
            match next {
                Some(tx) => {
                    let _ = tx.send(answers);
                }
                // Answers to a batch never sent.
                None => return Err(()),
            }
        }
        LinkFrame::Replies(batch) if we.is_entry() && role.is_mailbox() => {
            if let Some(entry) = &shared.entry
                && !entry.on_replies(peer, batch)
            {
                Stats::add(&shared.stats.route.replies_missing, 1);
            }
        }
        LinkFrame::Stream(batch) if we.is_entry() && role.is_mailbox() => {
            if let Some(entry) = &shared.entry {
                entry.on_stream(peer, Arc::new(batch));
            }
        }
        // Also the keep-alive between two mailbox relays.
        LinkFrame::Directory(update) if role.is_mailbox() => {
            if let Some(entry) = &shared.entry {
                entry.on_directory(peer, update, shared.now_tick());
            }
        }
        _ => return Err(()),
    }
    Ok(())
}

/// The home role's work on one entry batch: open every slot, forward what goes
/// elsewhere (a batch of exactly the capacity to every mailbox peer), wait until half a
/// tick after the batch arrived, and answer every position.
async fn home_batch(
    shared: Arc<Shared>,
    source: RelayId,
    batch: hum_shared::route::SlotBatch,
    arrived: tokio::time::Instant,
) {
    let deadline = arrived + shared.config.tick / 2;
    let tick = batch.tick;
    let work = {
        let shared = Arc::clone(&shared);
        tokio::task::spawn_blocking(move || {
            let Some(mailbox) = &shared.mailbox else {
                return Vec::new();
            };
            mailbox.open_batch(
                source,
                tick,
                &batch.slots,
                None,
                &shared.stats.route,
                &shared.curious,
            )
        })
        .await
    };
    let Ok(mut work) = work else {
        return;
    };
    // Forward batches: one to every mailbox peer, whatever it carries.
    let mut waits = Vec::new();
    let dests: Vec<RelayId> = shared
        .links
        .peers()
        .filter(|p| p.role.is_mailbox())
        .map(Peer::id)
        .collect();
    for dest in &dests {
        let Some(capacity) = shared.links.capacity(*dest) else {
            continue;
        };
        let mut places: Vec<usize> = (0..capacity).collect();
        random::shuffle(&mut places);
        let mut blobs: Vec<Option<InnerBlob>> = vec![None; capacity];
        let mut at: Vec<(usize, usize)> = Vec::new();
        for (i, w) in work.iter_mut().enumerate() {
            let Fate::Forward { dest: d, .. } = &w.fate else {
                continue;
            };
            if d != dest {
                continue;
            }
            let Some(place) = places.get(at.len()).copied() else {
                // The forward batch to that relay is full this tick.
                w.fate = Fate::Done(hum_shared::route::DepositOutcome::Full);
                Stats::add(&shared.stats.route.full, 1);
                continue;
            };
            if let Fate::Forward { blob, .. } = std::mem::replace(&mut w.fate, Fate::Sent) {
                blobs[place] = Some(blob);
                at.push((i, place));
            }
        }
        let sent = shared
            .links
            .forward(*dest, ForwardBatch { tick, blobs }, &shared.stats);
        if let Some(rx) = sent {
            waits.push((rx, at));
        }
    }
    for (rx, at) in waits {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(answers)) => {
                for (i, place) in at {
                    if let (Some(w), Some(a)) = (work.get_mut(i), answers.answers.get(place)) {
                        w.fate = Fate::Answered(a.clone());
                    }
                }
            }
            _ => Stats::add(&shared.stats.route.forward_late, at.len() as u64),
        }
    }
    tokio::time::sleep_until(deadline).await;
    let reply = Mailbox::seal(tick, work);
    shared
        .links
        .send(source, &LinkFrame::Replies(reply), &shared.stats);
}

/// The destination role's work on one forward batch: open, store, answer every place.
async fn destination_batch(shared: Arc<Shared>, home: RelayId, batch: ForwardBatch) {
    let tick = batch.tick;
    let answers = {
        let shared = Arc::clone(&shared);
        tokio::task::spawn_blocking(move || {
            let Some(mailbox) = &shared.mailbox else {
                return Vec::new();
            };
            mailbox.destination(
                home,
                tick,
                &batch.blobs,
                &shared.stats.route,
                &shared.curious,
            )
        })
        .await
    };
    let Ok(answers) = answers else {
        return;
    };
    shared.links.send(
        home,
        &LinkFrame::ForwardAnswers(ForwardAnswers { tick, answers }),
        &shared.stats,
    );
}
