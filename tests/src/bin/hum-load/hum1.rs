//! `hum-load hum1`: the hum/1 figures. Starts hum-relay and the bare beat server
//! (`hum-bare`) as child processes, one after the other, opens N TLS clients against
//! each from source addresses spread over 127.0.0.0/8, keeps every client on the beat,
//! has pairs exchange hum/1 messages through the relay, and prints one JSON line with
//! the figures of both and hum-relay's ratios to the bare server's (the ceiling on this
//! machine). It goes when the hum/1 path goes.
//!
//! Delays are measured against the beat: cell `k` after the hello belongs to tick
//! `hello.tick + k`, due at `t0 + tick × n`; `t0` is the earliest such phase seen over all
//! clients, so a cell's delay is how much later than the best-served cell it came.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use hum_relay::test_client::load::procs::{cpu_ticks, rss_kib};
use hum_relay::test_client::load::source;
use hum_shared::{Capability, CellWriter, Down, ENVELOPE_LEN, RelayAddr, Up, decode_cell};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// hum/1 load against the bare beat server as the ceiling.
#[derive(Debug, clap::Args)]
pub(crate) struct Cli {
    /// Number of clients (an even number: they talk in pairs).
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Seconds measured, after everyone is connected and a warm-up.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Tick length in milliseconds.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// Cell size in bytes.
    #[arg(long, default_value_t = hum_shared::DEFAULT_CELL_SIZE)]
    cell_size: usize,
    /// Each client sends its peer one message every this many ticks.
    #[arg(long, default_value_t = 10)]
    message_every: u64,
    /// Which servers to run: relay, bare or both.
    #[arg(long, default_value = "both")]
    servers: String,
    /// Folder holding the hum-relay and hum-bare binaries (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const DONE: u8 = 2;

/// What one client saw during the measured window.
#[derive(Debug, Default)]
struct ClientReport {
    cells: u64,
    /// Arrival phase of each cell: arrival time minus its tick's due time, in µs.
    phases: Vec<i64>,
    /// Delivery latencies: µs and ticks.
    deliveries: Vec<(i64, u64)>,
    failed: bool,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Relay,
    Bare,
}

/// Runs the hum/1 load.
pub(crate) async fn main(cli: Cli) -> anyhow::Result<()> {
    if cli.clients < 2 || !cli.clients.is_multiple_of(2) {
        bail!("--clients must be an even number of at least 2");
    }
    let dir = match &cli.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no folder for this binary")?
            .to_path_buf(),
    };
    let mut parts = vec![
        format!("\"clients\":{}", cli.clients),
        format!("\"tick_ms\":{}", cli.tick_ms),
        format!("\"cell_size\":{}", cli.cell_size),
        format!("\"seconds\":{}", cli.seconds),
        format!("\"ticks\":{}", cli.seconds * 1000 / cli.tick_ms.max(1)),
    ];
    let mut relay = None;
    let mut bare = None;
    if matches!(cli.servers.as_str(), "both" | "bare") {
        let r = run(&cli, &dir, Kind::Bare).await?;
        parts.push(format!("\"bare\":{}", r.json()));
        bare = Some(r);
    }
    if matches!(cli.servers.as_str(), "both" | "relay") {
        let r = run(&cli, &dir, Kind::Relay).await?;
        parts.push(format!("\"relay\":{}", r.json()));
        relay = Some(r);
    }
    if let (Some(r), Some(b)) = (&relay, &bare) {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        parts.push(format!(
            "\"ratio\":{{\"cpu_per_client_tick\":{:.3},\"rss_per_client\":{:.3},\"cell_delay_p99\":{:.3}}}",
            ratio(r.cpu_us_per_client_tick, b.cpu_us_per_client_tick),
            ratio(r.rss_kib_per_client, b.rss_kib_per_client),
            ratio(r.cell_delay_p99_ms, b.cell_delay_p99_ms),
        ));
    }
    println!("{{{}}}", parts.join(","));
    Ok(())
}

/// The figures of one server under load.
#[derive(Debug, Default)]
struct Summary {
    connected: usize,
    failed: usize,
    late: u64,
    missed: u64,
    cells: u64,
    cell_delay_p50_ms: f64,
    cell_delay_p99_ms: f64,
    delivered: usize,
    delivery_p50_ms: f64,
    delivery_p99_ms: f64,
    delivery_p50_ticks: u64,
    delivery_p99_ticks: u64,
    cpu_us_per_client_tick: f64,
    rss_kib_per_client: f64,
}

impl Summary {
    fn json(&self) -> String {
        format!(
            concat!(
                "{{\"connected\":{},\"failed\":{},\"cells\":{},\"late\":{},\"missed\":{},",
                "\"cell_delay_ms\":{{\"p50\":{:.2},\"p99\":{:.2}}},",
                "\"delivered\":{},\"latency_ms\":{{\"p50\":{:.2},\"p99\":{:.2}}},",
                "\"latency_ticks\":{{\"p50\":{},\"p99\":{}}},",
                "\"cpu_us_per_client_tick\":{:.2},\"rss_kib_per_client\":{:.2}}}"
            ),
            self.connected,
            self.failed,
            self.cells,
            self.late,
            self.missed,
            self.cell_delay_p50_ms,
            self.cell_delay_p99_ms,
            self.delivered,
            self.delivery_p50_ms,
            self.delivery_p99_ms,
            self.delivery_p50_ticks,
            self.delivery_p99_ticks,
            self.cpu_us_per_client_tick,
            self.rss_kib_per_client,
        )
    }
}

async fn run(cli: &Cli, dir: &Path, kind: Kind) -> anyhow::Result<Summary> {
    let tick = Duration::from_millis(cli.tick_ms);
    let mut cmd = match kind {
        Kind::Relay => {
            let mut c = tokio::process::Command::new(dir.join("hum-relay"));
            c.args([
                "--listen",
                "127.0.0.1:0",
                "--ephemeral",
                "--stats-every",
                "0",
            ])
            .args(["--tick", &format!("{}ms", cli.tick_ms)])
            .args(["--cell-size", &cli.cell_size.to_string()])
            .args(["--max-clients", &(cli.clients + 16).to_string()]);
            c
        }
        Kind::Bare => {
            let mut c = tokio::process::Command::new(dir.join("hum-bare"));
            c.args(["--listen", "127.0.0.1:0"])
                .args(["--tick-ms", &cli.tick_ms.to_string()])
                .args(["--cell-size", &cli.cell_size.to_string()]);
            c
        }
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start the {kind:?} server from {}", dir.display()))?;
    let pid = child.id().context("server exited at once")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await?;
    let addr: RelayAddr = line.trim().parse().context("server printed no address")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(pid)?;

    let phase = Arc::new(AtomicU8::new(WARMUP));
    let base = Instant::now();
    let gate = Arc::new(Semaphore::new(64));
    let settled = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(cli.clients);
    for i in 0..cli.clients {
        let addr = addr.clone();
        let phase = Arc::clone(&phase);
        let gate = Arc::clone(&gate);
        let settled = Arc::clone(&settled);
        let (me, peer) = (cap(i), cap(i ^ 1).mailbox_id());
        let relay = matches!(kind, Kind::Relay);
        let every = cli.message_every.max(1);
        tasks.push(tokio::spawn(async move {
            client(i, addr, gate, settled, phase, base, relay, me, peer, every).await
        }));
    }
    // Wait until every client has connected (or failed to), then warm up.
    let connect_deadline = Instant::now() + Duration::from_secs(120);
    while settled.load(Ordering::Relaxed) < cli.clients && Instant::now() < connect_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_loaded = rss_kib(pid)?;
    let cpu_start = cpu_ticks(pid)?;
    let t_start = Instant::now();
    phase.store(MEASURE, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(cli.seconds)).await;
    phase.store(DONE, Ordering::Relaxed);
    let cpu_end = cpu_ticks(pid)?;
    let window = t_start.elapsed();
    // Give every client time to notice, then collect.
    tokio::time::sleep(tick * 3).await;
    let mut reports = Vec::with_capacity(tasks.len());
    let collect_deadline = Instant::now() + Duration::from_secs(5);
    for t in tasks {
        let abort = t.abort_handle();
        // A client that does not finish reports as failed.
        let r = tokio::time::timeout_at(collect_deadline, t).await;
        abort.abort();
        reports.push(match r {
            Ok(Ok(r)) => r,
            _ => ClientReport {
                failed: true,
                ..ClientReport::default()
            },
        });
    }
    let _ = child.kill().await;

    let tick_us = i64::try_from(tick.as_micros()).unwrap_or(i64::MAX);
    let t0 = reports
        .iter()
        .flat_map(|r| r.phases.iter().copied())
        .min()
        .unwrap_or(0);
    let mut delays: Vec<i64> = reports
        .iter()
        .flat_map(|r| r.phases.iter().map(move |p| p - t0))
        .collect();
    delays.sort_unstable();
    let expected = window.as_micros() as f64 / tick_us as f64;
    let ok: Vec<&ClientReport> = reports.iter().filter(|r| !r.failed).collect();
    let missed: u64 = ok
        .iter()
        .map(|r| (expected - 1.0 - r.cells as f64).max(0.0).floor() as u64)
        .sum();
    let mut lat: Vec<(i64, u64)> = reports
        .iter()
        .flat_map(|r| r.deliveries.iter().copied())
        .collect();
    lat.sort_unstable();
    let mut lat_ticks: Vec<u64> = lat.iter().map(|l| l.1).collect();
    lat_ticks.sort_unstable();
    let n = ok.len().max(1) as f64;
    let client_ticks = n * expected;
    let clk_tck = 100.0; // USER_HZ on Linux
    Ok(Summary {
        connected: ok.len(),
        failed: reports.len() - ok.len(),
        cells: ok.iter().map(|r| r.cells).sum(),
        late: delays.iter().filter(|&&d| d > tick_us).count() as u64,
        missed,
        cell_delay_p50_ms: pct(&delays, 0.50) as f64 / 1e3,
        cell_delay_p99_ms: pct(&delays, 0.99) as f64 / 1e3,
        delivered: lat.len(),
        delivery_p50_ms: pct(&lat.iter().map(|l| l.0).collect::<Vec<_>>(), 0.50) as f64 / 1e3,
        delivery_p99_ms: {
            let mut us: Vec<i64> = lat.iter().map(|l| l.0).collect();
            us.sort_unstable();
            pct(&us, 0.99) as f64 / 1e3
        },
        delivery_p50_ticks: pct(&lat_ticks, 0.50),
        delivery_p99_ticks: pct(&lat_ticks, 0.99),
        cpu_us_per_client_tick: (cpu_end.saturating_sub(cpu_start)) as f64 / clk_tck * 1e6
            / client_ticks.max(1.0),
        rss_kib_per_client: rss_loaded.saturating_sub(rss_before) as f64 / n,
    })
}

fn pct<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Client `i`'s fetch capability (each pair reads each other's mailbox).
fn cap(i: usize) -> Capability {
    let mut c = [0u8; 32];
    c[..8].copy_from_slice(&(i as u64).to_be_bytes());
    c[8] = 0x68;
    Capability::from_bytes(c)
}

#[allow(clippy::too_many_arguments)]
async fn client(
    i: usize,
    addr: RelayAddr,
    gate: Arc<Semaphore>,
    settled: Arc<AtomicUsize>,
    phase: Arc<AtomicU8>,
    base: Instant,
    relay: bool,
    me: Capability,
    peer: hum_shared::MailboxId,
    every: u64,
) -> ClientReport {
    let mut report = ClientReport::default();
    match beat(
        i,
        addr,
        gate,
        &settled,
        &phase,
        base,
        relay,
        me,
        peer,
        every,
        &mut report,
    )
    .await
    {
        Ok(()) => {}
        Err(_) => report.failed = true,
    }
    report
}

#[allow(clippy::too_many_arguments)]
async fn beat(
    i: usize,
    addr: RelayAddr,
    gate: Arc<Semaphore>,
    settled: &AtomicUsize,
    phase: &AtomicU8,
    base: Instant,
    relay: bool,
    me: Capability,
    peer: hum_shared::MailboxId,
    every: u64,
    report: &mut ClientReport,
) -> anyhow::Result<()> {
    let permit = gate.acquire().await?;
    let opened = async {
        let sock = TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(source(i), 0))?;
        let tcp = sock
            .connect(format!("{}:{}", addr.host, addr.port).parse()?)
            .await?;
        anyhow::Ok(hum_relay::connect_over(tcp, &addr).await?)
    }
    .await;
    drop(permit);
    settled.fetch_add(1, Ordering::Relaxed);
    let (mut tls, hello) = opened?;
    let size = hello.cell_size;
    let tick_us = i64::from(hello.tick_micros);
    let mut buf = vec![0u8; size];
    let mut tick = hello.tick;
    let mut acks: Vec<Up> = Vec::new();
    let mut subscribed = false;
    let mut tag = 0u32;
    // Stagger the senders over the message period.
    let offset = (i as u64 / 2) % every;
    loop {
        tls.read_exact(&mut buf).await?;
        let now = base.elapsed();
        tick += 1;
        let p = phase.load(Ordering::Relaxed);
        if p == DONE {
            return Ok(());
        }
        let measuring = p == MEASURE;
        if measuring {
            report.cells += 1;
            let n = i64::try_from(tick).unwrap_or(i64::MAX);
            report.phases.push(now.as_micros() as i64 - n * tick_us);
        }
        if !relay {
            tls.write_all(&buf).await?;
            continue;
        }
        for d in decode_cell::<Down>(&buf, size)? {
            if let Down::Deliver {
                mailbox,
                seq,
                envelope,
            } = d
            {
                let sent_us = i64::from_be_bytes(envelope[..8].try_into()?);
                let sent_tick = u64::from_be_bytes(envelope[8..16].try_into()?);
                if measuring {
                    report
                        .deliveries
                        .push((now.as_micros() as i64 - sent_us, tick - sent_tick));
                }
                acks.push(Up::Ack { mailbox, seq });
            }
        }
        let mut w = CellWriter::new(size)?;
        if !subscribed {
            w.push(&Up::Subscribe {
                capability: me.clone(),
                after: 0,
            })?;
            subscribed = true;
        } else if measuring && tick % every == offset {
            let mut envelope = vec![0u8; ENVELOPE_LEN];
            envelope[..8].copy_from_slice(&(base.elapsed().as_micros() as i64).to_be_bytes());
            envelope[8..16].copy_from_slice(&tick.to_be_bytes());
            tag = tag.wrapping_add(1);
            w.push(&Up::Deposit {
                tag,
                mailbox: peer,
                fanout: false,
                envelope,
            })?;
        }
        while let Some(a) = acks.last() {
            if !w.fits(a) {
                break;
            }
            w.push(a)?;
            acks.pop();
        }
        tls.write_all(&w.finish()).await?;
    }
}
