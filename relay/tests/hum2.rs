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

fn config(tick: Duration) -> Config {
    let mut c = Config::ephemeral(tick);
    c.buckets = 8;
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
    // Both links up, and each entry role has the other's directory entry.
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.stats().route.links_up < 1
        || b.stats().route.links_up < 1
        || a.links()
            .iter()
            .any(|l| l.received.keys().all(|k| k.0 != 6))
        || b.links()
            .iter()
            .any(|l| l.received.keys().all(|k| k.0 != 6))
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
    let id = ca.send(&bob, &ab, b"to bob");
    ca.until(WAIT, stored(id)).await?;
    assert_eq!(cb.until(WAIT, received).await?.1, b"to bob");
    // Bob to Alice, the other way round.
    let id = cb.send(&alice, &ba, b"to alice");
    cb.until(WAIT, stored(id)).await?;
    assert_eq!(ca.until(WAIT, received).await?.1, b"to alice");
    // Alice to Carol: both homed at B, a local deposit there.
    let id = ca.send(&carol, &ac, b"to carol");
    ca.until(WAIT, stored(id)).await?;
    assert_eq!(cc.until(WAIT, received).await?.1, b"to carol");
    let (sa, sb) = (a.stats().route, b.stats().route);
    assert_eq!(sa.stored + sb.stored, 3, "{sa:?} {sb:?}");
    assert_eq!(sb.forwarded + sa.forwarded, 2);
    assert_eq!(
        sa.slots_bad + sb.slots_bad + sa.inner_bad + sb.inner_bad,
        0,
        "{sa:?} {sb:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}
