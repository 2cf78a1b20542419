//! The relay against real TLS clients on 127.0.0.1:0, with short ticks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hum_relay::{Clock, Config, Relay, RelayHandle, StatsSnapshot, TlsStream};
use hum_shared::{
    Capability, CellWriter, Down, ENVELOPE_LEN, HelloV1, MailboxId, Up, decode_cell, read_cell,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const TICK: Duration = Duration::from_millis(20);

async fn start(config: Config) -> Res<RelayHandle> {
    Ok(Relay::bind(config).await?.spawn())
}

/// A well-behaved test client: a task answers every cell with one cell, sending what
/// was queued (as much as fits) and passing on what arrives.
struct Client {
    hello: HelloV1,
    ops: mpsc::UnboundedSender<Up>,
    downs: mpsc::UnboundedReceiver<Down>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    task: JoinHandle<Res>,
}

impl Client {
    async fn connect(relay: &RelayHandle) -> Res<Self> {
        let (mut tls, hello) = hum_relay::connect(relay.address()).await?;
        let (ops, mut ops_rx) = mpsc::unbounded_channel::<Up>();
        let (downs_tx, downs) = mpsc::unbounded_channel();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&arrivals);
        let size = hello.cell_size;
        let task = tokio::spawn(async move {
            let mut buf = vec![0; size];
            let mut pending: Option<Up> = None;
            loop {
                read_cell(&mut tls, &mut buf).await?;
                seen.lock().map_err(|_| "poisoned")?.push(Instant::now());
                for d in decode_cell::<Down>(&buf, size)? {
                    let _ = downs_tx.send(d);
                }
                let mut w = CellWriter::new(size)?;
                loop {
                    let Some(op) = pending.take().or_else(|| ops_rx.try_recv().ok()) else {
                        break;
                    };
                    if !w.fits(&op) {
                        pending = Some(op);
                        break;
                    }
                    w.push(&op)?;
                }
                tls.write_all(&w.finish()).await?;
                tls.flush().await?;
            }
        });
        Ok(Self {
            hello,
            ops,
            downs,
            arrivals,
            task,
        })
    }

    fn send(&self, op: Up) -> Res {
        self.ops.send(op).map_err(|_| "client task ended")?;
        Ok(())
    }

    /// Waits (up to 20 ticks) for something `want` accepts, skipping the rest.
    async fn until<T>(&mut self, mut want: impl FnMut(&Down) -> Option<T>) -> Res<T> {
        let deadline = tokio::time::Instant::now() + TICK * 20;
        loop {
            let d = tokio::time::timeout_at(deadline, self.downs.recv())
                .await
                .map_err(|_| "expected answer did not arrive")?
                .ok_or("client task ended")?;
            if let Some(t) = want(&d) {
                return Ok(t);
            }
        }
    }

    /// Everything that arrives in the next `ticks` ticks.
    async fn collect(&mut self, ticks: u32) -> Res<Vec<Down>> {
        tokio::time::sleep(TICK * ticks).await;
        let mut all = Vec::new();
        while let Ok(d) = self.downs.try_recv() {
            all.push(d);
        }
        Ok(all)
    }

    fn arrivals(&self) -> Res<Vec<Instant>> {
        Ok(self.arrivals.lock().map_err(|_| "poisoned")?.clone())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn deposit(tag: u32, mailbox: MailboxId, fanout: bool, fill: u8) -> Up {
    Up::Deposit {
        tag,
        mailbox,
        fanout,
        envelope: vec![fill; ENVELOPE_LEN],
    }
}

fn delivered(downs: &[Down]) -> Vec<(u64, u8)> {
    downs
        .iter()
        .filter_map(|d| match d {
            Down::Deliver { seq, envelope, .. } => Some((*seq, envelope[0])),
            _ => None,
        })
        .collect()
}

/// Waits (up to a second) until the relay's counters satisfy `ok`.
async fn stats_until(
    relay: &RelayHandle,
    ok: impl Fn(&StatsSnapshot) -> bool,
) -> Res<StatsSnapshot> {
    for _ in 0..100 {
        let s = relay.stats();
        if ok(&s) {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("relay counters never got there: {:?}", relay.stats()).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_gets_one_cell_per_tick_and_answers_one() -> Res {
    let relay = start(Config::ephemeral(TICK)).await?;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Client::connect(&relay).await?);
    }
    assert!(clients.iter().all(|c| c.hello.tick_micros == 20_000));
    tokio::time::sleep(TICK * 60).await;
    let before = relay.stats();
    let mut counts = Vec::new();
    for c in &clients {
        let a = c.arrivals()?;
        counts.push(a.len());
        // Over the last 50 cells the beat neither skips nor bursts.
        let tail = &a[a.len() - 50..];
        let span = tail[49] - tail[0];
        assert!(
            span >= TICK * 47 && span <= TICK * 52,
            "50 cells took {span:?}"
        );
        for w in tail.windows(2) {
            assert!(w[1] - w[0] < TICK * 4, "a gap of {:?}", w[1] - w[0]);
        }
    }
    // Every client got the same number of cells, give or take the one in flight, and
    // the relay received one answer per cell.
    let (lo, hi) = (counts.iter().min(), counts.iter().max());
    assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 2), "{counts:?}");
    drop(clients);
    let after = stats_until(&relay, |s| s.clients == 0).await?;
    let total: usize = counts.iter().sum();
    assert!(
        after.cells_in.abs_diff(total as u64) <= 4,
        "{after:?} vs {counts:?}"
    );
    assert!(before.cells_out.abs_diff(before.cells_in) <= 4);
    assert_eq!(
        after.dropped_flood + after.dropped_garbage + after.dropped_lagging,
        0
    );
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_mailbox_delivers_in_order_and_deletes_on_ack() -> Res {
    let relay = start(Config::ephemeral(TICK)).await?;
    let (mut alice, mut bob) = (
        Client::connect(&relay).await?,
        Client::connect(&relay).await?,
    );
    let cap = Capability::from_bytes([7; 32]);
    let id = cap.mailbox_id();
    alice.send(Up::Subscribe {
        capability: cap.clone(),
        after: 0,
    })?;
    alice
        .until(|d| matches!(d, Down::Subscribed { mailbox } if *mailbox == id).then_some(()))
        .await?;
    bob.send(deposit(1, id, false, 0xa1))?;
    bob.send(deposit(2, id, false, 0xa2))?;
    bob.until(|d| matches!(d, Down::Stored { tag: 1 }).then_some(()))
        .await?;
    bob.until(|d| matches!(d, Down::Stored { tag: 2 }).then_some(()))
        .await?;
    let got = delivered(&alice.collect(4).await?);
    assert_eq!(
        got.iter().map(|g| g.1).collect::<Vec<_>>(),
        vec![0xa1, 0xa2]
    );
    assert!(got[0].0 < got[1].0);
    assert_eq!(relay.stats().envelopes, 2);
    // Bob, who has no capability, cannot delete.
    bob.send(Up::Ack {
        mailbox: id,
        seq: got[0].0,
    })?;
    bob.collect(3).await?;
    assert_eq!(relay.stats().envelopes, 2);
    for g in &got {
        alice.send(Up::Ack {
            mailbox: id,
            seq: g.0,
        })?;
    }
    stats_until(&relay, |s| s.envelopes == 0 && s.bytes == 0).await?;
    // A new subscription from the start finds nothing left.
    let mut carol = Client::connect(&relay).await?;
    carol.send(Up::Subscribe {
        capability: cap,
        after: 0,
    })?;
    assert!(delivered(&carol.collect(5).await?).is_empty());
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_after_skips_what_was_seen_and_new_envelopes_follow() -> Res {
    let relay = start(Config::ephemeral(TICK)).await?;
    let (mut alice, mut bob) = (
        Client::connect(&relay).await?,
        Client::connect(&relay).await?,
    );
    let cap = Capability::from_bytes([8; 32]);
    let id = cap.mailbox_id();
    bob.send(deposit(1, id, false, 1))?;
    bob.send(deposit(2, id, false, 2))?;
    bob.until(|d| matches!(d, Down::Stored { tag: 2 }).then_some(()))
        .await?;
    alice.send(Up::Subscribe {
        capability: cap.clone(),
        after: 0,
    })?;
    let first = delivered(&alice.collect(5).await?);
    assert_eq!(first.len(), 2);
    // Re-subscribing after the first skips it; a new deposit then arrives live.
    alice.send(Up::Subscribe {
        capability: cap,
        after: first[0].0,
    })?;
    alice
        .until(|d| matches!(d, Down::Subscribed { .. }).then_some(()))
        .await?;
    bob.send(deposit(3, id, false, 3))?;
    let seen = delivered(&alice.collect(6).await?);
    assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), vec![2, 3]);
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_capability_sees_nothing() -> Res {
    let relay = start(Config::ephemeral(TICK)).await?;
    let (mut alice, mut mallory) = (
        Client::connect(&relay).await?,
        Client::connect(&relay).await?,
    );
    let id = Capability::from_bytes([1; 32]).mailbox_id();
    alice.send(deposit(1, id, false, 9))?;
    alice
        .until(|d| matches!(d, Down::Stored { tag: 1 }).then_some(()))
        .await?;
    // Knowing the id is not enough: the relay hashes what is presented.
    mallory.send(Up::Subscribe {
        capability: Capability::from_bytes(*id.as_bytes()),
        after: 0,
    })?;
    mallory.send(Up::Ack {
        mailbox: id,
        seq: 0,
    })?;
    let got = mallory.collect(6).await?;
    assert!(delivered(&got).is_empty());
    assert!(!got.is_empty());
    assert!(
        got.iter()
            .all(|d| matches!(d, Down::Subscribed { mailbox } if *mailbox != id))
    );
    assert_eq!(relay.stats().envelopes, 1);
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_mailbox_fans_out_keeps_after_ack_and_expires_at_ttl() -> Res {
    let clock = Clock::system();
    let mut config = Config::ephemeral(TICK);
    config.ttl = Duration::from_secs(3600);
    config.clock = clock.clone();
    let relay = start(config).await?;
    let mut members = Vec::new();
    let cap = Capability::from_bytes([3; 32]);
    let id = cap.mailbox_id();
    for _ in 0..3 {
        let mut c = Client::connect(&relay).await?;
        c.send(Up::Subscribe {
            capability: cap.clone(),
            after: 0,
        })?;
        c.until(|d| matches!(d, Down::Subscribed { .. }).then_some(()))
            .await?;
        members.push(c);
    }
    members[0].send(deposit(1, id, true, 0x77))?;
    members[0]
        .until(|d| matches!(d, Down::Stored { tag: 1 }).then_some(()))
        .await?;
    for m in &mut members {
        let seq = m
            .until(|d| match d {
                Down::Deliver { seq, envelope, .. } if envelope[0] == 0x77 => Some(*seq),
                _ => None,
            })
            .await?;
        m.send(Up::Ack { mailbox: id, seq })?;
    }
    members[0].collect(3).await?;
    // Acknowledged by all, still kept: a group envelope lives until its TTL.
    assert_eq!(relay.stats().envelopes, 1);
    // A queue envelope that nobody fetches expires too.
    members[1].send(deposit(
        2,
        Capability::from_bytes([4; 32]).mailbox_id(),
        false,
        1,
    ))?;
    members[1]
        .until(|d| matches!(d, Down::Stored { tag: 2 }).then_some(()))
        .await?;
    assert_eq!(relay.stats().envelopes, 2);
    clock.advance(Duration::from_secs(3601));
    // A late subscriber already sees nothing, before the sweep runs.
    let mut late = Client::connect(&relay).await?;
    late.send(Up::Subscribe {
        capability: cap,
        after: 0,
    })?;
    assert!(delivered(&late.collect(4).await?).is_empty());
    // The sweep (about once a second) deletes both.
    let s = stats_until(&relay, |s| s.expired == 2).await?;
    assert_eq!((s.envelopes, s.bytes), (0, 0));
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_answer_full_and_the_retry_succeeds() -> Res {
    let mut config = Config::ephemeral(TICK);
    config.mailbox_quota = 2;
    config.global_quota = 3 * ENVELOPE_LEN;
    let relay = start(config).await?;
    let mut c = Client::connect(&relay).await?;
    let cap = Capability::from_bytes([5; 32]);
    let id = cap.mailbox_id();
    for tag in 1..=3 {
        c.send(deposit(tag, id, false, 1))?;
    }
    c.until(|d| matches!(d, Down::Full { tag: 3 }).then_some(()))
        .await?;
    // The global quota binds across mailboxes.
    let other = Capability::from_bytes([6; 32]).mailbox_id();
    c.send(deposit(4, other, false, 4))?;
    c.send(deposit(5, other, false, 5))?;
    c.until(|d| matches!(d, Down::Full { tag: 5 }).then_some(()))
        .await?;
    assert_eq!(relay.stats().refused, 2);
    // Fetch and ack one: the retry of the refused deposit is stored.
    c.send(Up::Subscribe {
        capability: cap,
        after: 0,
    })?;
    let seq = c
        .until(|d| match d {
            Down::Deliver { seq, .. } => Some(*seq),
            _ => None,
        })
        .await?;
    c.send(Up::Ack { mailbox: id, seq })?;
    c.send(deposit(3, id, false, 3))?;
    c.until(|d| matches!(d, Down::Stored { tag: 3 }).then_some(()))
        .await?;
    relay.shutdown().await;
    Ok(())
}

/// A raw connection for misbehaving on purpose.
async fn raw(relay: &RelayHandle) -> Res<(TlsStream, Vec<u8>)> {
    let (tls, hello) = hum_relay::connect(relay.address()).await?;
    Ok((tls, vec![0; hello.cell_size]))
}

/// Reads until the relay closes the connection; errors if it keeps it open.
async fn closed_by_relay(tls: &mut TlsStream) -> Res {
    let mut sink = vec![0; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(3), tls.read(&mut sink)).await? {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
    Err("the relay kept the connection open".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_clients_are_dropped_and_the_others_keep_their_beat() -> Res {
    let mut config = Config::ephemeral(TICK);
    config.max_lag = 5;
    let relay = start(config).await?;
    let good = Client::connect(&relay).await?;
    let size = good.hello.cell_size;
    let cover = hum_shared::cover_cell(size)?;

    // Garbage: a cell whose version byte is wrong.
    let (mut garbage, mut buf) = raw(&relay).await?;
    read_cell(&mut garbage, &mut buf).await?;
    garbage.write_all(&vec![0xff; size]).await?;
    garbage.flush().await?;
    closed_by_relay(&mut garbage).await?;
    stats_until(&relay, |s| s.dropped_garbage == 1).await?;

    // Oversize: one and a half cells for one; the next cell is misaligned garbage.
    let (mut oversize, mut buf) = raw(&relay).await?;
    read_cell(&mut oversize, &mut buf).await?;
    oversize
        .write_all(&[&cover[..], &vec![0x42; size / 2]].concat())
        .await?;
    read_cell(&mut oversize, &mut buf).await?;
    oversize.write_all(&cover).await?;
    oversize.flush().await?;
    closed_by_relay(&mut oversize).await?;
    stats_until(&relay, |s| s.dropped_garbage == 2).await?;

    // Flooding: three well-formed cells for one received.
    let (mut flood, mut buf) = raw(&relay).await?;
    read_cell(&mut flood, &mut buf).await?;
    flood
        .write_all(&[&cover[..], &cover, &cover].concat())
        .await?;
    flood.flush().await?;
    closed_by_relay(&mut flood).await?;
    stats_until(&relay, |s| s.dropped_flood == 1).await?;

    // Silent: connects, never answers: dropped after max_lag ticks.
    let silent = raw(&relay).await?;
    let t0 = Instant::now();
    stats_until(&relay, |s| s.dropped_lagging == 1).await?;
    assert!(t0.elapsed() < TICK * 30, "dropped after {:?}", t0.elapsed());
    drop(silent);

    // All along, the good client kept its beat.
    tokio::time::sleep(TICK * 10).await;
    let arrivals = good.arrivals()?;
    assert!(arrivals.len() > 10);
    for w in arrivals.windows(2) {
        assert!(
            w[1] - w[0] < TICK * 4,
            "the good client's beat slipped: {:?}",
            w[1] - w[0]
        );
    }
    assert!(!good.task.is_finished());
    let s = relay.stats();
    assert_eq!(
        (s.dropped_garbage, s.dropped_flood, s.dropped_lagging),
        (2, 1, 1)
    );
    assert_eq!(s.clients, 1);
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_fingerprint_is_refused_and_the_state_folder_keeps_the_identity() -> Res {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("hum-relay-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config::ephemeral(TICK);
    config.state_dir = Some(dir.clone());
    let first = Relay::bind(config.clone()).await?;
    let fp = first.fingerprint();
    drop(first);
    let relay = start(config).await?;
    assert_eq!(relay.address().fingerprint, fp);
    let mode = std::fs::metadata(dir.join("relay-key.der"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut wrong = relay.address().clone();
    wrong.fingerprint.0[0] ^= 1;
    let refused = hum_relay::connect(&wrong).await;
    assert!(
        matches!(refused, Err(hum_relay::ConnectError::WrongCertificate)),
        "{:?}",
        refused.err()
    );
    assert!(hum_relay::connect(relay.address()).await.is_ok());
    relay.shutdown().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
