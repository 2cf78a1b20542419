//! `hum-load run`: the proof's load over real relays (see `main.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use hum_relay::BucketCount;
use hum_relay::test_client::load::procs::{Layout, RelayOptions, Relays, bare, cpu_ticks, rss_kib};
use hum_relay::test_client::load::{Percentiles, Progress, Spec, Truth, run};
use hum_tests::load_logs::{joins, queue_delay};

/// The proof's load.
#[derive(Debug, clap::Args)]
pub(crate) struct Cli {
    /// Which relays: mesh (one entry relay, two mailbox relays), pair (two relays, each
    /// both and the other's peer) or single (one relay: hum/1's view).
    #[arg(long, value_enum, default_value_t = LayoutArg::Mesh)]
    layout: LayoutArg,
    /// Users (clients).
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// Tick length in milliseconds.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// Divide the epoch, sessions and absences by this (12: an hour-long epoch lasts five
    /// minutes, a mean session of 30 minutes two and a half).
    #[arg(long, default_value_t = 12.0)]
    scale: f64,
    /// Ticks per epoch (default: an hour divided by --scale).
    #[arg(long)]
    epoch_ticks: Option<u32>,
    /// Length of the main phase, in epochs.
    #[arg(long, default_value_t = 2.2)]
    epochs: f64,
    /// Buckets per epoch at each mailbox relay: auto (the relays' default, one per 32
    /// users a relay may hold, from the link capacity) or a count from 1 to 256.
    #[arg(long, default_value = "auto")]
    buckets: BucketCount,
    /// Seed of the world and of every behaviour.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Longest wait, in seconds, for everything to be delivered at the end.
    #[arg(long, default_value_t = 180)]
    settle_secs: u64,
    /// Folder for the relays' state, their curious logs and the truth (made if needed).
    #[arg(long)]
    out: PathBuf,
    /// The ground truth (default: OUT/truth.jsonl).
    #[arg(long)]
    truth: Option<PathBuf>,
    /// The hum-relay binary, a `--features curious` build (default: beside this one).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Folder holding hum-bare (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Do not write curious logs (for a build without the feature).
    #[arg(long)]
    no_curious: bool,
    /// Seconds to measure hum-bare first, with as many clients as are online on average
    /// (0: skip).
    #[arg(long, default_value_t = 10)]
    bare_secs: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LayoutArg {
    Mesh,
    Pair,
    Single,
}

/// One relay's CPU and memory over the main phase.
#[derive(Debug, Default, Clone)]
struct Usage {
    cpu_start: u64,
    cpu_end: u64,
    rss_idle: u64,
    rss_max: u64,
}

/// Samples every relay once a second until the run is done; CPU over the main phase.
async fn sample(
    pids: Vec<u32>,
    progress: Arc<Progress>,
    tick: Duration,
) -> (Vec<Usage>, f64, usize) {
    let mut usage: Vec<Usage> = pids
        .iter()
        .map(|&p| Usage {
            rss_idle: rss_kib(p).unwrap_or(0),
            ..Usage::default()
        })
        .collect();
    let (mut client_ticks, mut most) = (0.0, 0);
    let mut last = tokio::time::Instant::now();
    let mut started = false;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let phase = progress.phase.load(Ordering::Relaxed);
        let online = progress.online.load(Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        if phase == 1 {
            for (u, &p) in usage.iter_mut().zip(&pids) {
                let cpu = cpu_ticks(p).unwrap_or(0);
                if !started {
                    u.cpu_start = cpu;
                }
                u.cpu_end = cpu;
                u.rss_max = u.rss_max.max(rss_kib(p).unwrap_or(0));
            }
            if started {
                client_ticks += online as f64 * (now - last).as_secs_f64() / tick.as_secs_f64();
            }
            started = true;
            most = most.max(online);
        }
        last = now;
        if phase >= 2 && started {
            return (usage, client_ticks, most);
        }
    }
}

pub(crate) async fn main(cli: Cli) -> anyhow::Result<()> {
    let tick = Duration::from_millis(cli.tick_ms.max(1));
    let here = std::env::current_exe()?
        .parent()
        .context("no folder for this binary")?
        .to_path_buf();
    let bin_dir = cli.bin_dir.clone().unwrap_or(here);
    let relay_bin = cli
        .relay_bin
        .clone()
        .unwrap_or_else(|| bin_dir.join("hum-relay"));
    let mut spec = Spec::proof(cli.users, tick, cli.scale);
    if let Some(e) = cli.epoch_ticks {
        spec.epoch_ticks = e;
    }
    spec.run = tick * u32::try_from((f64::from(spec.epoch_ticks) * cli.epochs) as u64)?;
    spec.seed = cli.seed;
    spec.settle = Duration::from_secs(cli.settle_secs);
    let layout = match cli.layout {
        LayoutArg::Mesh => Layout::Mesh,
        LayoutArg::Pair => Layout::Pair,
        LayoutArg::Single => Layout::Single,
    };
    std::fs::create_dir_all(&cli.out)?;
    let on = spec.session_mean.as_secs_f64();
    let online = (cli.users as f64 * (1.0 - spec.away_share) * on
        / (on + spec.offline_mean.as_secs_f64()))
    .round() as usize;
    let bare_row = if cli.bare_secs > 0 {
        Some(
            bare(
                &bin_dir.join("hum-bare"),
                online.max(1),
                tick,
                cli.bare_secs,
            )
            .await?,
        )
    } else {
        None
    };
    let homes = match layout {
        Layout::Single => 1,
        _ => 2,
    };
    let options = RelayOptions {
        bin: relay_bin,
        dir: cli.out.clone(),
        tick,
        buckets: cli.buckets,
        epoch_ticks: spec.epoch_ticks,
        capacity: u16::try_from(cli.users.div_ceil(homes) + 32)?,
        max_clients: cli.users + 64,
        max_lag: 50,
        curious: !cli.no_curious,
        stats_every: Duration::from_secs(1),
    };
    spec.buckets = layout.bucket_count(&options);
    let relays = Relays::start(layout, &options).await?;
    let names: Vec<(&'static str, &'static str, Option<PathBuf>)> = relays
        .procs
        .iter()
        .map(|p| (p.name, p.role, p.log.clone()))
        .collect();
    // Clients each relay serves, as a share of all: lanes that enter or are homed there.
    let lanes = &relays.topology.lanes;
    let share: Vec<f64> = relays
        .procs
        .iter()
        .map(|p| {
            let touching = lanes
                .iter()
                .filter(|(e, h)| {
                    e.fingerprint == p.addr.fingerprint || h.fingerprint == p.addr.fingerprint
                })
                .count();
            touching as f64 / lanes.len().max(1) as f64
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let progress = Arc::new(Progress::default());
    let sampler = tokio::spawn(sample(
        relays.procs.iter().map(|p| p.pid).collect(),
        Arc::clone(&progress),
        tick,
    ));
    let truth_path = cli
        .truth
        .clone()
        .unwrap_or_else(|| cli.out.join("truth.jsonl"));
    let file = std::fs::File::create(&truth_path)
        .with_context(|| format!("create {}", truth_path.display()))?;
    let mut truth = Truth::new(std::io::BufWriter::new(file));
    let result = run(&spec, &relays.topology, &mut truth, &progress).await;
    progress.phase.store(3, Ordering::Relaxed);
    truth.finish()?;
    let missing: u64 = relays
        .procs
        .iter()
        .map(|p| p.slots_missing.load(Ordering::Relaxed))
        .sum();
    relays.stop().await;
    let report = result?;
    let (usage, client_ticks, most) = sampler.await.unwrap_or_default();

    println!(
        "hum-load run: layout {:?}, seed {}, scale {} (epoch, sessions and absences divided by it)",
        cli.layout, cli.seed, cli.scale
    );
    println!(
        "buckets per mailbox relay: {} ({}), link capacity {}",
        spec.buckets, cli.buckets, options.capacity
    );
    print!("{report}");
    println!(
        "slots missing at the entry relay when its batch left (late or never sent; the whole run): {missing}, against {client_ticks:.0} client-ticks in the main phase ({:.2}%)",
        100.0 * missing as f64 / client_ticks.max(1.0)
    );
    let lat = report.latency();
    println!(
        "| target: latency p99 at most 4 ticks plus network | {} |",
        if lat.p99 <= 4.5 { "met" } else { "not met" }
    );
    println!();
    println!("| relay | role | CPU µs per client-tick | RSS KiB per client |");
    println!("| --- | --- | --- | --- |");
    if let Some((cpu, rss)) = bare_row {
        println!("| hum-bare ({online} clients) | bare | {cpu:.2} (1.00x) | {rss:.2} (1.00x) |");
    }
    for ((name, role, _), (u, s)) in names.iter().zip(usage.iter().zip(&share)) {
        let served_ticks = (client_ticks * s).max(1.0);
        let cpu = u.cpu_end.saturating_sub(u.cpu_start) as f64 * 1e4 / served_ticks;
        let rss = u.rss_max.saturating_sub(u.rss_idle) as f64 / (most as f64 * s).max(1.0);
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!(" ({:.2}x)", a / b)
            } else {
                String::new()
            }
        };
        let (rc, rr) = bare_row.map_or((String::new(), String::new()), |(c, r)| {
            (ratio(cpu, c), ratio(rss, r))
        });
        println!("| {name} | {role} | {cpu:.2}{rc} | {rss:.2}{rr} |");
    }
    println!(
        "(CPU over the main phase per tick of each client the relay serves: entering there or homed there; RSS at its peak over the idle relay, per client served at the most)"
    );
    let tick_ms = tick.as_secs_f64() * 1_000.0;
    let logs: Vec<(&str, &Path)> = names
        .iter()
        .filter_map(|(_, role, log)| log.as_deref().map(|l| (*role, l)))
        .collect();
    if logs.is_empty() {
        return Ok(());
    }
    println!();
    println!(
        "| mailbox relay | bucket queueing delay, ticks (deposit to live stream) | never streamed live |"
    );
    println!("| --- | --- | --- |");
    for ((name, role, log), _) in names.iter().zip(&share) {
        let Some(log) = log else { continue };
        if *role == "entry" {
            continue;
        }
        let q = queue_delay(log, tick_ms)?;
        let p = Percentiles::of(q.ticks);
        println!(
            "| {name} | p50 {:.1}, p99 {:.1}, max {:.1} (n = {}) | {} |",
            p.p50, p.p99, p.max, p.n, q.never
        );
    }
    let entries: Vec<&Path> = logs
        .iter()
        .filter(|(r, _)| *r != "mailbox")
        .map(|(_, l)| *l)
        .collect();
    let mailboxes: Vec<&Path> = logs
        .iter()
        .filter(|(r, _)| *r != "entry")
        .map(|(_, l)| *l)
        .collect();
    let j = joins(&truth_path, &entries, &mailboxes, tick_ms)?;
    println!();
    println!(
        "truth joins the logs: of {} deposit attempts {} are in a mailbox log by seed; of the {} answered stored, {} are stored there; {} got no answer ({} in their session's last three ticks); {} of {} sessions by address",
        j.sends,
        j.sends_found,
        j.stored,
        j.stored_found,
        j.unanswered,
        j.unanswered_at_close,
        j.sessions_found,
        j.sessions
    );
    Ok(())
}
