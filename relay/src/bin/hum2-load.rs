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
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use hum_relay::test_client::load::{Swarm, source};
use hum_shared::RelayAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;
use tokio::process::{Child, Command};

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
    /// Folder holding hum-relay and hum-bare (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("bad VmRSS")?
        .parse()?)
}

/// User plus system CPU time of a process, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("bad stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11).context("no utime")?.parse()?;
    let stime: u64 = f.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Starts a server and reads the address it prints first.
async fn spawn(bin: &Path, args: &[String]) -> anyhow::Result<(Child, RelayAddr)> {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let out = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).await?;
    Ok((child, line.trim().parse().context("no address printed")?))
}

/// A port free now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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
async fn bare(cli: &Cli, dir: &Path) -> anyhow::Result<Vec<Row>> {
    let (child, addr) = spawn(
        &dir.join("hum-bare"),
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--tick-ms".into(),
            cli.tick_ms.to_string(),
        ],
    )
    .await?;
    let pid = child.id().context("exited")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(pid)?;
    let mut tasks = Vec::new();
    for i in 0..cli.clients {
        let addr = addr.clone();
        let sock = TcpSocket::new_v4()?;
        sock.bind(std::net::SocketAddr::new(source(i), 0))?;
        let tcp = sock.connect(addr.host_port().parse()?).await?;
        let (mut tls, hello) = hum_relay::connect_over(tcp, &addr).await?;
        tasks.push(tokio::spawn(async move {
            let mut cell = vec![0u8; hello.cell_size];
            while tls.read_exact(&mut cell).await.is_ok() {
                if tls.write_all(&cell).await.is_err() {
                    break;
                }
            }
        }));
    }
    let m = measure(cli, &[("hum-bare", pid)], vec![rss_before], || {}).await?;
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
    drop(child);
    Ok(rows(&m, cli.clients, cli.seconds as f64, cli.tick_ms))
}

/// Waits two seconds, then measures the processes over `seconds`, calling `each_tick`
/// once per tick.
async fn measure(
    cli: &Cli,
    procs: &[(&'static str, u32)],
    rss_before: Vec<u64>,
    mut each_tick: impl FnMut(),
) -> anyhow::Result<Vec<Measured>> {
    tokio::time::sleep(Duration::from_secs(2)).await;
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
    Ok(procs
        .iter()
        .enumerate()
        .map(|(i, p)| Measured {
            name: p.0,
            rss_before: rss_before[i],
            rss_loaded: rss_loaded[i],
            cpu: cpu1[i] - cpu0[i],
        })
        .collect())
}

/// The single relay (combined role) with `n` hum/2 clients chatting.
async fn combined(cli: &Cli, dir: &Path) -> anyhow::Result<(Vec<Row>, usize)> {
    let (child, addr) = spawn(
        &dir.join("hum-relay"),
        &[
            "--ephemeral".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--stats-every".into(),
            "0".into(),
            "--tick".into(),
            format!("{}ms", cli.tick_ms),
        ],
    )
    .await?;
    let pid = child.id().context("exited")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(pid)?;
    let mut swarm = Swarm::connect(cli.clients, &addr, &addr, &[]).await?;
    let mut round = 0;
    let m = measure(cli, &[("combined", pid)], vec![before], || {
        swarm.chat(round, cli.every);
        round += 1;
    })
    .await?;
    let got = swarm.received();
    drop(child);
    Ok((rows(&m, cli.clients, cli.seconds as f64, cli.tick_ms), got))
}

/// An entry relay and a mailbox relay apart, `n` clients entering at one, homed at the
/// other.
async fn mesh(cli: &Cli, dir: &Path) -> anyhow::Result<(Vec<Row>, usize)> {
    let tmp = std::env::temp_dir().join(format!("hum2-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let bin = dir.join("hum-relay");
    let capacity = cli.clients + 16;
    let mut addrs = Vec::new();
    for name in ["entry", "mailbox"] {
        let port = free_port()?;
        let out = Command::new(&bin)
            .args(["--state", &tmp.join(name).to_string_lossy(), "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--init")
            .output()
            .await?;
        let addr: RelayAddr = String::from_utf8(out.stdout)?.trim().parse()?;
        addrs.push((name, port, addr));
    }
    let file = |addr: &RelayAddr, role: &str| {
        format!("[[relay]]\naddress = \"{addr}\"\nrole = \"{role}\"\ncapacity = {capacity}\n")
    };
    std::fs::write(tmp.join("entry.toml"), file(&addrs[1].2, "mailbox"))?;
    std::fs::write(tmp.join("mailbox.toml"), file(&addrs[0].2, "entry"))?;
    let mut children = Vec::new();
    for (name, port, _) in &addrs {
        let args: Vec<String> = vec![
            "--state".into(),
            tmp.join(name).to_string_lossy().into_owned(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--role".into(),
            (*name).to_owned(),
            "--peers".into(),
            tmp.join(format!("{name}.toml"))
                .to_string_lossy()
                .into_owned(),
            "--stats-every".into(),
            "0".into(),
            "--tick".into(),
            format!("{}ms", cli.tick_ms),
            "--max-clients".into(),
            (cli.clients + 16).to_string(),
        ];
        children.push(spawn(&bin, &args).await?.0);
    }
    let pids: Vec<u32> = children.iter().filter_map(Child::id).collect();
    if pids.len() != 2 {
        bail!("a relay exited at once");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = vec![rss_kib(pids[0])?, rss_kib(pids[1])?];
    let (entry, home) = (addrs[0].2.clone(), addrs[1].2.clone());
    let mut swarm = Swarm::connect(cli.clients, &entry, &home, std::slice::from_ref(&home)).await?;
    let mut round = 0;
    let m = measure(
        cli,
        &[("entry", pids[0]), ("mailbox", pids[1])],
        before,
        || {
            swarm.chat(round, cli.every);
            round += 1;
        },
    )
    .await?;
    let got = swarm.received();
    drop(children);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok((rows(&m, cli.clients, cli.seconds as f64, cli.tick_ms), got))
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
    let mut all = bare(&cli, &dir).await?;
    let (c, got_c) = combined(&cli, &dir).await?;
    let (m, got_m) = mesh(&cli, &dir).await?;
    all.extend(c);
    all.extend(m);
    let bare_cpu = all.first().map_or(1.0, |r| r.cpu_us.max(1e-9));
    let bare_rss = all.first().map_or(1.0, |r| r.rss_kib.max(1e-9));
    println!(
        "clients {}, tick {} ms, {} s measured, a message per client every {} ticks; received: combined {got_c}, mesh {got_m}",
        cli.clients, cli.tick_ms, cli.seconds, cli.every
    );
    println!("| role | CPU µs per client-tick | RSS KiB per client |");
    println!("| --- | --- | --- |");
    for r in &all {
        println!(
            "| {} | {:.2} ({:.2}x) | {:.2} ({:.2}x) |",
            r.name,
            r.cpu_us,
            r.cpu_us / bare_cpu,
            r.rss_kib,
            r.rss_kib / bare_rss
        );
    }
    Ok(())
}
