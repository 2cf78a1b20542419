//! The proof's load end to end, small and fast: 40 users over one entry relay and two
//! mailbox relays (in process, real TLS links on loopback, curious logs on), short ticks
//! and epochs, churn across the epoch changes. The ground truth must join the logs, and
//! latency and delivery must be what a user would accept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hum_relay::test_client::load::{AwaySpec, Progress, Shape, Spec, Topology, Truth, away, run};
use hum_relay::{Config, Peer, Relay, RelayHandle, Role};
use hum_shared::RelayAddr;
use hum_tests::load_logs::joins;
use tokio::net::TcpListener;

type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const TICK: Duration = Duration::from_millis(50);
const EPOCH_TICKS: u32 = 240;
const USERS: usize = 40;

struct Mesh {
    dir: PathBuf,
    handles: Vec<RelayHandle>,
    logs: Vec<PathBuf>,
    topology: Topology,
}

/// One entry relay (0) and two mailbox relays (1, 2), every pair linked, epochs of
/// `epoch_ticks`.
async fn mesh(dir: &Path, epoch_ticks: u32) -> Res<Mesh> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let roles = [Role::Entry, Role::Mailbox, Role::Mailbox];
    let mut addrs = Vec::new();
    let mut listeners = Vec::new();
    for i in 0..roles.len() {
        let fingerprint = hum_relay::init_identity(&dir.join(format!("relay-{i}")))?;
        let l = TcpListener::bind("127.0.0.1:0").await?;
        addrs.push(RelayAddr {
            host: "127.0.0.1".to_owned(),
            port: l.local_addr()?.port(),
            fingerprint,
        });
        listeners.push(l);
    }
    let mut handles = Vec::new();
    let mut logs = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let mut c = Config::ephemeral(TICK);
        c.role = roles[i];
        c.state_dir = Some(dir.join(format!("relay-{i}")));
        c.buckets = hum_relay::BucketCount::Fixed(8);
        c.epoch_ticks = epoch_ticks;
        c.max_lag = 100;
        c.peers = (0..roles.len())
            .filter(|&j| j != i)
            .map(|j| Peer::new(addrs[j].clone(), roles[j], 32))
            .collect();
        let log = dir.join(format!("relay-{i}.curious.jsonl"));
        c.curious_log = Some(log.clone());
        logs.push(log);
        handles.push(Relay::bind_on(c, l).await?.spawn());
    }
    Ok(Mesh {
        dir: dir.to_path_buf(),
        handles,
        logs,
        topology: Topology {
            lanes: vec![
                (addrs[0].clone(), addrs[1].clone()),
                (addrs[0].clone(), addrs[2].clone()),
            ],
        },
    })
}

fn spec() -> Spec {
    let s = |secs: f64| Duration::from_secs_f64(secs);
    Spec {
        shape: Shape {
            users: USERS,
            contacts: (2, 6),
            groups: 4,
            group_size: (3, 8),
        },
        seed: 7,
        tick: TICK,
        buckets: 8,
        epoch_ticks: EPOCH_TICKS,
        // Two epoch changes at least (12 s epochs).
        run: s(27.0),
        settle: s(20.0),
        session_mean: s(8.0),
        offline_mean: s(5.0),
        away_share: 0.1,
        conversation_every: s(15.0),
        burst: 2.0,
        gap: s(0.5),
        reply_chance: 0.5,
        think: s(1.0),
        group_share: 0.2,
        loop_every: s(10.0),
        receipt_delay: s(1.5),
        catch_up_delay: s(0.5),
        connect_gate: 8,
    }
}

/// The two runs here each keep relays and tens of clients on a short tick: run side by
/// side on two cores they starve each other's beats (slots miss their batch, answers come
/// back `unknown`), and what they measure is each other. One runs at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proofs_load_runs_end_to_end_and_its_ground_truth_joins_the_relays_logs() -> Res {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!("hum-load-test-{}", std::process::id()));
    let m = mesh(&dir, EPOCH_TICKS).await?;
    let truth_path = dir.join("truth.jsonl");
    let mut truth = Truth::new(std::io::BufWriter::new(std::fs::File::create(&truth_path)?));
    let progress = Progress::default();
    let report = run(&spec(), &m.topology, &mut truth, &progress).await?;
    truth.finish()?;
    for h in m.handles {
        h.shutdown().await;
    }
    // The logs' writers flush whenever they are idle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    eprintln!("{report}");

    // The run did what the proof asks, at this size.
    assert_eq!(report.users, USERS);
    assert!(report.epochs >= 2, "epoch changes seen: {}", report.epochs);
    let least = report.least_offline_at_change().ok_or("no epoch change")?;
    assert!(
        least >= 0.2,
        "offline at the epoch changes: {:?}",
        report.offline_at_change
    );
    assert!(
        report.sessions > USERS,
        "churn: {} sessions",
        report.sessions
    );
    assert!(
        report.deposits.iter().all(|&d| d > 20),
        "{:?}",
        report.deposits
    );
    assert_eq!((report.refused, report.lost), (0, 0));
    assert!(
        report
            .catch_up
            .iter()
            .any(|r| r.missed >= 1 && r.seconds.n > 0),
        "someone came back after an epoch change and caught up: {:?}",
        report.catch_up
    );

    // Latency is a figure, not a test: it is printed with the report above (and
    // measured at size by `just load`). Enough single-part texts were timed to give it,
    // and everything of the main phase arrives by the end.
    let lat = report.latency();
    assert!(lat.n >= 20, "{lat:?}");
    assert!(report.delivery() >= 0.97, "{:?}", report.delivered);

    // The ground truth joins the logs: every deposit attempt its client saw stored is
    // stored in a mailbox relay's log under its seed (the others were refused, or came
    // too late for their batch, or got no answer before their session closed), and
    // every session's address is in the entry relay's log.
    let tick_ms = TICK.as_secs_f64() * 1_000.0;
    let j = joins(
        &truth_path,
        &[&m.logs[0]],
        &[&m.logs[1], &m.logs[2]],
        tick_ms,
    )?;
    assert!(j.sends > 200 && j.stored * 10 >= j.sends * 9, "{j:?}");
    assert_eq!(j.stored_found, j.stored, "{j:?}");
    assert!(j.sends_found >= j.stored, "{j:?}");
    assert_eq!(j.unanswered_at_close, j.unanswered, "{j:?}");
    assert!(
        j.sessions >= report.sessions && j.sessions_found == j.sessions,
        "{j:?}"
    );
    if std::env::var("HUM_LOAD_DEBUG").is_err() {
        std::fs::remove_dir_all(&m.dir)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_back_after_missing_epochs_gets_every_message_and_the_time_is_measured() -> Res {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!("hum-away-test-{}", std::process::id()));
    // Epochs of one second: four epoch changes away, mail in three of them.
    let m = mesh(&dir, 20).await?;
    let spec = AwaySpec {
        tick: TICK,
        epoch_ticks: 20,
        epochs_away: 4,
        senders: 3,
        epochs_with_mail: 3,
        per_epoch: 2,
        catch_up_delay: Duration::from_millis(200),
        catch_up_exponential: false,
        timeout: Duration::from_secs(30),
        seed: 3,
    };
    let report = away(&spec, &m.topology).await?;
    for h in m.handles {
        h.shutdown().await;
    }
    eprintln!("{report}");
    assert!(report.missed >= 4, "{report:?}");
    assert_eq!((report.messages, report.epochs), (6, 3), "{report:?}");
    // Everything came, by catch-up (the live stream of those epochs had gone by), and
    // the time to the last message is the figure.
    assert_eq!((report.received, report.by_catch_up), (6, 6), "{report:?}");
    let ticks = report.to_last_ticks.ok_or("no time to the last message")?;
    assert!(ticks > 0.0 && report.to_last.is_some(), "{report:?}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
