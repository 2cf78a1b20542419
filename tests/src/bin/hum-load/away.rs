//! `hum-load away`: a day's catch-up, measured. One user leaves; its contacts write to it
//! in several of the epochs it misses (a day of hour-long epochs, scaled down to short
//! epochs); it comes back and the run times the reconnect to the last message, over
//! real relays (one entry relay, two mailbox relays, the user homed at the second, its
//! contacts at the first).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use hum_relay::BucketCount;
use hum_relay::test_client::load::procs::{Layout, RelayOptions, Relays};
use hum_relay::test_client::load::{AwaySpec, away};

/// A day away, scaled.
#[derive(Debug, clap::Args)]
pub(crate) struct Cli {
    /// Tick length in milliseconds.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// Ticks per epoch (the relays' setting; 60: six seconds at 100 ms).
    #[arg(long, default_value_t = 60)]
    epoch_ticks: u32,
    /// Epoch changes the user misses (24: a day of hour-long epochs).
    #[arg(long, default_value_t = 24)]
    epochs_away: u32,
    /// Contacts writing to it.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// Epochs, spread over the absence, in which it gets messages.
    #[arg(long, default_value_t = 8)]
    epochs_with_mail: u32,
    /// Messages in each of those epochs.
    #[arg(long, default_value_t = 2)]
    per_epoch: usize,
    /// The returning client's mean delay before each epoch's catch-up, in seconds (the
    /// design's: 20).
    #[arg(long, default_value_t = 20.0)]
    catch_up_delay_secs: f64,
    /// Draw those delays exponentially (the design's first choice) rather than uniformly
    /// up to twice the mean (the client's).
    #[arg(long)]
    catch_up_exponential: bool,
    /// Longest wait for the last message, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Seed of who writes when.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder for the relays' state (made if needed).
    #[arg(long)]
    out: PathBuf,
    /// The hum-relay binary (default: beside this one).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
}

pub(crate) async fn main(cli: Cli) -> anyhow::Result<()> {
    let tick = Duration::from_millis(cli.tick_ms.max(1));
    let relay_bin = match cli.relay_bin.clone() {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("no folder for this binary")?
            .join("hum-relay"),
    };
    std::fs::create_dir_all(&cli.out)?;
    let options = RelayOptions {
        bin: relay_bin,
        dir: cli.out.clone(),
        tick,
        buckets: BucketCount::Auto,
        epoch_ticks: cli.epoch_ticks,
        capacity: 64,
        max_clients: 256,
        max_lag: 50,
        curious: false,
        stats_every: Duration::ZERO,
    };
    let relays = Relays::start(Layout::Mesh, &options).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spec = AwaySpec {
        tick,
        epoch_ticks: cli.epoch_ticks,
        epochs_away: cli.epochs_away,
        senders: cli.senders,
        epochs_with_mail: cli.epochs_with_mail,
        per_epoch: cli.per_epoch,
        catch_up_delay: Duration::from_secs_f64(cli.catch_up_delay_secs.max(0.0)),
        catch_up_exponential: cli.catch_up_exponential,
        timeout: Duration::from_secs(cli.timeout_secs),
        seed: cli.seed,
    };
    let result = away(&spec, &relays.topology).await;
    relays.stop().await;
    let report = result?;
    println!(
        "hum-load away: tick {} ms, epochs of {} ticks, catch-up delay mean {} s ({}), seed {}",
        cli.tick_ms,
        cli.epoch_ticks,
        cli.catch_up_delay_secs,
        if cli.catch_up_exponential {
            "exponential"
        } else {
            "uniform up to twice the mean"
        },
        cli.seed
    );
    print!("{report}");
    if let Some(d) = report.to_last {
        println!(
            "| target: a day's backlog within a minute | {} |",
            if d <= Duration::from_secs(60) {
                "met"
            } else {
                "not met"
            }
        );
    }
    Ok(())
}
