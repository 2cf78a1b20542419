//! Relays as child processes for load runs, and what `/proc` says of them: the release
//! binaries run apart from the load generator, so their CPU and memory figures are
//! theirs alone. Linux only (it reads `/proc/PID/stat` and `/proc/PID/status`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hum_shared::RelayAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;
use tokio::process::{Child, Command};

use super::world::Topology;
use crate::{BucketCount, auto_buckets};

/// Why relays could not be started or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcError {
    /// Starting, reading or stopping a process failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A process did not say what it should have.
    #[error("{0}")]
    Unexpected(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcError {
    let what = what.into();
    move |source| ProcError::Io { what, source }
}

/// Resident memory of a process, in KiB.
///
/// # Errors
/// [`ProcError`] when `/proc` cannot be read.
pub fn rss_kib(pid: u32) -> Result<u64, ProcError> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(io("read status"))?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ProcError::Unexpected(format!("no VmRSS for {pid}")))
}

/// User plus system CPU time of a process, in clock ticks (1/100 s).
///
/// # Errors
/// [`ProcError`] when `/proc` cannot be read.
pub fn cpu_ticks(pid: u32) -> Result<u64, ProcError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(io("read stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| ProcError::Unexpected("bad stat".to_owned()))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    match (field(11), field(12)) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => Err(ProcError::Unexpected(format!("no CPU times for {pid}"))),
    }
}

/// A port free now.
///
/// # Errors
/// [`ProcError`] when no port can be bound.
pub fn free_port() -> Result<u16, ProcError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io("find a free port"))
}

/// Starts a server and reads the address it prints first.
///
/// # Errors
/// [`ProcError`] when it does not start or prints no address.
pub async fn spawn(bin: &Path, args: &[String]) -> Result<(Child, RelayAddr), ProcError> {
    spawn_with(bin, args, Stdio::null()).await
}

async fn spawn_with(
    bin: &Path,
    args: &[String],
    stderr: Stdio,
) -> Result<(Child, RelayAddr), ProcError> {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(io(format!("start {}", bin.display())))?;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| ProcError::Unexpected("no stdout".to_owned()))?;
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .await
        .map_err(io("read the address"))?;
    let addr = line
        .trim()
        .parse()
        .map_err(|_| ProcError::Unexpected(format!("{} printed no address", bin.display())))?;
    Ok((child, addr))
}

/// Reads a relay's log until it closes, adding up the `slots_missing` of its stats
/// lines into `missing`.
async fn count_missing(stderr: tokio::process::ChildStderr, missing: Arc<AtomicU64>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(n) = field(&line, "slots_missing") {
            missing.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// The value of `name=N` in a log line, colours or not.
fn field(line: &str, name: &str) -> Option<u64> {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An ANSI colour: ESC [ ... m.
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain.split_whitespace().find_map(|w| {
        w.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    })
}

/// Asks a process to stop (SIGTERM), and kills it if it has not within `grace`.
pub async fn stop(mut child: Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Which relays a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// One entry relay and two mailbox relays; clients enter at the entry relay and are
    /// homed at either mailbox relay.
    Mesh,
    /// Two relays, each both and the other's peer; clients enter at one and are homed at
    /// the other, both ways.
    Pair,
    /// One entry relay and one mailbox relay.
    Apart,
    /// The single relay: entry and home at once (hum/1's view).
    Single,
}

impl Layout {
    /// Names and roles of its relays.
    fn relays(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Layout::Mesh => &[
                ("entry", "entry"),
                ("mailbox-a", "mailbox"),
                ("mailbox-b", "mailbox"),
            ],
            Layout::Pair => &[("both-a", "both"), ("both-b", "both")],
            Layout::Apart => &[("entry", "entry"), ("mailbox", "mailbox")],
            Layout::Single => &[("single", "both")],
        }
    }

    /// The bucket count the mailbox relays of this layout announce with options `o`:
    /// every mailbox relay here links to its entry relays with `o.capacity`, and the
    /// single relay holds `o.max_clients`.
    pub fn bucket_count(self, o: &RelayOptions) -> u16 {
        match o.buckets {
            BucketCount::Fixed(n) => n,
            BucketCount::Auto => auto_buckets(match self {
                Layout::Single => o.max_clients,
                _ => usize::from(o.capacity),
            }),
        }
    }

    /// Which relays link, as (index, index).
    fn links(self) -> &'static [(usize, usize)] {
        match self {
            Layout::Mesh => &[(0, 1), (0, 2), (1, 2)],
            Layout::Pair | Layout::Apart => &[(0, 1)],
            Layout::Single => &[],
        }
    }
}

/// How the relays are set up.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The hum-relay binary.
    pub bin: PathBuf,
    /// Where state folders, relays files and curious logs go.
    pub dir: PathBuf,
    /// Tick length.
    pub tick: Duration,
    /// Buckets per epoch (`Auto`: what the relays derive from their capacity).
    pub buckets: BucketCount,
    /// Ticks per epoch.
    pub epoch_ticks: u32,
    /// Slots per tick on every link.
    pub capacity: u16,
    /// Clients an entry relay takes.
    pub max_clients: usize,
    /// Ticks a client may lag before it is dropped.
    pub max_lag: u64,
    /// Write a curious log per relay (the binary must be a curious build).
    pub curious: bool,
    /// How often each relay writes its stats line (zero: never), from which
    /// [`RelayProc::slots_missing`] is counted.
    pub stats_every: Duration,
}

/// One running relay.
#[derive(Debug)]
pub struct RelayProc {
    /// Its name in the layout (`entry`, `mailbox-a`, ...).
    pub name: &'static str,
    /// Its role.
    pub role: &'static str,
    /// Its address.
    pub addr: RelayAddr,
    /// Its process id.
    pub pid: u32,
    /// Its curious log, if written.
    pub log: Option<PathBuf>,
    /// Entry role: slots of its clients that had not come when their batch left, as its
    /// stats lines said so far (every [`RelayOptions::stats_every`]).
    pub slots_missing: Arc<AtomicU64>,
    child: Child,
}

/// The relays of one layout, running.
#[derive(Debug)]
pub struct Relays {
    /// Every relay, in the layout's order.
    pub procs: Vec<RelayProc>,
    /// Who enters where and is homed where.
    pub topology: Topology,
}

impl Relays {
    /// Makes each relay's key, writes the relays files and starts the processes.
    ///
    /// # Errors
    /// [`ProcError`] when a folder, key or process cannot be made.
    pub async fn start(layout: Layout, o: &RelayOptions) -> Result<Self, ProcError> {
        std::fs::create_dir_all(&o.dir).map_err(io("make the run folder"))?;
        let mut addrs = Vec::new();
        let mut ports = Vec::new();
        for (name, _) in layout.relays() {
            let port = free_port()?;
            let out = Command::new(&o.bin)
                .args(["--state", &o.dir.join(name).to_string_lossy(), "--listen"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("--init")
                .output()
                .await
                .map_err(io(format!("run {} --init", o.bin.display())))?;
            let addr: RelayAddr = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .map_err(|_| ProcError::Unexpected(format!("{name}: --init printed no address")))?;
            addrs.push(addr);
            ports.push(port);
        }
        let relays = layout.relays();
        let mut files = vec![String::new(); relays.len()];
        for &(a, b) in layout.links() {
            let entry = |i: usize| {
                format!(
                    "[[relay]]\naddress = \"{}\"\nrole = \"{}\"\ncapacity = {}\n",
                    addrs[i], relays[i].1, o.capacity
                )
            };
            files[a].push_str(&entry(b));
            files[b].push_str(&entry(a));
        }
        let mut procs = Vec::new();
        for (i, (name, role)) in relays.iter().enumerate() {
            let mut args: Vec<String> = vec![
                "--state".into(),
                o.dir.join(name).to_string_lossy().into_owned(),
                "--listen".into(),
                format!("127.0.0.1:{}", ports[i]),
                "--role".into(),
                (*role).to_owned(),
                "--stats-every".into(),
                format!("{}ms", o.stats_every.as_millis()),
                "--tick".into(),
                format!("{}us", o.tick.as_micros()),
                "--buckets".into(),
                o.buckets.to_string(),
                "--epoch-ticks".into(),
                o.epoch_ticks.to_string(),
                "--max-clients".into(),
                o.max_clients.to_string(),
                "--max-lag".into(),
                o.max_lag.to_string(),
            ];
            if !files[i].is_empty() {
                let file = o.dir.join(format!("{name}.toml"));
                std::fs::write(&file, &files[i]).map_err(io("write a relays file"))?;
                args.push("--peers".into());
                args.push(file.to_string_lossy().into_owned());
            }
            let log = o
                .curious
                .then(|| o.dir.join(format!("{name}.curious.jsonl")));
            if let Some(log) = &log {
                args.push("--curious-log".into());
                args.push(log.to_string_lossy().into_owned());
            }
            let (mut child, addr) = spawn_with(&o.bin, &args, Stdio::piped()).await?;
            let slots_missing = Arc::new(AtomicU64::new(0));
            if let Some(stderr) = child.stderr.take() {
                tokio::spawn(count_missing(stderr, Arc::clone(&slots_missing)));
            }
            let pid = child
                .id()
                .ok_or_else(|| ProcError::Unexpected(format!("{name} exited at once")))?;
            procs.push(RelayProc {
                name,
                role,
                addr,
                pid,
                log,
                slots_missing,
                child,
            });
        }
        let a = |i: usize| procs[i].addr.clone();
        let lanes = match layout {
            Layout::Mesh => vec![(a(0), a(1)), (a(0), a(2))],
            Layout::Pair => vec![(a(0), a(1)), (a(1), a(0))],
            Layout::Apart => vec![(a(0), a(1))],
            Layout::Single => vec![(a(0), a(0))],
        };
        Ok(Self {
            procs,
            topology: Topology { lanes },
        })
    }

    /// Stops every relay (SIGTERM, so the curious logs are flushed).
    pub async fn stop(self) {
        for p in self.procs {
            stop(p.child, Duration::from_secs(5)).await;
        }
    }
}

/// The bare beat server (`hum-bare`, hum/1 cells, no logic) with `clients` clients
/// echoing every cell for `seconds`: its CPU µs per client-tick and RSS KiB per client.
///
/// # Errors
/// [`ProcError`] when the server cannot be started or read.
pub async fn bare(
    bin: &Path,
    clients: usize,
    tick: Duration,
    seconds: u64,
) -> Result<(f64, f64), ProcError> {
    let (child, addr) = spawn(
        bin,
        &[
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--tick-ms".into(),
            tick.as_millis().to_string(),
        ],
    )
    .await?;
    let pid = child
        .id()
        .ok_or_else(|| ProcError::Unexpected("hum-bare exited".to_owned()))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(pid)?;
    let mut tasks = Vec::new();
    for i in 0..clients {
        let sock = TcpSocket::new_v4().map_err(io("socket"))?;
        sock.bind(std::net::SocketAddr::new(super::source(i), 0))
            .map_err(io("bind"))?;
        let to = addr
            .host_port()
            .parse()
            .map_err(|_| ProcError::Unexpected("bad address".to_owned()))?;
        let tcp = sock.connect(to).await.map_err(io("connect"))?;
        let (mut tls, hello) = crate::connect_over(tcp, &addr)
            .await
            .map_err(|e| ProcError::Unexpected(e.to_string()))?;
        tasks.push(tokio::spawn(async move {
            let mut cell = vec![0u8; hello.cell_size];
            while tls.read_exact(&mut cell).await.is_ok() {
                if tls.write_all(&cell).await.is_err() {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = rss_kib(pid)?;
    let cpu0 = cpu_ticks(pid)?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu1 = cpu_ticks(pid)?;
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
    stop(child, Duration::from_secs(2)).await;
    let client_ticks = clients as f64 * seconds as f64 / tick.as_secs_f64();
    Ok((
        (cpu1 - cpu0) as f64 * 1e4 / client_ticks.max(1.0),
        loaded.saturating_sub(before) as f64 / clients.max(1) as f64,
    ))
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn a_stats_field_is_read_with_or_without_colours() {
        let plain = "2026-12-02T02:00:00Z  INFO hum_relay::stats: stats clients=3 slots_missing=17 refused=0";
        assert_eq!(field(plain, "slots_missing"), Some(17));
        let coloured = "\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[3mslots_missing\u{1b}[0m\u{1b}[2m=\u{1b}[0m4 \u{1b}[3mrefused\u{1b}[0m\u{1b}[2m=\u{1b}[0m0";
        assert_eq!(field(coloured, "slots_missing"), Some(4));
        assert_eq!(field(plain, "missing"), None);
        assert_eq!(field("relay listening", "slots_missing"), None);
    }
}
