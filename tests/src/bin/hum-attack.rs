//! `hum-attack`: scores what a curious relay or a network observer learns from a run.
//!
//! `hum-attack score --log LOG --truth TRUTH [--observer RECORDS]` reads one relay's
//! curious log (and/or an observer's record file) and the load generator's ground truth,
//! runs every attack they allow and prints a table (or `--json`). `hum-attack synth
//! --world leaky|private|chatty --out DIR` writes a synthetic world in the same formats.
//! docs/ATTACKS.md explains the attacks and the table.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use hum_tests::attack::{CuriousLog, Options, RoleFilter, Truth, WireLog, World, analyse};

/// Scores what a curious relay or a network observer learns (docs/ATTACKS.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every attack the inputs allow and print the table.
    Score(Score),
    /// Write a synthetic world (curious logs, truth, observer records) into a folder.
    Synth(Synth),
}

#[derive(Debug, clap::Args)]
struct Score {
    /// One relay's curious log (JSON lines, docs/PROTOCOL.md hum/2 §H8).
    #[arg(long)]
    log: Option<PathBuf>,
    /// The load generator's ground truth (JSON lines).
    #[arg(long)]
    truth: PathBuf,
    /// A network observer's record file (`CONN DIR MS SIZE` per TLS record).
    #[arg(long)]
    observer: Option<PathBuf>,
    /// Which of the log's roles to read: all, entry, or mailbox (which ignores the
    /// connection a single relay adds to its slot records).
    #[arg(long, value_enum, default_value_t = Role::All)]
    role: Role,
    /// The mailbox role's own relay id (16 hex digits), when it cannot be inferred.
    #[arg(long)]
    relay: Option<String>,
    /// Permutations per shuffled-label control.
    #[arg(long, default_value_t = 200)]
    permutations: usize,
    /// Central mass of each control interval.
    #[arg(long, default_value_t = 0.95)]
    level: f64,
    /// Reply window in ticks (a deposit this soon after a delivery answers it).
    #[arg(long, default_value_t = 50)]
    window: u64,
    /// Delivery lag in ticks (an item this soon after a slot may carry it).
    #[arg(long, default_value_t = 4)]
    lag: u64,
    /// Seed of every permutation and tie-break.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Role {
    All,
    Entry,
    Mailbox,
}

#[derive(Debug, clap::Args)]
struct Synth {
    /// Which world.
    #[arg(long, value_enum)]
    world: WorldKind,
    /// Folder to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the world.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum WorldKind {
    Leaky,
    Private,
    Chatty,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Score(s) => score(&s),
        Command::Synth(s) => synth(&s),
    }
}

fn open(path: &Path) -> anyhow::Result<BufReader<File>> {
    Ok(BufReader::new(File::open(path).with_context(|| {
        format!("cannot open {}", path.display())
    })?))
}

fn score(s: &Score) -> anyhow::Result<()> {
    if s.log.is_none() && s.observer.is_none() {
        bail!("nothing to score: give --log, --observer or both");
    }
    if !(0.5..1.0).contains(&s.level) {
        bail!("--level must be at least 0.5 and below 1");
    }
    let relay = match &s.relay {
        None => None,
        Some(r) => Some(
            u64::from_str_radix(r, 16)
                .ok()
                .filter(|_| r.len() == 16)
                .with_context(|| format!("--relay {r:?} is not 16 hexadecimal digits"))?,
        ),
    };
    let filter = match s.role {
        Role::All => RoleFilter::All,
        Role::Entry => RoleFilter::Entry,
        Role::Mailbox => RoleFilter::Mailbox,
    };
    let truth = Truth::read(open(&s.truth)?).with_context(|| format!("{}", s.truth.display()))?;
    let log = match &s.log {
        None => None,
        Some(p) => {
            let log =
                CuriousLog::read(open(p)?, filter).with_context(|| format!("{}", p.display()))?;
            if log.dropped() > 0 {
                eprintln!(
                    "{}: the relay dropped {} records (its writer fell behind); the scores miss them",
                    p.display(),
                    log.dropped()
                );
            }
            Some(log)
        }
    };
    let wire = match &s.observer {
        None => None,
        Some(p) => Some(WireLog::read(open(p)?).with_context(|| format!("{}", p.display()))?),
    };
    let mut options = Options::default();
    options.permutations = s.permutations.max(1);
    options.level = s.level;
    options.window = s.window.max(1);
    options.lag = s.lag.max(1);
    options.seed = s.seed;
    options.relay = relay;
    let report = analyse(log.as_ref(), &truth, wire.as_ref(), &options);
    if s.json {
        println!("{}", report.json()?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

fn synth(s: &Synth) -> anyhow::Result<()> {
    let mut spec = match s.world {
        WorldKind::Leaky => World::leaky(),
        WorldKind::Private => World::private(),
        WorldKind::Chatty => World::chatty(),
    };
    if let Some(seed) = s.seed {
        spec.seed = seed;
    }
    let world = World::generate(&spec);
    std::fs::create_dir_all(&s.out)
        .with_context(|| format!("cannot create {}", s.out.display()))?;
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let p = s.out.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        println!("{}", p.display());
        Ok(())
    };
    for (name, bytes) in &world.logs {
        write(&format!("{name}.jsonl"), bytes)?;
    }
    write("truth.jsonl", &world.truth)?;
    write("observer.txt", &world.wire)?;
    Ok(())
}
