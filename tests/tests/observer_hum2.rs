//! What a network observer sees of hum/2, idle and chatty: two clients entering at two
//! relays of a mesh and homed at the other one, each connection of each client and the
//! relays' link recorded. Whether they talk or not, each client holds one connection,
//! opened before the phases; every record after setup has one size; the link's records
//! keep their sizes; and the timing of the two phases cannot be told apart by a
//! two-sample Kolmogorov–Smirnov test (α = 0.001) nor by a minimum-delay test (the low
//! end of the answer delays, by permutation, α = 0.001).
//!
//! The clients run with the hum/2 link on (`EngineOptions::route_link`), which carries
//! their texts, receipts and invite answers; until the engine's switch to hum/2 is
//! finished they also keep hum/1's link to their home relay, outside what is observed
//! here (tests/tests/observer.rs observes hum/1's).
//!
//! `HUM_OBSERVE_CELLS` sets the cells per phase (default 1,500: 15 s a phase at the 10 ms
//! tick); `just observe` runs 10,000 and prints the statistics.

use std::time::Duration;

use anyhow::{Result, ensure};
use hum::api::{Command, Event};
use hum_relay::Role;
use hum_tests::harness::{Peer, TempDir, befriend, relay_config, relay_on_own_thread_with};
use hum_tests::mesh::Mesh;
use hum_tests::observer::{
    Direction, Observer, Record, gaps, ks_critical, ks_statistic, min_delay_p, quantile,
    timing_samples,
};

const TICK: Duration = Duration::from_millis(10);
const ALPHA: f64 = 0.001;
const DEFAULT_CELLS: u32 = 1_500;

fn cells_per_phase() -> u32 {
    std::env::var("HUM_OBSERVE_CELLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CELLS)
        .max(300)
}

fn sizes(records: &[&Record]) -> Vec<usize> {
    let mut s: Vec<usize> = records.iter().map(|r| r.len).collect();
    s.sort_unstable();
    s.dedup();
    s
}

// Ignored in the suite. The link writes its cell before it looks at the down cell, at
// the read plus its random wait, and the engine thread runs at nice 10 below it once the
// link started (tests/tests/priority.rs). With every client thread on one core with the
// busy engines, at 1,500 cells a phase: before the engine ran lower, the answer delays
// came out slower when chatty (p50 1.81 ms idle against 2.00 ms, KS D 0.112 and 0.110
// against a critical 0.071; in a side-by-side control run without it D 0.061 and 0.047,
// p99 4.8 against 6.1 ms); with it, in two runs, D 0.029 and 0.029, then 0.024 and
// 0.046 (p50 1.50 against 1.52 ms), and every client comparison passes. What failed in
// the second run is the relays' link (gaps D 0.036 and 0.046 against 0.033; 0.030 and
// 0.029 in the first): the relays' own timing under the chatty phase's items, which no
// client work reaches. `just observe` runs it (`--ignored`).
#[test]
#[ignore = "the relays' link gaps differ in some runs; see above"]
fn idle_and_chatty_look_the_same_on_the_wire() -> Result<()> {
    // The relays and the observers stand for other machines: they get the last core, the
    // clients (and every thread they start) the first.
    hum_tests::harness::pin_to_core(0, false);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(observe())
}

async fn observe() -> Result<()> {
    let cells = cells_per_phase();
    let phase = TICK * cells;
    let dir = TempDir::new("observer")?;
    let mut mesh = Mesh::new("observer", 2).await?;
    // The link between the relays passes an observer, whichever of them dials.
    let link_to_b = Observer::start_on_own_thread(mesh.addrs[1].host_port().parse()?)?;
    let link_to_a = Observer::start_on_own_thread(mesh.addrs[0].host_port().parse()?)?;
    mesh.route_via(0, 1, link_to_b.addr);
    mesh.route_via(1, 0, link_to_a.addr);
    let base = relay_config(TICK);
    let cap = 8;
    let config_a = mesh.config(0, Role::Both, &[(1, Role::Both, cap)], &base);
    let config_b = mesh.config(1, Role::Both, &[(0, Role::Both, cap)], &base);
    let (_relay_a, a) = relay_on_own_thread_with(config_a, Some(mesh.std_listener(0).await?))?;
    let (_relay_b, b) = relay_on_own_thread_with(config_b, Some(mesh.std_listener(1).await?))?;
    // Each client enters through an observer of its own.
    let at_a = Observer::start_on_own_thread(a.host_port().parse()?)?;
    let at_b = Observer::start_on_own_thread(b.host_port().parse()?)?;
    let mut entry_a = a.clone();
    entry_a.port = at_a.addr.port();
    let mut entry_b = b.clone();
    entry_b.port = at_b.addr.port();
    // Alice enters at A and is homed at B; Bob the other way round.
    let options = hum::engine::EngineOptions {
        route_link: true,
        receipt_delay: Duration::from_millis(300),
        ..Default::default()
    };
    let mut alice = Peer::create_mesh(dir.path(), "alice", &entry_a, &b, options)?;
    let mut bob = Peer::create_mesh(dir.path(), "bob", &entry_b, &a, options)?;
    let ((_, alice_room), (_, bob_room)) = befriend(&mut alice, &mut bob).await?;
    tokio::time::sleep(TICK * 50).await;

    // Idle phase.
    let idle_from = at_a.now();
    tokio::time::sleep(phase).await;
    let idle_to = at_a.now();

    // Chatty phase: both talk as fast as they type, long messages among short ones,
    // while Alice's engine is kept busy reading her history back.
    let chatty_from = idle_to;
    let until = tokio::time::Instant::now() + phase;
    let (mut said_a, mut said_b, mut i) = (0u32, 0u32, 0usize);
    while tokio::time::Instant::now() < until {
        if i % 2 == 0 {
            alice
                .say(
                    alice_room,
                    format!("alice says {i} {}", "x".repeat(i * 37 % 700)),
                )
                .await?;
            said_a += 1;
        } else {
            bob.say(bob_room, format!("bob answers {i}")).await?;
            said_b += 1;
        }
        for _ in 0..5 {
            alice
                .send(Command::LoadHistory {
                    room: alice_room,
                    before: None,
                    limit: 200,
                })
                .await?;
        }
        i += 1;
        tokio::time::sleep(TICK * 15).await;
    }
    let chatty_to = at_a.now();
    // The chatty phase carried messages both ways.
    let mut got_a = 0;
    while got_a < said_b.min(3) {
        alice
            .wait(Duration::from_secs(30), "a message from bob", |e| match e {
                Event::Message(m) if !m.from_me => Some(()),
                _ => None,
            })
            .await?;
        got_a += 1;
    }
    let mut got_b = 0;
    while got_b < said_a.min(3) {
        bob.wait(
            Duration::from_secs(30),
            "a message from alice",
            |e| match e {
                Event::Message(m) if !m.from_me => Some(()),
                _ => None,
            },
        )
        .await?;
        got_b += 1;
    }

    let mut failures = Vec::new();
    for (who, obs) in [("alice", &at_a), ("bob", &at_b)] {
        // One connection, opened before the phases, for the whole test.
        let opened = obs.opened();
        ensure!(
            opened.len() == 1 && opened[0] < idle_from,
            "{who}: connections opened at {opened:?} (phases from {idle_from:.2} s)"
        );
        let records = obs.records();
        ensure!(
            records.iter().all(|r| r.conn == 0),
            "{who}: records on a second connection"
        );
        // After setup (the TLS handshake and the hello), every record is a data record
        // of one size, each way, to the end: from the first cell on, before, during and
        // after the phases.
        ensure!(
            records
                .iter()
                .all(|r| r.content_type == 23 || r.at < idle_from),
            "{who}: non-data records after setup"
        );
        let cell_len = records
            .iter()
            .filter(|r| r.at >= idle_from && r.at < idle_to)
            .map(|r| r.len)
            .next()
            .unwrap_or(0);
        for dir in [Direction::Up, Direction::Down] {
            let this_way: Vec<&Record> = records.iter().filter(|r| r.direction == dir).collect();
            let first = this_way.iter().position(|r| r.len == cell_len);
            let after: Vec<&Record> = first.map_or(Vec::new(), |i| this_way[i..].to_vec());
            ensure!(
                after.len() > (cells as usize) * 2,
                "{who} {dir:?}: {} cells in all",
                after.len()
            );
            let odd: Vec<&&Record> = after.iter().filter(|r| r.len != cell_len).take(5).collect();
            ensure!(
                odd.is_empty(),
                "{who} {dir:?}: records of other sizes after the first cell: {odd:?}"
            );
        }
        // After the TLS handshake and the hello, every record is one cell, both ways.
        let cells_seen: Vec<&Record> = records
            .iter()
            .filter(|r| r.at >= idle_from && r.at < chatty_to)
            .collect();
        ensure!(
            cells_seen.iter().all(|r| r.content_type == 23),
            "{who}: non-data records during the phases"
        );
        let s = sizes(&cells_seen);
        ensure!(s.len() == 1, "{who}: record sizes {s:?}");
        for (what, idle, chatty) in
            timing_samples(&records, (idle_from, idle_to), (chatty_from, chatty_to))
        {
            let need = (cells as usize) * 8 / 10;
            ensure!(
                idle.len() >= need && chatty.len() >= need,
                "{who} {what}: too few samples ({} and {}, want {need})",
                idle.len(),
                chatty.len()
            );
            let d = ks_statistic(&idle, &chatty);
            let crit = ks_critical(ALPHA, idle.len(), chatty.len());
            let p_min = min_delay_p(&idle, &chatty, 2_000, 11);
            let us = |v: &[f64], p: f64| quantile(v, p) * 1e6;
            eprintln!(
                "{who} {what}: idle n={} p1/p50/p99={:.0}/{:.0}/{:.0}us chatty n={} p1/p50/p99={:.0}/{:.0}/{:.0}us KS D={d:.4} critical={crit:.4} min-delay p={p_min:.4}",
                idle.len(),
                us(&idle, 0.01),
                us(&idle, 0.5),
                us(&idle, 0.99),
                chatty.len(),
                us(&chatty, 0.01),
                us(&chatty, 0.5),
                us(&chatty, 0.99),
            );
            if d >= crit {
                failures.push(format!(
                    "{who} {what}: KS tells the phases apart (D = {d:.4} >= {crit:.4})"
                ));
            }
            if p_min < ALPHA {
                failures.push(format!(
                    "{who} {what}: the minimum-delay test tells the phases apart (p = {p_min:.4})"
                ));
            }
        }
    }

    // The relays' link: one connection, and records of the same sizes idle and chatty
    // (its batches have a fixed size whatever the clients do).
    let link: Vec<Record> = [&link_to_a, &link_to_b]
        .iter()
        .flat_map(|o| o.records())
        .collect();
    let opened: usize = [&link_to_a, &link_to_b]
        .iter()
        .map(|o| o.opened().len())
        .sum();
    ensure!(opened == 1, "{opened} link connections");
    let link_opened: Vec<f64> = [&link_to_a, &link_to_b]
        .iter()
        .flat_map(|o| o.opened())
        .collect();
    ensure!(
        link_opened.iter().all(|&t| t < idle_from),
        "the link opened at {link_opened:?} (phases from {idle_from:.2} s)"
    );
    for dir in [Direction::Up, Direction::Down] {
        let phase_sizes = |from: f64, to: f64| {
            let r: Vec<&Record> = link
                .iter()
                .filter(|r| r.direction == dir && r.at >= from && r.at < to)
                .collect();
            (r.len(), sizes(&r))
        };
        let (n_idle, idle) = phase_sizes(idle_from, idle_to);
        let (n_chatty, chatty) = phase_sizes(chatty_from, chatty_to);
        eprintln!(
            "link {dir:?}: idle {n_idle} records of sizes {idle:?}, chatty {n_chatty} of {chatty:?}"
        );
        ensure!(n_idle > 0 && n_chatty > 0, "the link carried nothing");
        if idle != chatty {
            failures.push(format!(
                "link {dir:?}: record sizes {idle:?} idle, {chatty:?} chatty"
            ));
        }
        let (g_idle, g_chatty) = (
            gaps(&link, dir, idle_from, idle_to),
            gaps(&link, dir, chatty_from, chatty_to),
        );
        let d = ks_statistic(&g_idle, &g_chatty);
        let crit = ks_critical(ALPHA, g_idle.len(), g_chatty.len());
        let us = |v: &[f64], p: f64| quantile(v, p) * 1e6;
        eprintln!(
            "link {dir:?} gaps: idle n={} p1/p10/p50/p90/p99={:.0}/{:.0}/{:.0}/{:.0}/{:.0}us chatty n={} {:.0}/{:.0}/{:.0}/{:.0}/{:.0}us KS D={d:.4} critical={crit:.4}",
            g_idle.len(),
            us(&g_idle, 0.01),
            us(&g_idle, 0.1),
            us(&g_idle, 0.5),
            us(&g_idle, 0.9),
            us(&g_idle, 0.99),
            g_chatty.len(),
            us(&g_chatty, 0.01),
            us(&g_chatty, 0.1),
            us(&g_chatty, 0.5),
            us(&g_chatty, 0.9),
            us(&g_chatty, 0.99),
        );
        if d >= crit {
            failures.push(format!(
                "link {dir:?}: KS tells the phases apart (D = {d:.4} >= {crit:.4})"
            ));
        }
    }
    ensure!(failures.is_empty(), "{failures:#?}");
    alice.quit().await?;
    bob.quit().await?;
    Ok(())
}
