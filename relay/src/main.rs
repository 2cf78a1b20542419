//! The `hum-relay` binary: parse the command line, set up logging, run the relay until
//! SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hum_relay::{Config, Relay, Role};

/// hum's relay: keeps every client on one steady beat of fixed-size cells, holds
/// envelopes in memory only. Prints its address (hum://HOST:PORT#FINGERPRINT) first.
#[derive(Debug, Parser)]
#[command(name = "hum-relay", version)]
struct Cli {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], hum_relay::DEFAULT_PORT)))]
    listen: SocketAddr,
    /// Length of one tick (e.g. 100ms, 1s).
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    tick: Duration,
    /// Size of every cell in bytes, both directions (1024 to 65535).
    #[arg(long, default_value_t = hum_shared::DEFAULT_CELL_SIZE)]
    cell_size: usize,
    /// How long an unacknowledged envelope is kept (e.g. 7d, 12h).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    ttl: Duration,
    /// Most clients connected at once.
    #[arg(long, default_value_t = 10_000)]
    max_clients: usize,
    /// Folder holding the relay's TLS key and certificate (default: the XDG data folder,
    /// e.g. ~/.local/share/hum-relay).
    #[arg(long, conflicts_with = "ephemeral")]
    state: Option<PathBuf>,
    /// Make a fresh certificate held in memory only (its fingerprint changes each start).
    #[arg(long)]
    ephemeral: bool,
    /// Most envelopes one mailbox holds.
    #[arg(long, default_value_t = 1024)]
    mailbox_quota: usize,
    /// Most envelope bytes held in all, in MiB.
    #[arg(long, default_value_t = 1024)]
    memory_mib: usize,
    /// Ticks a client may fall behind before it is dropped.
    #[arg(long, default_value_t = 30)]
    max_lag: u64,
    /// How often to log a stats line (0 for never).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    stats_every: Duration,
    /// hum/2: what this relay does: entry (faces clients), mailbox (holds buckets) or
    /// both. Both with no peers is the single relay.
    #[arg(long, default_value = "both")]
    role: Role,
    /// hum/2: the relays file (TOML) naming the other relays of the mesh, each with its
    /// pinned address, role and link capacity (docs/RELAY.md).
    #[arg(long)]
    peers: Option<PathBuf>,
    /// hum/2 mailbox role: buckets per epoch, 1 to 256, or auto: one per 32 users the
    /// relay may hold (its clients if single, else its links' capacity from relays
    /// facing clients).
    #[arg(long, default_value = "auto")]
    buckets: hum_relay::BucketCount,
    /// hum/2 mailbox role: ticks per epoch (36000: an hour at 100 ms).
    #[arg(long, default_value_t = hum_relay::DEFAULT_EPOCH_TICKS)]
    epoch_ticks: u32,
    /// hum/2 (curious build only): write what each role sees to FILE, as JSON lines.
    #[cfg(feature = "curious")]
    #[arg(long)]
    curious_log: Option<PathBuf>,
    /// Make the relay's key in --state if it has none, print the address it will have
    /// at --listen (to put in its peers' relays files), and exit.
    #[arg(long, requires = "state")]
    init: bool,
    /// Log at debug level.
    #[arg(short, long)]
    verbose: bool,
}

/// Reads `250us`, `100ms`, `2s`, `5m`, `12h` or `7d`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 100ms"))?;
    let micros = match unit {
        "us" => 1,
        "ms" => 1_000,
        "s" | "" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return Err(format!("unknown unit {unit:?} (us, ms, s, m, h, d)")),
    };
    n.checked_mul(micros)
        .map(Duration::from_micros)
        .ok_or_else(|| format!("{s:?} is too long"))
}

fn default_state_dir() -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "hum-relay")
        .context("no home folder to keep the relay's key in; pass --state DIR")?;
    Ok(dirs.data_dir().to_path_buf())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(if cli.verbose {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        })
        .init();
    if cli.init {
        let dir = cli.state.as_deref().context("--init needs --state DIR")?;
        let fingerprint = hum_relay::init_identity(dir)?;
        let ip = cli.listen.ip();
        let host = if ip.is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            ip.to_string()
        };
        let addr = hum_shared::RelayAddr {
            host,
            port: cli.listen.port(),
            fingerprint,
        };
        println!("{addr}");
        return Ok(());
    }
    let state_dir = match (cli.ephemeral, cli.state) {
        (true, _) => None,
        (false, Some(dir)) => Some(dir),
        (false, None) => Some(default_state_dir()?),
    };
    let mut config = Config::default();
    config.listen = cli.listen;
    config.tick = cli.tick;
    config.cell_size = cli.cell_size;
    config.ttl = cli.ttl;
    config.max_clients = cli.max_clients;
    config.state_dir = state_dir;
    config.mailbox_quota = cli.mailbox_quota;
    config.global_quota = cli.memory_mib.saturating_mul(1 << 20);
    config.max_lag = cli.max_lag;
    config.stats_every = (!cli.stats_every.is_zero()).then_some(cli.stats_every);
    config.role = cli.role;
    config.peers = match &cli.peers {
        Some(path) => hum_relay::load_peers(path)?,
        None => Vec::new(),
    };
    config.buckets = cli.buckets;
    config.epoch_ticks = cli.epoch_ticks;
    #[cfg(feature = "curious")]
    {
        config.curious_log = cli.curious_log;
    }
    run(config).await
}

async fn run(config: Config) -> anyhow::Result<()> {
    let (tick, cell, role, peers) = (
        config.tick,
        config.cell_size,
        config.role,
        config.peers.len(),
    );
    let state = config.state_dir.clone();
    let relay = Relay::bind(config)
        .await
        .context("cannot start the relay")?;
    // The first line on stdout is the address, ready to paste into a client.
    println!("{}", relay.address());
    tracing::info!(
        bind = %relay.local_addr()?,
        tick_ms = tick.as_secs_f64() * 1e3,
        cell_size = cell,
        state = ?state,
        role = ?role,
        peers,
        "relay listening"
    );
    let handle = relay.spawn();
    shutdown_signal().await?;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
