//! The engine thread runs below its hum/2 link: once the link's thread has started, the
//! engine's drops to nice 10 and the link's keeps the default, so a busy engine does not
//! delay the moment the link writes its answer (tests/tests/observer_hum2.rs measures
//! that moment). In a test binary of its own: every thread of this process is one of
//! this test's.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hum_tests::harness::{Peer, TempDir, relay_config};

/// The nice value and name of every thread of this process (`/proc/self/task`).
fn threads() -> Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let stat = std::fs::read_to_string(task?.path().join("stat"))?;
        // pid (comm) state ...: the name is between the first '(' and the last ')'.
        let open = stat.find('(').context("no name in stat")?;
        let close = stat.rfind(')').context("no name in stat")?;
        let name = stat[open + 1..close].to_owned();
        // Fields after the name, counted from field 3 (state); nice is field 19.
        let nice: i64 = stat[close + 2..]
            .split(' ')
            .nth(19 - 3)
            .context("short stat")?
            .parse()?;
        out.push((name, nice));
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_runs_below_its_hum2_link() -> Result<()> {
    let dir = TempDir::new("priority")?;
    let relay = hum_relay::Relay::bind(relay_config(Duration::from_millis(20)))
        .await?
        .spawn();
    let options = hum::engine::EngineOptions {
        route_link: true,
        ..hum_tests::harness::options()
    };
    let alice = Peer::create_with(dir.path(), "alice", &relay.address().to_string(), options)?;
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = threads()?;
        if seen.iter().any(|(n, v)| n == "hum-engine" && *v >= 10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let engines: Vec<i64> = seen
        .iter()
        .filter(|(n, _)| n == "hum-engine")
        .map(|(_, v)| *v)
        .collect();
    let links: Vec<i64> = seen
        .iter()
        .filter(|(n, _)| n == "hum-route")
        .map(|(_, v)| *v)
        .collect();
    ensure!(engines == [10], "engine threads' nice values: {engines:?}");
    ensure!(
        links == [0],
        "the hum/2 link's thread is not at the default priority: {links:?}"
    );
    alice.quit().await?;
    relay.shutdown().await;
    Ok(())
}
