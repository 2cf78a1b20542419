//! The hum/2 link against real relays in this process: a single relay, and a two-relay
//! mesh whose clients enter at one relay and are homed at the other.

use std::path::PathBuf;
use std::time::Duration;

use hum_relay::{Config, Peer, Relay, RelayHandle, Role};
use hum_shared::route::session::{Behaviour, Card, DepositId, Outgoing, SessionState, Unwrap};
use hum_shared::route::{Directory, TagKey};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const TICK: Duration = Duration::from_millis(20);
const WAIT: Duration = Duration::from_secs(30);

fn config() -> Config {
    let mut c = Config::ephemeral(TICK);
    c.max_lag = 600;
    c
}

/// A link of a fresh user, and the other end of its reports.
struct Client {
    card: Card,
    link: RouteLink,
    reports: mpsc::UnboundedReceiver<RouteReport>,
    /// Reports taken while waiting for others.
    seen: Vec<RouteReport>,
}

impl Client {
    fn start(relays: Relays) -> Res<Client> {
        Self::start_paced(relays, |_| Behaviour::immediate())
    }

    fn start_paced(relays: Relays, behaviour: fn(u32) -> Behaviour) -> Res<Client> {
        let card = Card::new(relays.home.clone());
        let (tx, reports) = mpsc::unbounded_channel();
        let link = RouteLink::spawn(
            RouteSetup {
                relays,
                me: card.clone(),
                behaviour,
                state: SessionState::new(),
            },
            tx,
        )?;
        Ok(Client {
            card,
            link,
            reports,
            seen: Vec::new(),
        })
    }

    async fn op(&self, op: RouteOp) -> Res {
        self.link
            .ops
            .send(op)
            .await
            .map_err(|_| "the link is gone")?;
        Ok(())
    }

    /// Waits for a report `f` picks, keeping the others.
    async fn until<T>(&mut self, mut f: impl FnMut(&RouteReport) -> Option<T>) -> Res<T> {
        if let Some(t) = self.seen.iter().find_map(&mut f) {
            return Ok(t);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = tokio::time::timeout_at(deadline, self.reports.recv())
                .await
                .map_err(|_| format!("timed out; saw {:?}", self.seen))?
                .ok_or("the link ended")?;
            let found = f(&r);
            self.seen.push(r);
            if let Some(t) = found {
                return Ok(t);
            }
        }
    }

    fn ups(&self) -> usize {
        self.seen
            .iter()
            .filter(|r| matches!(r, RouteReport::Up { .. }))
            .count()
    }
}

fn envelope(n: u8) -> Res<Envelope> {
    Ok(Envelope::from_bytes(
        &[n; hum_shared::crypto::ENVELOPE_LEN],
    )?)
}

/// Sends `n` envelopes from `a` to `b` under a fresh tag key, one after the other as
/// each is stored; returns the latency of each in entry ticks (deposit to receipt).
async fn exchange(a: &mut Client, b: &mut Client, n: u8, first_id: u64) -> Res<Vec<u64>> {
    let key = TagKey::generate();
    let who = Expected(first_id);
    b.op(RouteOp::Expect {
        who,
        key: key.clone(),
        unwrap: Unwrap::Mine,
    })
    .await?;
    let mut latencies = Vec::new();
    for i in 0..n {
        let id = DepositId(first_id + u64::from(i));
        let env = envelope(i)?;
        a.op(RouteOp::Queue(Outgoing {
            id,
            to: vec![b.card.clone()],
            key: key.clone(),
            group: None,
            envelope: env.clone(),
            shared: false,
        }))
        .await?;
        let sent = a
            .until(|r| match r {
                RouteReport::Deposited { id: d, tick } if *d == id => Some(*tick),
                _ => None,
            })
            .await?;
        let got = b
            .until(|r| match r {
                RouteReport::Received {
                    who: w,
                    envelope,
                    tick,
                } if *w == who && *envelope == env => Some(*tick),
                _ => None,
            })
            .await?;
        a.until(|r| matches!(r, RouteReport::Stored(d) if *d == id).then_some(()))
            .await?;
        latencies.push(got.saturating_sub(sent));
    }
    Ok(latencies)
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

fn print_latency(what: &str, mut ticks: Vec<u64>) {
    ticks.sort_unstable();
    eprintln!(
        "latency {what}: n {} p50 {} p99 {} max {} ticks",
        ticks.len(),
        quantile(&ticks, 0.5),
        quantile(&ticks, 0.99),
        ticks.last().copied().unwrap_or(0)
    );
}

#[test]
fn an_entry_relay_must_be_single_to_be_home_too() {
    let a: RelayAddr =
        "hum://127.0.0.1:1#0000000000000000000000000000000000000000000000000000000000000000"
            .parse()
            .expect("a fixed address parses");
    let b: RelayAddr =
        "hum://127.0.0.1:2#1111111111111111111111111111111111111111111111111111111111111111"
            .parse()
            .expect("a fixed address parses");
    let dir = |single| Directory {
        tick: 0,
        single,
        clients: 0,
        relays: Vec::new(),
    };
    let single = Relays::single(a.clone());
    let mesh = Relays { entry: a, home: b };
    assert!(check_roles(&single, &dir(true)).is_ok());
    assert!(check_roles(&mesh, &dir(false)).is_ok());
    let refused = check_roles(&single, &dir(false))
        .err()
        .and_then(|e| e.shown());
    assert!(refused.is_some_and(|s| s.contains("--home")));
    let refused = check_roles(&mesh, &dir(true)).err().and_then(|e| e.shown());
    assert!(refused.is_some_and(|s| s.contains("--relay")));
}

/// At the design's pace (loops, a catch-up some seconds after the start), a fresh
/// client's first deposits are stored and received at once, without waiting for its
/// catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_designs_pace_a_fresh_clients_deposits_leave_at_once() -> Res {
    let relay = Relay::bind(config()).await?.spawn();
    let relays = Relays::single(relay.address().clone());
    let mut a = Client::start_paced(relays.clone(), Behaviour::design)?;
    let mut b = Client::start_paced(relays, Behaviour::design)?;
    let latencies = exchange(&mut a, &mut b, 3, 1).await?;
    print_latency("at the design's pace", latencies.clone());
    assert!(latencies.iter().all(|&t| t <= 8), "{latencies:?}");
    relay.shutdown().await;
    Ok(())
}

/// On a single relay, two clients' links deliver both ways, each deposit stored, each
/// envelope received once under the sender the engine named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_relay_carries_deposits_both_ways() -> Res {
    let relay = Relay::bind(config()).await?.spawn();
    let relays = Relays::single(relay.address().clone());
    let mut a = Client::start(relays.clone())?;
    let mut b = Client::start(relays)?;
    for c in [&mut a, &mut b] {
        let single = c
            .until(|r| match r {
                RouteReport::Up { single, .. } => Some(*single),
                _ => None,
            })
            .await?;
        assert!(single, "a relay without peers says it is single");
    }
    let ab = exchange(&mut a, &mut b, 20, 100).await?;
    let ba = exchange(&mut b, &mut a, 5, 200).await?;
    // Nothing came twice.
    let received = |c: &Client| {
        c.seen
            .iter()
            .filter(|r| matches!(r, RouteReport::Received { .. }))
            .count()
    };
    assert_eq!((received(&a), received(&b)), (5, 20));
    assert_eq!((a.ups(), b.ups()), (1, 1));
    print_latency("single relay", [ab, ba].concat());
    a.link.stop();
    b.link.stop();
    relay.shutdown().await;
    Ok(())
}

/// Relays that know each other before they start.
struct Mesh {
    dirs: Vec<PathBuf>,
    addrs: Vec<RelayAddr>,
    listeners: Vec<Option<TcpListener>>,
}

impl Mesh {
    async fn new(name: &str, n: usize) -> Res<Mesh> {
        let mut m = Mesh {
            dirs: Vec::new(),
            addrs: Vec::new(),
            listeners: Vec::new(),
        };
        for i in 0..n {
            let dir = std::env::temp_dir()
                .join(format!("hum-route-link-{}-{name}-{i}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
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

    async fn start(&mut self, i: usize, peers: &[usize]) -> Res<RelayHandle> {
        let mut c = config();
        c.role = Role::Both;
        c.state_dir = Some(self.dirs[i].clone());
        c.peers = peers
            .iter()
            .map(|&j| Peer::new(self.addrs[j].clone(), Role::Both, 8))
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

/// Two relays, each the other's peer; a client enters at each and is homed at the other.
/// Both deliver both ways through their own entry relay only: each relay holds exactly
/// one client connection for the whole exchange, and neither link ever reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_homed_at_different_relays_talk_through_their_own_entry_relays() -> Res {
    let mut mesh = Mesh::new("two", 2).await?;
    let r0 = mesh.start(0, &[1]).await?;
    let r1 = mesh.start(1, &[0]).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while r0.stats().route.links_up < 1
        || r1.stats().route.links_up < 1
        || r0.stats().route.slots_dummy < 24
        || r1.stats().route.slots_dummy < 24
    {
        if tokio::time::Instant::now() > deadline {
            return Err("the mesh did not come up".into());
        }
        tokio::time::sleep(TICK).await;
    }
    let (a0, a1) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let mut a = Client::start(Relays {
        entry: a0.clone(),
        home: a1.clone(),
    })?;
    let mut b = Client::start(Relays {
        entry: a1,
        home: a0,
    })?;
    for c in [&mut a, &mut b] {
        let single = c
            .until(|r| match r {
                RouteReport::Up { single, .. } => Some(*single),
                _ => None,
            })
            .await?;
        assert!(!single, "a relay with peers is not single");
    }
    let one_each =
        |r0: &RelayHandle, r1: &RelayHandle| (r0.stats().route.clients, r1.stats().route.clients);
    // The relays count a client once its first up cell is in.
    let deadline = tokio::time::Instant::now() + WAIT;
    while one_each(&r0, &r1) != (1, 1) {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("clients at the relays: {:?}", one_each(&r0, &r1)).into());
        }
        tokio::time::sleep(TICK).await;
    }
    let ab = exchange(&mut a, &mut b, 10, 100).await?;
    assert_eq!(one_each(&r0, &r1), (1, 1));
    let ba = exchange(&mut b, &mut a, 10, 200).await?;
    assert_eq!(one_each(&r0, &r1), (1, 1));
    assert_eq!((a.ups(), b.ups()), (1, 1), "a link reconnected");
    assert!(r0.stats().route.forwarded > 0 && r1.stats().route.forwarded > 0);
    print_latency("two-relay mesh", [ab, ba].concat());
    a.link.stop();
    b.link.stop();
    r0.shutdown().await;
    r1.shutdown().await;
    Ok(())
}

/// A link pointed at a relay of the wrong role says why and does not deliver: an entry
/// relay named as home too must be a single relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_relay_as_entry_and_home_is_refused_with_a_reason() -> Res {
    let mut mesh = Mesh::new("role", 2).await?;
    let r0 = mesh.start(0, &[1]).await?;
    let mut a = Client::start(Relays::single(mesh.addrs[0].clone()))?;
    let cause = a
        .until(|r| match r {
            RouteReport::Down { cause, .. } => Some(cause.clone()),
            _ => None,
        })
        .await?;
    assert!(cause.is_some_and(|c| c.contains("mesh")));
    assert_eq!(a.ups(), 0);
    a.link.stop();
    r0.shutdown().await;
    Ok(())
}

/// Waits until `c` received the envelopes numbered `range`.
async fn received_all(c: &mut Client, range: std::ops::Range<u8>) -> Res {
    for i in range {
        let env = envelope(i)?;
        c.until(|r| {
            matches!(r, RouteReport::Received { envelope, .. } if *envelope == env).then_some(())
        })
        .await?;
    }
    Ok(())
}

/// The last state a client's link reported.
fn last_state(c: &Client) -> Option<SessionState> {
    c.seen.iter().rev().find_map(|r| match r {
        RouteReport::State(s) => Some(s.clone()),
        _ => None,
    })
}

/// A client that stops and starts again from the last state its link reported never
/// uses an attempt counter twice: everything it sends after the restart is recognised
/// by a receiver that saw everything before (a reused counter would make a tag it saw
/// already, and the item would be dropped as a duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_client_never_reuses_a_counter() -> Res {
    let relay = Relay::bind(config()).await?.spawn();
    let relays = Relays::single(relay.address().clone());
    let mut a = Client::start(relays.clone())?;
    let mut b = Client::start(relays.clone())?;
    let key = TagKey::generate();
    let who = Expected(1);
    b.op(RouteOp::Expect {
        who,
        key: key.clone(),
        unwrap: Unwrap::Mine,
    })
    .await?;
    let to = b.card.clone();
    let send = |c: &Client, i: u8| {
        let m = Outgoing {
            id: DepositId(u64::from(i)),
            to: vec![to.clone()],
            key: key.clone(),
            group: None,
            envelope: envelope(i)?,
            shared: false,
        };
        let ops = c.link.ops.clone();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(async move {
            ops.send(RouteOp::Queue(m))
                .await
                .map_err(|_| "the link is gone")
        })
    };
    for i in 0..20u8 {
        send(&a, i)?.await?;
    }
    received_all(&mut b, 0..20).await?;
    a.until(|r| matches!(r, RouteReport::Stored(DepositId(19))).then_some(()))
        .await?;
    // A stops; its last reported state is what a store would hold (or one older by a
    // few attempts, if it crashed before saving: the restore skips ahead for that).
    a.link.stop();
    let saved = last_state(&a).ok_or("no state was reported")?;
    let (tx, reports) = mpsc::unbounded_channel();
    let link = RouteLink::spawn(
        RouteSetup {
            relays,
            me: a.card.clone(),
            behaviour: |_| Behaviour::immediate(),
            state: saved,
        },
        tx,
    )?;
    let mut again = Client {
        card: a.card.clone(),
        link,
        reports,
        seen: Vec::new(),
    };
    for i in 20..30u8 {
        send(&again, i)?.await?;
    }
    received_all(&mut b, 20..30).await?;
    let received = b
        .seen
        .iter()
        .filter(|r| matches!(r, RouteReport::Received { .. }))
        .count();
    assert_eq!(received, 30);
    again.link.stop();
    b.link.stop();
    relay.shutdown().await;
    Ok(())
}

/// An entry relay that goes away and comes back loses nothing of the client's: the link
/// reconnects by itself, and what was queued while it was away is delivered then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_queued_while_the_relay_is_away_leave_when_it_is_back() -> Res {
    let mut mesh = Mesh::new("restart", 1).await?;
    let relay = mesh.start(0, &[]).await?;
    let relays = Relays::single(mesh.addrs[0].clone());
    let mut a = Client::start(relays.clone())?;
    let mut b = Client::start(relays)?;
    let ab = exchange(&mut a, &mut b, 1, 100).await?;
    assert_eq!(ab.len(), 1);
    relay.shutdown().await;
    for c in [&mut a, &mut b] {
        c.until(|r| matches!(r, RouteReport::Down { .. }).then_some(()))
            .await?;
    }
    // Queued while nothing listens.
    let key = TagKey::generate();
    b.op(RouteOp::Expect {
        who: Expected(2),
        key: key.clone(),
        unwrap: Unwrap::Mine,
    })
    .await?;
    let env = envelope(42)?;
    a.op(RouteOp::Queue(Outgoing {
        id: DepositId(500),
        to: vec![b.card.clone()],
        key,
        group: None,
        envelope: env.clone(),
        shared: false,
    }))
    .await?;
    let relay = mesh.start(0, &[]).await?;
    b.until(|r| {
        matches!(r, RouteReport::Received { who: Expected(2), envelope, .. } if *envelope == env)
            .then_some(())
    })
    .await?;
    a.until(|r| matches!(r, RouteReport::Stored(DepositId(500))).then_some(()))
        .await?;
    assert_eq!((a.ups(), b.ups()), (2, 2));
    a.link.stop();
    b.link.stop();
    relay.shutdown().await;
    Ok(())
}

/// A text deposited while its receiver was offline, in an epoch that ended before the
/// receiver came back, arrives by the catch-up the returning session owes (docs/
/// PROTOCOL.md §H11, "catch-ups owed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_deposited_while_the_receiver_was_away_across_an_epoch_change_arrives() -> Res {
    let mut c = config();
    c.epoch_ticks = 50;
    let relay = Relay::bind(c).await?.spawn();
    let relays = Relays::single(relay.address().clone());
    let mut a = Client::start(relays.clone())?;
    let mut b = Client::start(relays.clone())?;
    let key = TagKey::generate();
    let expect = RouteOp::Expect {
        who: Expected(7),
        key: key.clone(),
        unwrap: Unwrap::Mine,
    };
    b.op(expect).await?;
    let epoch_of = |c: &mut Client| {
        c.seen.iter().rev().find_map(|r| match r {
            RouteReport::Status { status, .. } => status.home_epoch,
            _ => None,
        })
    };
    b.until(|r| {
        matches!(r, RouteReport::Status { status, .. } if status.home_epoch.is_some()).then_some(())
    })
    .await?;
    // Bob goes away; Alice's text is stored in his bucket of the epoch now.
    b.link.stop();
    let saved = last_state(&b).ok_or("no state was reported")?;
    let env = envelope(9)?;
    a.op(RouteOp::Queue(Outgoing {
        id: DepositId(1),
        to: vec![b.card.clone()],
        key: key.clone(),
        group: None,
        envelope: env.clone(),
        shared: false,
    }))
    .await?;
    a.until(|r| matches!(r, RouteReport::Stored(DepositId(1))).then_some(()))
        .await?;
    let deposited = epoch_of(&mut a).ok_or("no epoch")?;
    // Two epoch changes later, that epoch is over: its items come only by catch-up.
    a.until(|r| {
        matches!(r, RouteReport::Status { status, .. } if status.home_epoch.is_some_and(|e| e >= deposited + 2))
            .then_some(())
    })
    .await?;
    let (tx, reports) = mpsc::unbounded_channel();
    let link = RouteLink::spawn(
        RouteSetup {
            relays,
            me: b.card.clone(),
            behaviour: |_| Behaviour::immediate(),
            state: saved,
        },
        tx,
    )?;
    let mut back = Client {
        card: b.card.clone(),
        link,
        reports,
        seen: Vec::new(),
    };
    back.op(RouteOp::Expect {
        who: Expected(7),
        key,
        unwrap: Unwrap::Mine,
    })
    .await?;
    back.until(|r| {
        matches!(r, RouteReport::Received { who: Expected(7), envelope, .. } if *envelope == env)
            .then_some(())
    })
    .await?;
    back.until(|r| matches!(r, RouteReport::CaughtUp(e) if *e == deposited).then_some(()))
        .await?;
    back.link.stop();
    a.link.stop();
    relay.shutdown().await;
    Ok(())
}
