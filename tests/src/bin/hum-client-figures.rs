//! Client figures for the notes: memory and time to open a room with a large history, what
//! a store checkpoint costs after a key replacement, and the CPU and memory of an idle
//! `hum --plain` on a 10 ticks/s beat. Prints JSON lines.
//!
//! `cargo build --release -p hum -p hum-tests && target/release/hum-client-figures`

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hum::api::{Command, Event};
use hum::engine::ProfilePaths;
use hum_shared::crypto::{KdfParams, KdfPolicy};
use hum_tests::harness::TempDir;

fn rss_kib(pid: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

fn cpu_ticks(pid: &str) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).context("bad stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
    Ok(f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
}

async fn history(n: usize) -> Result<()> {
    let dir = TempDir::new("figures-history")?;
    let paths = ProfilePaths::in_dir("h", dir.path().join("h"));
    let mut profile = hum::engine::create_with(&paths, "you", b"pass", KdfParams::INSECURE_FAST)?;
    hum::engine::seed_history(&mut profile, n)?;
    drop(profile);
    let relay = hum_relay::Relay::bind(hum_relay::Config::ephemeral(Duration::from_millis(100)))
        .await?
        .spawn();
    let rss_before = rss_kib("self")?;
    let start = Instant::now();
    let profile = hum::engine::unlock_with(&paths, b"pass", KdfPolicy::InsecureForTests)?;
    let engine = hum::engine::start(
        profile,
        hum::engine::Relays::single(relay.address().clone()),
    )?;
    let (commands, mut events, join) = engine.split();
    let room = loop {
        match events.recv().await {
            Some(Event::Ready { rooms, .. }) => {
                break rooms.first().map(|r| r.id).context("no room")?;
            }
            Some(_) => {}
            None => bail!("engine stopped"),
        }
    };
    let ready = start.elapsed();
    commands
        .send(Command::LoadHistory {
            room,
            before: None,
            limit: 200,
        })
        .await?;
    let page = loop {
        match events.recv().await {
            Some(Event::History { messages, .. }) => break messages.len(),
            Some(_) => {}
            None => bail!("engine stopped"),
        }
    };
    let opened = start.elapsed();
    let rss_after = rss_kib("self")?;
    println!(
        "{{\"figure\":\"open_room_history\",\"messages\":{n},\"page\":{page},\"ready_ms\":{:.1},\"first_page_ms\":{:.1},\"rss_growth_kib\":{}}}",
        ready.as_secs_f64() * 1e3,
        opened.as_secs_f64() * 1e3,
        rss_after.saturating_sub(rss_before)
    );
    commands.send(Command::Quit).await?;
    join.join().await?;
    relay.shutdown().await;
    Ok(())
}

async fn idle(seconds: u64) -> Result<()> {
    let exe = std::env::current_exe()?;
    let hum = exe.parent().context("no dir")?.join("hum");
    if !hum.exists() {
        bail!(
            "{} not found: build it with cargo build --release -p hum",
            hum.display()
        );
    }
    let dir = TempDir::new("figures-idle")?;
    let relay = hum_relay::Relay::bind(hum_relay::Config::ephemeral(Duration::from_millis(100)))
        .await?
        .spawn();
    let mut child = tokio::process::Command::new(&hum)
        .args([
            "--plain",
            "--profile",
            "idle",
            "--relay",
            &relay.address().to_string(),
        ])
        // A release build makes the profile with the real passphrase KDF (a fraction of a
        // second, inside the settling time below).
        .env("HUM_HOME", dir.path())
        .env("HUM_PASSPHRASE", "pass")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("no pid")?.to_string();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hz = 100.0;
    let t0 = cpu_ticks(&pid)?;
    let w0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let used = (cpu_ticks(&pid)? - t0) as f64 / hz;
    let wall = w0.elapsed().as_secs_f64();
    println!(
        "{{\"figure\":\"idle_client\",\"tick_ms\":100,\"seconds\":{wall:.1},\"cpu_percent\":{:.2},\"cpu_us_per_tick\":{:.1},\"rss_kib\":{}}}",
        used / wall * 100.0,
        used / (wall * 10.0) * 1e6,
        rss_kib(&pid)?
    );
    child.kill().await?;
    relay.shutdown().await;
    Ok(())
}

/// What a checkpoint after a key replacement costs, against the commit itself.
fn key_replacement(n: u32) -> Result<()> {
    let dir = TempDir::new("figures-checkpoint")?;
    let paths = ProfilePaths::in_dir("c", dir.path().join("c"));
    let mut profile = hum::engine::create_with(&paths, "you", b"pass", KdfParams::INSECURE_FAST)?;
    let cost = hum::engine::time_key_replacement(&mut profile, n)?;
    println!(
        "{{\"figure\":\"key_replacement\",\"replacements\":{n},\"commit_us\":{:.0},\"checkpoint_us\":{:.0}}}",
        cost.commit.as_secs_f64() * 1e6,
        cost.checkpoint.as_secs_f64() * 1e6
    );
    Ok(())
}

/// `seed DIR N`: a profile `bench` (passphrase `pass`) in DIR with a room of N messages,
/// for the side-by-side comparison script.
fn seed(dir: &str, n: usize) -> Result<()> {
    let paths = ProfilePaths::in_dir("bench", std::path::Path::new(dir).join("bench"));
    let mut profile = hum::engine::create_with(&paths, "you", b"pass", KdfParams::INSECURE_FAST)?;
    hum::engine::seed_history(&mut profile, n)?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("seed") {
        let dir = args.get(2).context("seed DIR N")?;
        let n = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10_000);
        return seed(dir, n);
    }
    let n = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    history(n).await?;
    key_replacement(200)?;
    idle(20).await?;
    Ok(())
}
