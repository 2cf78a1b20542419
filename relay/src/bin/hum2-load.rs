//! `hum2-load`: CPU per client-tick and memory per client of the hum/2 roles (entry,
//! mailbox, and the single relay's combined role) against the bare beat server
//! (`hum-bare`, hum/1 cells, no logic), side by side in one run. Servers run as child
//! processes (release builds), so the figures from `/proc` are theirs alone.
//!
//! ```sh
//! cargo build --release -p hum-tests --bin hum-bare
//! cargo build --release -p hum-relay --features test-client --bins
//! target/release/hum2-load --clients 300 --seconds 10
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use hum_relay::BucketCount;
use hum_relay::test_client::load::procs::{Layout, RelayOptions, Relays, bare, cpu_ticks, rss_kib};
use hum_relay::test_client::load::{KeptUp, Swarm};

/// hum/2 roles against the bare beat server.
#[derive(Debug, Parser)]
struct Cli {
    /// Clients per run (even).
    #[arg(long, default_value_t = 300)]
    clients: usize,
    /// Seconds measured per run, after everyone is connected.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Tick length in milliseconds.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// Each client sends its partner a message every this many ticks.
    #[arg(long, default_value_t = 10)]
    every: u64,
    /// Buckets per epoch at the mailbox relays: a count, or auto (the relays' default,
    /// from the link capacity). The default 64: a message per client every 10 ticks is
    /// about twelve times the proof's load per user, which auto's 32 users a bucket
    /// cannot stream.
    #[arg(long, default_value = "64")]
    buckets: BucketCount,
    /// Folder holding hum-relay and hum-bare (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

/// One server process measured: CPU µs per client-tick and RSS KiB per client.
struct Measured {
    name: &'static str,
    rss_before: u64,
    rss_loaded: u64,
    cpu: u64,
}

struct Row {
    name: &'static str,
    cpu_us: f64,
    rss_kib: f64,
}

fn rows(ms: &[Measured], clients: usize, seconds: f64, tick_ms: u64) -> Vec<Row> {
    let client_ticks = clients as f64 * seconds * 1000.0 / tick_ms as f64;
    ms.iter()
        .map(|m| Row {
            name: m.name,
            cpu_us: m.cpu as f64 * 1e4 / client_ticks,
            rss_kib: m.rss_loaded.saturating_sub(m.rss_before) as f64 / clients as f64,
        })
        .collect()
}

/// The bare server with `n` hum/1 clients echoing every cell.
async fn bare_row(cli: &Cli, dir: &Path) -> anyhow::Result<Vec<Row>> {
    let (cpu_us, rss_kib) = bare(
        &dir.join("hum-bare"),
        cli.clients,
        Duration::from_millis(cli.tick_ms),
        cli.seconds,
    )
    .await?;
    Ok(vec![Row {
        name: "hum-bare",
        cpu_us,
        rss_kib,
    }])
}

/// Waits two seconds, then measures the processes over `seconds`, calling `each_tick`
/// once per tick. Also returns the slots the relays counted missing from about then to
/// a stats line after the end, and the client-slots owed over that time.
async fn measure(
    cli: &Cli,
    procs: &[(&'static str, u32)],
    rss_before: Vec<u64>,
    missing: impl Fn() -> u64,
    mut each_tick: impl FnMut(),
) -> anyhow::Result<(Vec<Measured>, u64, u64)> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (missing0, from) = (missing(), tokio::time::Instant::now());
    let rss_loaded: Vec<u64> = procs
        .iter()
        .map(|p| rss_kib(p.1))
        .collect::<Result<_, _>>()?;
    let cpu0: Vec<u64> = procs
        .iter()
        .map(|p| cpu_ticks(p.1))
        .collect::<Result<_, _>>()?;
    let tick = Duration::from_millis(cli.tick_ms);
    let ticks = cli.seconds * 1000 / cli.tick_ms.max(1);
    let mut interval = tokio::time::interval(tick);
    for _ in 0..ticks {
        interval.tick().await;
        each_tick();
    }
    let cpu1: Vec<u64> = procs
        .iter()
        .map(|p| cpu_ticks(p.1))
        .collect::<Result<_, _>>()?;
    // The stats line of the last second measured comes within a second.
    tokio::time::sleep(STATS_EVERY + Duration::from_millis(200)).await;
    let missed = missing().saturating_sub(missing0);
    let owed = (cli.clients as f64 * from.elapsed().as_secs_f64() / tick.as_secs_f64()) as u64;
    let measured = procs
        .iter()
        .enumerate()
        .map(|(i, p)| Measured {
            name: p.0,
            rss_before: rss_before[i],
            rss_loaded: rss_loaded[i],
            cpu: cpu1[i] - cpu0[i],
        })
        .collect();
    Ok((measured, missed, owed))
}

/// How often the relays write the stats lines the missing slots are read from.
const STATS_EVERY: Duration = Duration::from_secs(1);

fn options(cli: &Cli, dir: &Path, name: &str) -> RelayOptions {
    RelayOptions {
        bin: dir.join("hum-relay"),
        dir: std::env::temp_dir().join(format!("hum2-load-{}-{name}", std::process::id())),
        tick: Duration::from_millis(cli.tick_ms),
        buckets: cli.buckets,
        epoch_ticks: hum_relay::DEFAULT_EPOCH_TICKS,
        capacity: u16::try_from(cli.clients + 16).unwrap_or(u16::MAX),
        max_clients: cli.clients + 16,
        max_lag: 30,
        curious: false,
        stats_every: STATS_EVERY,
    }
}

/// The relays of `layout` with `n` hum/2 clients chatting, entering at the first lane's
/// entry relay and homed at its home relay: the rows of every relay (named `names`),
/// and whether the load generator kept up.
async fn roles(
    cli: &Cli,
    dir: &Path,
    layout: Layout,
    names: &[&'static str],
) -> anyhow::Result<(Vec<Row>, KeptUp)> {
    let o = options(cli, dir, names[0]);
    let relays = Relays::start(layout, &o).await?;
    let pids: Vec<u32> = relays.procs.iter().map(|p| p.pid).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = pids
        .iter()
        .map(|&p| rss_kib(p))
        .collect::<Result<Vec<_>, _>>()?;
    let (entry, home) = relays.topology.lanes.first().cloned().context("no lane")?;
    let pins = if layout == Layout::Single {
        Vec::new()
    } else {
        vec![home.clone()]
    };
    let mut swarm = Swarm::connect(cli.clients, &entry, &home, &pins).await?;
    let mut round = 0;
    let procs: Vec<(&'static str, u32)> = names.iter().copied().zip(pids).collect();
    let counters: Vec<_> = relays
        .procs
        .iter()
        .map(|p| Arc::clone(&p.slots_missing))
        .collect();
    let missing = || counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    let (m, missed, owed) = measure(cli, &procs, before, missing, || {
        swarm.chat(round, cli.every);
        round += 1;
    })
    .await?;
    // What is still in flight arrives (the beat goes on, nothing new is sent).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kept = KeptUp {
        slots: owed,
        missing: missed,
        sent: swarm.sent(),
        delivered: swarm.received() as u64,
    };
    relays.stop().await;
    let _ = std::fs::remove_dir_all(&o.dir);
    Ok((rows(&m, cli.clients, cli.seconds as f64, cli.tick_ms), kept))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.clients < 2 || cli.clients % 2 != 0 {
        bail!("--clients must be an even number of at least 2");
    }
    let dir = match &cli.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no folder")?
            .to_path_buf(),
    };
    let bare = bare_row(&cli, &dir).await?;
    let (c, kept_c) = roles(&cli, &dir, Layout::Single, &["combined"]).await?;
    let (m, kept_m) = roles(&cli, &dir, Layout::Apart, &["entry", "mailbox"]).await?;
    let bare_cpu = bare.first().map_or(1.0, |r| r.cpu_us.max(1e-9));
    let bare_rss = bare.first().map_or(1.0, |r| r.rss_kib.max(1e-9));
    println!(
        "clients {}, tick {} ms, {} s measured, a message per client every {} ticks",
        cli.clients, cli.tick_ms, cli.seconds, cli.every
    );
    println!("combined (single relay): {kept_c}");
    println!("entry and mailbox apart: {kept_m}");
    println!("| role | CPU µs per client-tick | RSS KiB per client |");
    println!("| --- | --- | --- |");
    let mut all: Vec<(Row, bool)> = bare.into_iter().map(|r| (r, false)).collect();
    all.extend(c.into_iter().map(|r| (r, kept_c.fell_behind())));
    all.extend(m.into_iter().map(|r| (r, kept_m.fell_behind())));
    for (r, behind) in &all {
        if *behind {
            println!(
                "| {} | generator fell behind: figures withheld | withheld |",
                r.name
            );
            continue;
        }
        println!(
            "| {} | {:.2} ({:.2}x) | {:.2} ({:.2}x) |",
            r.name,
            r.cpu_us,
            r.cpu_us / bare_cpu,
            r.rss_kib,
            r.rss_kib / bare_rss
        );
    }
    if kept_c.fell_behind() || kept_m.fell_behind() {
        println!(
            "generator fell behind: figures withheld (a run is withheld when more than {:.0}% of its clients' slots missed their batch; try a longer --tick-ms or fewer --clients)",
            KeptUp::MISSING_MAX * 100.0
        );
    }
    Ok(())
}
