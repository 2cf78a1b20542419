//! hum/2 roles against real TLS on 127.0.0.1, with short ticks: the single relay, a
//! two-relay mesh, entry and mailbox relays apart; delivery, fixed batch sizes, bad
//! input from clients and peers, restarts, catch-up, epochs, what a seizure yields.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use hum_relay::test_client::{Card, Event, TestClient, Via};
use hum_relay::{Config, Peer, Relay, RelayHandle, Role};
use hum_shared::RelayAddr;
use hum_shared::route::TagKey;
use tokio::net::TcpListener;

type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const TICK: Duration = Duration::from_millis(20);
/// Long enough for a few round trips even on a loaded machine.
const WAIT: Duration = Duration::from_secs(5);
/// The tick of tests that count frames per tick over a window: long enough that a
/// loaded machine's scheduling delays stay a small part of every tick.
const RATE_TICK: Duration = Duration::from_millis(100);

fn config(tick: Duration) -> Config {
    let mut c = Config::ephemeral(tick);
    c.buckets = hum_relay::BucketCount::Fixed(8);
    c.max_lag = 50;
    c
}

async fn single(config: Config) -> Res<RelayHandle> {
    Ok(Relay::bind(config).await?.spawn())
}

/// A fresh state folder for one relay.
fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hum-relay2-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Relays that know each other before they start: state folders, ports bound.
struct Mesh {
    dirs: Vec<PathBuf>,
    addrs: Vec<RelayAddr>,
    listeners: Vec<Option<TcpListener>>,
}

impl Mesh {
    async fn new(name: &str, n: usize) -> Res<Self> {
        let mut m = Mesh {
            dirs: Vec::new(),
            addrs: Vec::new(),
            listeners: Vec::new(),
        };
        for i in 0..n {
            let dir = state_dir(&format!("{name}-{i}"));
            let fingerprint = hum_relay::init_identity(&dir)?;
            let l = TcpListener::bind("127.0.0.1:0").await?;
            m.addrs.push(RelayAddr {
                host: "127.0.0.1".to_owned(),
                port: l.local_addr()?.port(),
                fingerprint,
            });
            m.dirs.push(dir);
            m.listeners.push(Some(l));
        }
        Ok(m)
    }

    /// Starts relay `i` with `role` and the given peers (index, role, capacity).
    async fn start(
        &mut self,
        i: usize,
        role: Role,
        peers: &[(usize, Role, u16)],
        base: &Config,
    ) -> Res<RelayHandle> {
        let mut c = base.clone();
        c.role = role;
        c.state_dir = Some(self.dirs[i].clone());
        c.peers = peers
            .iter()
            .map(|&(j, r, cap)| Peer::new(self.addrs[j].clone(), r, cap))
            .collect();
        let listener = match self.listeners[i].take() {
            Some(l) => l,
            None => TcpListener::bind(("127.0.0.1", self.addrs[i].port)).await?,
        };
        Ok(Relay::bind_on(c, listener).await?.spawn())
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Waits until `client` has the directory it needs (its first up cell went out).
async fn ready(client: &mut TestClient) -> Res {
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.cells().1 < 3 {
        if tokio::time::Instant::now() > deadline || client.is_finished() {
            return Err(format!("the client never got going: {:?}", client.drain()).into());
        }
        tokio::time::sleep(TICK).await;
    }
    Ok(())
}

fn received(e: &Event) -> Option<(usize, Vec<u8>, Via)> {
    match e {
        Event::Received {
            sender, body, via, ..
        } => Some((*sender, body.clone(), *via)),
        Event::Ended(r) => Some((usize::MAX, format!("{r:?}").into_bytes(), Via::Live)),
        _ => None,
    }
}

fn stored(id: u64) -> impl FnMut(&Event) -> Option<()> {
    move |e| matches!(e, Event::Stored { id: i } if *i == id).then_some(())
}

/// Sends `body` and waits until it is stored. Returns how many attempts came back
/// `Unknown` (an answer lost on a loaded machine: the client deposits again, and the
/// lost attempt may have been stored too), so a test can count what a relay holds.
async fn deliver(c: &mut TestClient, to: &Card, key: &TagKey, body: &[u8]) -> Res<u64> {
    let id = c.send(to, key, body);
    let mut lost = 0;
    c.until(WAIT, |e| match e {
        Event::Stored { id: i } if *i == id => Some(()),
        Event::Unknown { id: i } if *i == id => {
            lost += 1;
            None
        }
        _ => None,
    })
    .await?;
    Ok(lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_relay_delivers_one_to_one_and_to_a_group_one_cell_per_tick_each_way() -> Res {
    let relay = single(config(TICK)).await?;
    let addr = relay.address().clone();
    let cards: Vec<Card> = (0..4).map(|_| Card::new(addr.clone())).collect();
    let mut clients = Vec::new();
    for c in &cards {
        clients.push(TestClient::connect(&addr, c, &[]).await?);
    }
    for c in &mut clients {
        ready(c).await?;
        assert!(c.status().single);
    }
    // 1:1, alice to bob.
    let ab = TagKey::generate();
    clients[1].expect_from(&ab);
    let id = clients[0].send(&cards[1], &ab, b"hello bob");
    clients[0].until(WAIT, stored(id)).await?;
    let (from, body, via) = clients[1].until(WAIT, received).await?;
    assert_eq!(
        (from, body.as_slice(), via),
        (0, &b"hello bob"[..], Via::Live)
    );
    // A group of all four, carol speaking: one deposit, one copy per member's bucket.
    let group = hum_shared::route::GroupTagKey::derive(
        &hum_shared::crypto::GroupId::from_bytes([7; 16]),
        &[9; 32],
        0,
    )?;
    let speaker = TagKey::generate();
    let mut index = Vec::new();
    for c in &mut clients {
        index.push(c.expect_group(&speaker, &group));
    }
    let ids = clients[2].send_group(&cards, &speaker, &group, b"hi all");
    assert_eq!(ids.len(), 1);
    for (c, i) in clients.iter_mut().zip(&index) {
        let (from, body, _) = c.until(WAIT, received).await?;
        assert_eq!((from, body.as_slice()), (*i, &b"hi all"[..]));
    }
    // Every client got exactly one cell per tick and answered each with one.
    let before: Vec<(u64, u64)> = clients.iter().map(TestClient::cells).collect();
    let t0 = relay.tick();
    tokio::time::sleep(TICK * 25).await;
    let ticks = relay.tick() - t0;
    for (c, b) in clients.iter().zip(before) {
        let (i, o) = c.cells();
        let (di, dout) = (i - b.0, o - b.1);
        assert!(di.abs_diff(ticks) <= 2, "{di} cells in over {ticks} ticks");
        assert!(dout.abs_diff(di) <= 1, "{dout} out for {di} in");
    }
    let s = relay.stats();
    assert_eq!(
        s.route.slots_bad + s.route.slots_replayed,
        0,
        "{:?}",
        s.route
    );
    assert_eq!(s.route.stored, 2);
    relay.shutdown().await;
    Ok(())
}

/// Two relays, both roles, each the other's peer: clients enter at one and are homed at
/// the other.
async fn two_relays(
    name: &str,
    base: &Config,
    capacity: u16,
) -> Res<(Mesh, RelayHandle, RelayHandle)> {
    let mut mesh = Mesh::new(name, 2).await?;
    let a = mesh
        .start(0, Role::Both, &[(1, Role::Both, capacity)], base)
        .await?;
    let b = mesh
        .start(1, Role::Both, &[(0, Role::Both, capacity)], base)
        .await?;
    // Both links up, each entry role has the other's directory entry, and each home
    // has opened batches padded with dummies sealed to its key (before an entry relay
    // has the key it pads with random bytes, which count as bad slots).
    let keyed = 3 * u64::from(capacity);
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.stats().route.links_up < 1
        || b.stats().route.links_up < 1
        || a.links()
            .iter()
            .any(|l| l.received.keys().all(|k| k.0 != 6))
        || b.links()
            .iter()
            .any(|l| l.received.keys().all(|k| k.0 != 6))
        || a.stats().route.slots_dummy < keyed
        || b.stats().route.slots_dummy < keyed
    {
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "the mesh did not come up: {:?} {:?}",
                a.stats().route,
                b.stats().route
            )
            .into());
        }
        tokio::time::sleep(TICK).await;
    }
    Ok((mesh, a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_relay_mesh_delivers_between_contacts_homed_at_different_relays() -> Res {
    let (mesh, a, b) = two_relays("deliver", &config(TICK), 8).await?;
    let bad = |r: &RelayHandle| {
        let s = r.stats().route;
        s.slots_bad + s.inner_bad
    };
    let bad_before = bad(&a) + bad(&b);
    let at_start = (a.stats().route, b.stats().route);
    let (at_a, at_b) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let pins = [at_a.clone(), at_b.clone()];
    // Alice and Carol enter at A and are homed at B; Bob enters at B, homed at A.
    let (alice, carol, bob) = (
        Card::new(at_b.clone()),
        Card::new(at_b.clone()),
        Card::new(at_a.clone()),
    );
    let mut ca = TestClient::connect(&at_a, &alice, &pins).await?;
    let mut cc = TestClient::connect(&at_a, &carol, &pins).await?;
    let mut cb = TestClient::connect(&at_b, &bob, &pins).await?;
    for c in [&mut ca, &mut cc, &mut cb] {
        ready(c).await?;
        assert!(!c.status().single);
    }
    let (ab, ba, ac) = (TagKey::generate(), TagKey::generate(), TagKey::generate());
    cb.expect_from(&ab);
    ca.expect_from(&ba);
    cc.expect_from(&ac);
    // Alice to Bob: home B forwards to A, whose stream reaches B's entry role.
    let mut lost = deliver(&mut ca, &bob, &ab, b"to bob").await?;
    assert_eq!(cb.until(WAIT, received).await?.1, b"to bob");
    // Bob to Alice, the other way round.
    lost += deliver(&mut cb, &alice, &ba, b"to alice").await?;
    assert_eq!(ca.until(WAIT, received).await?.1, b"to alice");
    let lost_forwards = lost;
    // Alice to Carol: both homed at B, a local deposit there.
    lost += deliver(&mut ca, &carol, &ac, b"to carol").await?;
    assert_eq!(cc.until(WAIT, received).await?.1, b"to carol");
    // One store per message, and one more at most per attempt whose answer was lost.
    let (sa, sb) = (a.stats().route, b.stats().route);
    let stored = sa.stored + sb.stored;
    assert!(
        (3..=3 + lost).contains(&stored),
        "{lost} lost: {sa:?} {sb:?}"
    );
    let forwarded = sb.forwarded + sa.forwarded;
    assert!(
        (2..=2 + lost_forwards).contains(&forwarded),
        "{lost_forwards} lost: {sa:?} {sb:?}"
    );
    assert_eq!(
        bad(&a) + bad(&b),
        bad_before,
        "{sa:?} {sb:?} at the start {at_start:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

/// Frames per tick and the set of frame sizes of each kind, over `ticks` ticks of
/// relay `r`'s link(s), whose tick is `tick`.
async fn link_window(
    r: &RelayHandle,
    tick: Duration,
    ticks: u32,
) -> (Vec<(u8, f64)>, Vec<(u8, Vec<usize>)>) {
    let before = r.links();
    let t0 = r.tick();
    tokio::time::sleep(tick * ticks).await;
    let after = r.links();
    let elapsed = (r.tick() - t0).max(1) as f64;
    let mut rates = std::collections::BTreeMap::<u8, u64>::new();
    let mut sizes = std::collections::BTreeMap::<u8, std::collections::BTreeSet<usize>>::new();
    for (b, a) in before.iter().zip(&after) {
        for (&(kind, size), &n) in &a.sent {
            let was = b.sent.get(&(kind, size)).copied().unwrap_or(0);
            if n > was {
                *rates.entry(kind).or_default() += n - was;
                sizes.entry(kind).or_default().insert(size);
            }
        }
    }
    (
        rates
            .into_iter()
            .map(|(k, n)| (k, n as f64 / elapsed))
            .collect(),
        sizes
            .into_iter()
            .map(|(k, s)| (k, s.into_iter().collect()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_batches_keep_their_size_and_rate_whoever_is_connected_and_whatever_they_do() -> Res {
    let (mesh, a, b) = two_relays("batches", &config(RATE_TICK), 8).await?;
    let (at_a, at_b) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let pins = [at_a.clone(), at_b.clone()];
    // Idle: one client, nothing sent.
    let first = Card::new(at_b.clone());
    let mut c0 = TestClient::connect(&at_a, &first, &pins).await?;
    ready(&mut c0).await?;
    let (idle_rates, idle_sizes) = link_window(&a, RATE_TICK, 40).await;
    // Busy: six clients at both entries, every one sending all the time.
    let mut cards = vec![first];
    let mut clients = vec![c0];
    for i in 0..5 {
        let (entry, home) = if i % 2 == 0 {
            (&at_a, &at_b)
        } else {
            (&at_b, &at_a)
        };
        let card = Card::new(home.clone());
        let mut c = TestClient::connect(entry, &card, &pins).await?;
        ready(&mut c).await?;
        cards.push(card);
        clients.push(c);
    }
    let key = TagKey::generate();
    for (i, c) in clients.iter_mut().enumerate() {
        for n in 0..30 {
            c.send(&cards[(i + n + 1) % cards.len()], &key, b"busy");
        }
    }
    tokio::time::sleep(RATE_TICK * 5).await;
    let (busy_rates, busy_sizes) = link_window(&a, RATE_TICK, 40).await;
    assert_eq!(idle_sizes, busy_sizes, "frame sizes moved with activity");
    assert_eq!(
        idle_rates.iter().map(|r| r.0).collect::<Vec<_>>(),
        busy_rates.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    for ((kind, idle), (_, busy)) in idle_rates.iter().zip(&busy_rates) {
        assert!(
            (idle - busy).abs() < 0.15,
            "frames of kind {kind} per tick: {idle:.2} idle, {busy:.2} busy"
        );
    }
    // Every kind a mesh of two `both` relays sends, at its schedule: slots, replies and
    // forwards once per tick, streams every second tick.
    let rate = |k: u8| idle_rates.iter().find(|r| r.0 == k).map_or(0.0, |r| r.1);
    for (kind, want) in [(1, 1.0), (2, 1.0), (3, 0.5), (4, 1.0), (5, 1.0)] {
        assert!(
            (rate(kind) - want).abs() < 0.15,
            "kind {kind}: {} per tick",
            rate(kind)
        );
    }
    let s = a.stats().route;
    assert!(
        s.stored + b.stats().route.stored > 20,
        "the busy phase was not busy: {s:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

fn ended(e: &Event) -> Option<String> {
    match e {
        Event::Ended(r) => Some(format!("{r:?}")),
        _ => None,
    }
}

async fn stats_until(
    r: &RelayHandle,
    what: &str,
    ok: impl Fn(&hum_relay::RouteSnapshot) -> bool,
) -> Res {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ok(&r.stats().route) {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{what}: {:?}", r.stats().route).into());
        }
        tokio::time::sleep(TICK).await;
    }
    Ok(())
}

/// Checks that a client keeps its beat: one cell per tick over `ticks` ticks.
async fn keeps_beat(c: &TestClient, r: &RelayHandle, ticks: u32) -> Res {
    let (i0, o0) = c.cells();
    let t0 = r.tick();
    tokio::time::sleep(TICK * ticks).await;
    let n = r.tick() - t0;
    // The client's own task may be behind on a loaded machine: give it time to read
    // and answer what the relay sent over those ticks, then count.
    let deadline = tokio::time::Instant::now() + WAIT;
    while c.cells().0 - i0 + 2 < n && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(TICK).await;
    }
    let (i1, o1) = c.cells();
    // At least one cell per tick of the window; at most one per tick gone by since.
    let (got, since) = (i1 - i0, r.tick() - t0);
    if got + 2 < n || got > since + 2 || (o1 - o0).abs_diff(got) > 1 || c.is_finished() {
        return Err(format!(
            "beat slipped: {} in, {} out over {n} ticks",
            i1 - i0,
            o1 - o0
        )
        .into());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_relay_refuses_a_full_home_itself_as_home_and_an_unknown_home() -> Res {
    let (mesh, a, b) = two_relays("refuse", &config(TICK), 2).await?;
    let (at_a, at_b) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let pins = [at_a.clone(), at_b.clone()];
    let mut ok = Vec::new();
    for _ in 0..2 {
        let mut c = TestClient::connect(&at_a, &Card::new(at_b.clone()), &pins).await?;
        ready(&mut c).await?;
        ok.push(c);
    }
    let mut third = TestClient::connect(&at_a, &Card::new(at_b.clone()), &pins).await?;
    let why = third.until(WAIT, ended).await?;
    assert!(why.contains("HomeFull"), "{why}");
    let mut own = TestClient::connect(&at_a, &Card::new(at_a.clone()), &pins).await?;
    let why = own.until(WAIT, ended).await?;
    assert!(why.contains("HomeIsEntry"), "{why}");
    let stranger = RelayAddr {
        fingerprint: hum_shared::CertFingerprint([3; 32]),
        ..at_b.clone()
    };
    let mut lost = TestClient::connect(&at_a, &Card::new(stranger), &pins).await?;
    let why = lost.until(WAIT, ended).await?;
    assert!(
        why.contains("UnknownHome") || why.contains("NoHome"),
        "{why}"
    );
    let s = a.stats().route;
    assert_eq!(
        (s.refused_home_full, s.refused_home_is_entry),
        (1, 1),
        "{s:?}"
    );
    for c in &ok {
        keeps_beat(c, &a, 10).await?;
    }
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_client_closes_only_that_client() -> Res {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let relay = single(config(TICK)).await?;
    let addr = relay.address().clone();
    let mut good = TestClient::connect(&addr, &Card::new(addr.clone()), &[]).await?;
    ready(&mut good).await?;
    let (mut raw, _) = hum_relay::test_client::connect_raw(&addr).await?;
    let mut cell = vec![0u8; hum_shared::route::CELL_LEN];
    raw.read_exact(&mut cell).await?;
    raw.write_all(&vec![0xff; cell.len()]).await?;
    raw.flush().await?;
    let mut sink = vec![0u8; 1 << 16];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match raw.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the relay kept a garbage client");
    assert_eq!(relay.stats().dropped_garbage, 1);
    keeps_beat(&good, &relay, 15).await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_silence_or_a_wrong_size_from_a_peer_closes_only_that_link() -> Res {
    use hum_shared::route::{LinkHello, LinkRole, RelayId};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = config(TICK);
    let mut mesh = Mesh::new("badpeer", 3).await?;
    // A links to B (real) and to C, played by the test.
    let a = mesh
        .start(
            0,
            Role::Both,
            &[(1, Role::Both, 4), (2, Role::Mailbox, 4)],
            &base,
        )
        .await?;
    let b = mesh
        .start(1, Role::Both, &[(0, Role::Both, 4)], &base)
        .await?;
    let (at_a, at_b) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let pins = [at_a.clone(), at_b.clone()];
    let card = Card::new(at_b.clone());
    let mut client = TestClient::connect(&at_a, &card, &pins).await?;
    ready(&mut client).await?;
    let c_id = RelayId::of_fingerprint(&mesh.addrs[2].fingerprint);
    let hello = LinkHello {
        relay: c_id,
        role: LinkRole::Mailbox,
        tick_micros: 20_000,
        tick: a.tick(),
        capacity: 4,
        buckets: 8,
        epoch_ticks: base.epoch_ticks,
        flag_bits: 8,
    };
    let open = |dir: PathBuf, to: RelayAddr| async move {
        let mut l = hum_relay::test_client::link_as(&dir, &to).await?;
        l.write_all(&hello.encode()).await?;
        l.flush().await?;
        let mut theirs = [0u8; hum_shared::route::LINK_HELLO_LEN];
        l.read_exact(&mut theirs).await?;
        Res::Ok(l)
    };
    // Garbage: a frame kind that does not exist.
    let mut l = open(mesh.dirs[2].clone(), at_a.clone()).await?;
    stats_until(&a, "second link up", |s| s.links_up == 2).await?;
    l.write_all(&[77, 0, 0, 0, 8]).await?;
    l.flush().await?;
    stats_until(&a, "garbage closes the link", |s| s.link_garbage == 1).await?;
    // A wrong size: a stream batch of one bucket too many.
    let mut l = open(mesh.dirs[2].clone(), at_a.clone()).await?;
    let len = (8 + 4 + 9 * hum_shared::route::ITEM_LEN) as u32;
    let mut header = vec![3u8];
    header.extend_from_slice(&len.to_be_bytes());
    l.write_all(&header).await?;
    l.flush().await?;
    stats_until(&a, "a wrong size closes the link", |s| {
        s.link_wrong_size == 1
    })
    .await?;
    // Silence: says hello, then nothing.
    let _quiet = open(mesh.dirs[2].clone(), at_a.clone()).await?;
    stats_until(&a, "silence closes the link", |s| s.link_silent == 1).await?;
    drop(l);
    // All along the real link stayed up and the client kept its beat and its mail.
    keeps_beat(&client, &a, 10).await?;
    assert!(a.links().iter().any(|s| s.up && s.peer == b.id()));
    let key = TagKey::generate();
    let other = Card::new(at_b.clone());
    let mut receiver = TestClient::connect(&at_a, &other, &pins).await?;
    ready(&mut receiver).await?;
    receiver.expect_from(&key);
    let id = client.send(&other, &key, b"still here");
    client.until(WAIT, stored(id)).await?;
    assert_eq!(receiver.until(WAIT, received).await?.1, b"still here");
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_bucket_pushes_back_and_the_sender_keeps_the_message() -> Res {
    let clock = hum_relay::Clock::system();
    let mut c = config(TICK);
    c.bucket_quota = 2;
    c.ttl = Duration::from_secs(60);
    c.clock = clock.clone();
    let relay = single(c).await?;
    let addr = relay.address().clone();
    let (alice, bob) = (Card::new(addr.clone()), Card::new(addr.clone()));
    let mut ca = TestClient::connect(&addr, &alice, &[]).await?;
    ready(&mut ca).await?;
    let key = TagKey::generate();
    let ids: Vec<u64> = (0..3).map(|i| ca.send(&bob, &key, &[i])).collect();
    // Two fit the bucket; the third is pushed back (whichever comes last: an answer
    // lost to a late cell re-queues its message behind the others).
    let mut stored_ids = Vec::new();
    let full = ca
        .until(WAIT, |e| match e {
            Event::Full { id } if stored_ids.len() == 2 => Some(*id),
            Event::Stored { id } => {
                stored_ids.push(*id);
                None
            }
            _ => None,
        })
        .await?;
    stored_ids.push(full);
    stored_ids.sort_unstable();
    assert_eq!(stored_ids, ids);
    assert!(ca.status().outbox >= 1, "the sender dropped the message");
    assert!(relay.stats().route.full >= 1);
    // Once the bucket frees (the TTL passes), the kept message is stored.
    clock.advance(Duration::from_secs(61));
    ca.until(Duration::from_secs(4), stored(full)).await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_for_the_wrong_epoch_is_answered_retry_and_the_next_attempt_lands() -> Res {
    let relay = single(config(TICK)).await?;
    let addr = relay.address().clone();
    let (alice, bob) = (Card::new(addr.clone()), Card::new(addr.clone()));
    let mut ca = TestClient::connect(&addr, &alice, &[]).await?;
    let mut cb = TestClient::connect(&addr, &bob, &[]).await?;
    ready(&mut ca).await?;
    ready(&mut cb).await?;
    let key = TagKey::generate();
    cb.expect_from(&key);
    let now = ca.status().epoch;
    let id = ca.send_for_epoch(&bob, &key, b"late", now.saturating_sub(3));
    let told = ca
        .until(WAIT, |e| match e {
            Event::Retry { id: i, epoch } if *i == id => Some(*epoch),
            _ => None,
        })
        .await?;
    assert_eq!(told, now);
    ca.until(WAIT, stored(id)).await?;
    assert_eq!(cb.until(WAIT, received).await?.1, b"late");
    assert_eq!(relay.stats().route.retry, 1);
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_returns_what_a_client_missed_while_away() -> Res {
    let relay = single(config(TICK)).await?;
    let addr = relay.address().clone();
    let (alice, bob, carol) = (
        Card::new(addr.clone()),
        Card::new(addr.clone()),
        Card::new(addr.clone()),
    );
    let mut ca = TestClient::connect(&addr, &alice, &[]).await?;
    ready(&mut ca).await?;
    let (key, other) = (TagKey::generate(), TagKey::generate());
    for i in 0..3u8 {
        let id = ca.send(&bob, &key, &[b'm', i]);
        ca.until(WAIT, stored(id)).await?;
    }
    // Something for someone else, perhaps in bob's bucket: not his.
    let id = ca.send(&carol, &other, b"not for bob");
    ca.until(WAIT, stored(id)).await?;
    // Long past the live stream: bob was away.
    tokio::time::sleep(TICK * 20).await;
    let mut cb = TestClient::connect(&addr, &bob, &[]).await?;
    ready(&mut cb).await?;
    cb.expect_from(&key);
    let epoch = cb.status().epoch;
    cb.catch_up(epoch);
    let mut got = Vec::new();
    let done = cb
        .until(Duration::from_secs(8), |e| match e {
            Event::Received { body, via, .. } => {
                got.push((body.clone(), *via));
                None
            }
            Event::CaughtUp { epoch } => Some(*epoch),
            _ => None,
        })
        .await?;
    assert_eq!(done, epoch);
    got.sort();
    assert_eq!(
        got,
        vec![
            (b"m\x00".to_vec(), Via::CatchUp),
            (b"m\x01".to_vec(), Via::CatchUp),
            (b"m\x02".to_vec(), Via::CatchUp),
        ]
    );
    // Three matches: ranks 0 to 2 were answered by the time rank 2's answer said nothing
    // follows (rank 3, sealed before it came, may still be on its way).
    assert!(relay.stats().route.catch_ups >= 3);
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_epoch_changes_and_old_slot_keys_are_erased() -> Res {
    let mut base = config(TICK);
    base.epoch_ticks = 20;
    let (mesh, a, b) = two_relays("epochs", &base, 4).await?;
    let (at_a, at_b) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let pins = [at_a.clone(), at_b.clone()];
    let (alice, bob) = (Card::new(at_b.clone()), Card::new(at_a.clone()));
    let mut ca = TestClient::connect(&at_a, &alice, &pins).await?;
    let mut cb = TestClient::connect(&at_b, &bob, &pins).await?;
    ready(&mut ca).await?;
    ready(&mut cb).await?;
    let key = TagKey::generate();
    cb.expect_from(&key);
    let first = ca.status().epoch;
    let mut sent = 0u8;
    let mut got = Vec::new();
    // Keep sending until three epoch changes have gone by at Bob's home.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cb.status().epoch < first + 3 {
        if tokio::time::Instant::now() > deadline {
            return Err("the epochs did not move".into());
        }
        let id = ca.send(&bob, &key, &[sent]);
        ca.until(WAIT, stored(id)).await?;
        sent += 1;
        for e in cb.drain() {
            if let Some((_, body, _)) = received(&e) {
                got.push(body[0]);
            }
        }
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut distinct = got.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() >= usize::from(sent) || tokio::time::Instant::now() > deadline {
            break;
        }
        if let Some((_, body, _)) = cb.next(TICK * 5).await.as_ref().and_then(received) {
            got.push(body[0]);
        }
    }
    // A message whose answer was lost is sent again under a fresh tag: the chat
    // client drops the copy by its message id, here by its body.
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, (0..sent).collect::<Vec<_>>());
    // Each mailbox relay holds the keys of the previous, current and next epoch only.
    for r in [&a, &b] {
        let now = u32::try_from(r.tick() / 20)?;
        let held = r.held().slot_key_epochs;
        assert!(
            held.iter().all(|&e| e + 1 >= now && e <= now + 1),
            "{held:?} at {now}"
        );
        assert!(held.contains(&now) && held.contains(&(now + 1)));
    }
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

/// An entry relay (0) and a mailbox relay (1), each the other's peer, capacity 4.
async fn entry_and_mailbox(name: &str, base: &Config) -> Res<(Mesh, RelayHandle, RelayHandle)> {
    let mut mesh = Mesh::new(name, 2).await?;
    let e = mesh
        .start(0, Role::Entry, &[(1, Role::Mailbox, 4)], base)
        .await?;
    let m = mesh
        .start(1, Role::Mailbox, &[(0, Role::Entry, 4)], base)
        .await?;
    Ok((mesh, e, m))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_mailbox_relay_has_lost_what_it_held_and_senders_deposit_again() -> Res {
    let mut base = config(TICK);
    base.max_backoff = Duration::from_millis(300);
    let (mut mesh, e, m) = entry_and_mailbox("restart", &base).await?;
    let (at_e, at_m) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let pins = [at_m.clone()];
    let (alice, bob) = (Card::new(at_m.clone()), Card::new(at_m.clone()));
    let mut ca = TestClient::connect(&at_e, &alice, &pins).await?;
    ready(&mut ca).await?;
    let key = TagKey::generate();
    let lost = deliver(&mut ca, &bob, &key, b"before").await?;
    let held = u64::try_from(m.held().items)?;
    assert!((1..=1 + lost).contains(&held), "{held} items, {lost} lost");
    m.shutdown().await;
    // While it is down, a deposit gets no answer and stays in the outbox.
    let id = ca.send(&bob, &key, b"during");
    ca.until(WAIT, |e| {
        matches!(e, Event::Unknown { id: i } if *i == id).then_some(())
    })
    .await?;
    keeps_beat(&ca, &e, 5).await?;
    let m = mesh
        .start(1, Role::Mailbox, &[(0, Role::Entry, 4)], &base)
        .await?;
    // Back, empty; the kept deposit lands on its own, and the sender re-deposits the one
    // the restart lost.
    let mut lost = 0;
    ca.until(Duration::from_secs(8), |e| match e {
        Event::Stored { id: i } if *i == id => Some(()),
        Event::Unknown { id: i } if *i == id => {
            lost += 1;
            None
        }
        _ => None,
    })
    .await?;
    lost += deliver(&mut ca, &bob, &key, b"before").await?;
    let held = u64::try_from(m.held().items)?;
    assert!((2..=2 + lost).contains(&held), "{held} items, {lost} lost");
    let mut cb = TestClient::connect(&at_e, &bob, &pins).await?;
    ready(&mut cb).await?;
    cb.expect_from(&key);
    cb.catch_up(cb.status().epoch);
    let mut got = Vec::new();
    cb.until(Duration::from_secs(8), |ev| match ev {
        Event::Received { body, .. } => {
            got.push(body.clone());
            None
        }
        Event::CaughtUp { .. } => Some(()),
        _ => None,
    })
    .await?;
    // A deposit whose answer was lost is there twice, under two tags: the chat client
    // drops the copy by its message id, here by its body.
    got.sort();
    got.dedup();
    assert_eq!(got, vec![b"before".to_vec(), b"during".to_vec()]);
    e.shutdown().await;
    m.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seized_entry_relay_yields_addresses_and_buckets_a_mailbox_relay_sealed_items_only() -> Res
{
    let base = config(TICK);
    let (mesh, e, m) = entry_and_mailbox("seize", &base).await?;
    let (at_e, at_m) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let pins = [at_m.clone()];
    let (alice, bob) = (Card::new(at_m.clone()), Card::new(at_m.clone()));
    let (ip_a, ip_b) = (
        IpAddr::V4(Ipv4Addr::new(127, 0, 7, 1)),
        IpAddr::V4(Ipv4Addr::new(127, 0, 7, 2)),
    );
    let mut ca = TestClient::connect_from(ip_a, &at_e, &alice, &pins).await?;
    let mut cb = TestClient::connect_from(ip_b, &at_e, &bob, &pins).await?;
    ready(&mut ca).await?;
    ready(&mut cb).await?;
    let key = TagKey::generate();
    cb.expect_from(&key);
    let mut lost = 0;
    for i in 0..3u8 {
        lost += deliver(&mut ca, &bob, &key, &[i]).await?;
    }
    cb.until(WAIT, received).await?;
    // The entry relay: the clients' addresses, arrival, home and bucket; no items.
    let held = e.held();
    let mut ips: Vec<IpAddr> = held.clients.iter().map(|c| c.peer.ip()).collect();
    ips.sort();
    assert_eq!(ips, vec![ip_a, ip_b]);
    let bucket = cb.status().bucket;
    assert!(
        held.clients
            .iter()
            .all(|c| c.home.is_some_and(|h| h.0 == m.id()))
    );
    assert!(
        held.clients
            .iter()
            .any(|c| c.home.is_some_and(|h| h.2 == bucket))
    );
    assert_eq!((held.items, held.slot_key_epochs.len()), (0, 0));
    // The mailbox relay: sealed items and its keys; no client at all. (Bob deletes what
    // he received, after a delay.)
    let held = m.held();
    assert!(held.clients.is_empty());
    let deleted = m.stats().route.deleted;
    assert!(
        (3..=3 + lost).contains(&(u64::try_from(held.items)? + deleted)),
        "{} items and {deleted} deleted for 3 messages, {lost} answers lost",
        held.items
    );
    assert_eq!(m.stats().route.clients, 0);
    // On disk, for both: the TLS key and certificate, nothing else.
    for dir in &mesh.dirs {
        let mut names: Vec<String> = std::fs::read_dir(dir)?
            .map(|f| f.map(|f| f.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        assert_eq!(names, ["relay-cert.der", "relay-key.der"]);
    }
    e.shutdown().await;
    m.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_up_cell_read_after_the_next_down_cell_is_taken_for_the_tick_it_answers() -> Res {
    use hum_shared::route::{CELL_LEN, Request, SlotDeposit, UpCell, seal_slot};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = config(TICK);
    let (mesh, e, m) = entry_and_mailbox("late", &base).await?;
    let (at_e, at_m) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut raw, hello) = loop {
        let (raw, hello) = hum_relay::test_client::connect_raw(&at_e).await?;
        if hello
            .directory
            .entry(&m.id())
            .is_some_and(|r| !r.slot_keys.is_empty())
        {
            break (raw, hello);
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the entry relay never listed the mailbox relay".into());
        }
        drop(raw);
        tokio::time::sleep(TICK).await;
    };
    let home = hello
        .directory
        .entry(&m.id())
        .ok_or("no directory entry")?
        .clone();
    // A good dummy slot, sealed for the down cell of tick `t`.
    let up = |t: u64| -> Res<Box<[u8; CELL_LEN]>> {
        let (epoch, _) = home.clock_after(t - hello.directory.tick);
        let key = home.verified_slot_key(epoch, &at_m.fingerprint)?;
        let (slot, _) = seal_slot(&key, hello.relay, t, SlotDeposit::Dummy, &Request::None)?;
        Ok(UpCell {
            home: m.id(),
            epoch,
            bucket: 0,
            slot,
        }
        .encode())
    };
    // A client one cell behind, as a loaded machine makes it: it answers each down cell
    // only once the next one is in, so the entry relay reads every up cell after it sent
    // the following down cell. Each still answers its own tick: too late for that tick's
    // batch, it is never put in the next one, where it would not open.
    // Before it had the key, the entry relay padded with random bytes (bad slots).
    stats_until(&m, "batches padded with sealed dummies", |s| {
        s.slots_dummy >= 3 * 4
    })
    .await?;
    let before = m.stats().route;
    let mut cell = vec![0u8; CELL_LEN];
    raw.read_exact(&mut cell).await?;
    for owed in hello.tick + 1..=hello.tick + 30 {
        raw.read_exact(&mut cell).await?;
        raw.write_all(&up(owed)?[..]).await?;
        raw.flush().await?;
    }
    stats_until(&m, "the batches of those ticks opened", |s| {
        s.slots_opened >= before.slots_opened + 4 * 30
    })
    .await?;
    let s = m.stats().route;
    assert_eq!(
        s.slots_bad, before.slots_bad,
        "late up cells opened for the wrong tick: {s:?}"
    );
    assert_eq!(e.stats().route.clients, 1, "the late client was dropped");
    e.shutdown().await;
    m.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curious_build_logs_what_each_role_sees() -> Res {
    let dir = state_dir("curious");
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("curious.jsonl");
    let mut c = config(TICK);
    c.curious_log = Some(log.clone());
    let relay = single(c).await?;
    let addr = relay.address().clone();
    let (alice, bob) = (Card::new(addr.clone()), Card::new(addr.clone()));
    let mut ca = TestClient::connect(&addr, &alice, &[]).await?;
    ready(&mut ca).await?;
    let key = TagKey::generate();
    let id = ca.send(&bob, &key, b"seen");
    ca.until(WAIT, stored(id)).await?;
    tokio::time::sleep(TICK * 15).await;
    relay.shutdown().await;
    let text = std::fs::read_to_string(&log)?;
    let lines: Vec<&str> = text.lines().collect();
    let has = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert!(
        has(r#""role":"entry","ev":"slot""#) > 5,
        "{}",
        lines.iter().take(5).copied().collect::<Vec<_>>().join("\n")
    );
    // The entry role: the connection and its address, every up and down cell, batches.
    assert_eq!(has(r#""ev":"connect""#), 1, "{text}");
    assert_eq!(has(&format!(r#""peer":"{}""#, ca.local_addr())), 1);
    assert!(has(r#""ev":"item""#) > 5 && has(r#""ev":"batch""#) > 5);
    // The mailbox role: a single relay knows the connection of each slot.
    assert_eq!(has(r#""kind":"local""#), 1, "{text}");
    assert!(has(r#""kind":"dummy""#) > 5 && has(r#""request":"none","conn":1"#) > 5);
    let deposit: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains(r#""ev":"deposit""#))
        .collect();
    assert_eq!(deposit.len(), 1, "{text}");
    assert!(deposit[0].contains(r#""via":"local""#) && deposit[0].contains(r#""answer":"stored""#));
    // Its copy is streamed once, under the tag the deposit record names.
    let tag = deposit[0]
        .split(r#""tag":""#)
        .nth(1)
        .and_then(|t| t.get(..16))
        .ok_or("no copy tag")?;
    assert_eq!(has(&format!(r#""tag":"{tag}""#)), 2, "{text}");
    assert!(has(r#""ev":"stream""#) > 10 && has(r#""tag":null"#) > 10);
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('{') && l.ends_with('}') && l.contains(r#""ms":"#))
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Connects raw to `entry` until a hello's directory counts `clients` (a raw connection
/// open when the directory is made counts too, so a few tries may be needed); returns
/// that directory.
async fn directory_counting(entry: &RelayAddr, clients: u32) -> Res<hum_shared::route::Directory> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (stream, hello) = hum_relay::test_client::connect_raw(entry).await?;
        drop(stream);
        if hello.directory.clients == clients {
            return Ok(hello.directory);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "the directory counts {} clients, not {clients}",
                hello.directory.clients
            )
            .into());
        }
        tokio::time::sleep(TICK * 3).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_counts_the_entry_relays_clients_and_buckets_follow_the_capacity() -> Res {
    let mut base = config(TICK);
    base.buckets = hum_relay::BucketCount::Auto;
    let mut mesh = Mesh::new("count", 2).await?;
    let e = mesh
        .start(0, Role::Entry, &[(1, Role::Mailbox, 100)], &base)
        .await?;
    let m = mesh
        .start(1, Role::Mailbox, &[(0, Role::Entry, 100)], &base)
        .await?;
    let (at_e, at_m) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let pins = [at_m.clone()];
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = TestClient::connect(&at_e, &Card::new(at_m.clone()), &pins).await?;
        ready(&mut c).await?;
        clients.push(c);
    }
    let dir = directory_counting(&at_e, 3).await?;
    // 100 users a tick may be homed at the mailbox relay: 4 buckets of 32 at most.
    assert_eq!(
        dir.relays.iter().map(|r| r.buckets).collect::<Vec<_>>(),
        [4]
    );
    for c in clients.drain(..2) {
        c.close().await?;
    }
    directory_counting(&at_e, 1).await?;
    e.shutdown().await;
    m.shutdown().await;
    Ok(())
}
