//! What a network observer sees between one client and the relay over hum/1's link (the
//! hum/2 link off; observer_hum2.rs watches hum/2), idle and chatty: every
//! TLS record after connection setup has the same size, and the timing of the two phases
//! is statistically indistinguishable (two-sample Kolmogorov–Smirnov test, α = 0.001).

use std::time::Duration;

use anyhow::{Result, ensure};
use hum::api::{Command, Event};
use hum_tests::harness::{Peer, TempDir, befriend, relay_config};
use hum_tests::observer::{Direction, Observer, Record, ks_critical, ks_statistic, timing_samples};

const TICK: Duration = Duration::from_millis(10);
const PHASE: Duration = Duration::from_secs(3);
const ALPHA: f64 = 0.001;

#[test]
fn idle_and_chatty_look_the_same_on_the_wire() -> Result<()> {
    // The relay and the observer stand for other machines: they get the last core, the
    // clients (and every thread they start) the first.
    hum_tests::harness::pin_to_core(0, false);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(observe())
}

async fn observe() -> Result<()> {
    let dir = TempDir::new("observer")?;
    // The relay and the observer stand for other machines: each gets a runtime of its own,
    // so the test's clients do not slow their clocks down.
    let (relay, direct) = hum_tests::harness::relay_on_own_thread(relay_config(TICK))?;
    let observer = Observer::start_on_own_thread(direct.host_port().parse()?)?;
    let mut watched = direct.clone();
    watched.port = observer.addr.port();
    // Alice talks through the observer; Bob connects directly. Over hum/1's one link each
    // (the hum/2 link off): what this test measures is that link; observer_hum2.rs
    // watches the hum/2 link and the relays' links.
    let hum1 = hum::engine::EngineOptions {
        route_link: false,
        ..hum_tests::harness::options()
    };
    let mut alice = Peer::create_with(dir.path(), "alice", &watched.to_string(), hum1)?;
    let mut bob = Peer::create_with(dir.path(), "bob", &direct.to_string(), hum1)?;
    let ((_, alice_room), (_, bob_room)) = befriend(&mut alice, &mut bob).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Idle phase.
    let idle_from = observer.now();
    tokio::time::sleep(PHASE).await;
    let idle_to = observer.now();

    // Chatty phase: both talk as fast as they type.
    let chatty_from = idle_to;
    let until = tokio::time::Instant::now() + PHASE;
    let mut i = 0;
    while tokio::time::Instant::now() < until {
        // A lively chat, scaled with the tick: a message every 15 ticks, both ways.
        if i % 2 == 0 {
            alice
                .send(Command::Send {
                    room: alice_room,
                    text: format!("alice says {i} {}", "x".repeat(i * 37 % 700)),
                })
                .await?;
        } else {
            bob.send(Command::Send {
                room: bob_room,
                text: format!("bob answers {i}"),
            })
            .await?;
        }
        i += 1;
        tokio::time::sleep(TICK * 15).await;
    }
    let chatty_to = observer.now();
    // The chatty phase really carried messages to and from alice.
    let got = alice
        .wait(Duration::from_secs(20), "a message from bob", |e| match e {
            Event::Message(m) if !m.from_me => Some(()),
            _ => None,
        })
        .await;
    ensure!(got.is_ok(), "nothing reached alice in the chatty phase");
    bob.wait(
        Duration::from_secs(20),
        "a message from alice",
        |e| match e {
            Event::Message(m) if !m.from_me => Some(()),
            _ => None,
        },
    )
    .await?;

    // Alice's link is the first connection through the proxy (Bob's link to Alice's relay
    // address passes through it too, and is left out).
    let records: Vec<Record> = observer
        .records()
        .into_iter()
        .filter(|r| r.conn == 0)
        .collect();
    // Connection setup: the TLS handshake and the relay's 32-byte hello. After that, every
    // record in both directions is one cell: the same size, idle or chatty.
    let app: Vec<&Record> = records.iter().filter(|r| r.content_type == 23).collect();
    let hello = app
        .iter()
        .position(|r| r.direction == Direction::Down && r.len == 5 + 32 + 17)
        .unwrap_or(0);
    let cells: Vec<&&Record> = app[hello + 1..]
        .iter()
        .filter(|r| r.at < chatty_to)
        .collect();
    ensure!(cells.len() > 400, "too few records: {}", cells.len());
    let size = cells[0].len;
    for r in cells.iter().filter(|r| r.len != size).take(20) {
        eprintln!("odd record: {r:?}");
    }
    ensure!(
        cells.iter().all(|r| r.len == size),
        "record sizes differ: {:?}",
        {
            let mut s: Vec<usize> = cells.iter().map(|r| r.len).collect();
            s.sort_unstable();
            s.dedup();
            s
        }
    );
    ensure!(
        records
            .iter()
            .filter(|r| r.content_type != 23 && r.at >= idle_from)
            .count()
            == 0,
        "non-data records after setup"
    );

    // Timing: the gaps between upstream records, and the client's answer delays.
    let mut failures = Vec::new();
    for (what, idle, chatty) in
        timing_samples(&records, (idle_from, idle_to), (chatty_from, chatty_to))
    {
        let d = ks_statistic(&idle, &chatty);
        let crit = ks_critical(ALPHA, idle.len(), chatty.len());
        let q = |v: &[f64], p: f64| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v.get(((v.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(0.0)
                * 1e6
        };
        eprintln!(
            "{what}: idle n={} p10/p50/p90={:.0}/{:.0}/{:.0}us chatty n={} p10/p50/p90={:.0}/{:.0}/{:.0}us D={d:.3} critical={crit:.3}",
            idle.len(),
            q(&idle, 0.1),
            q(&idle, 0.5),
            q(&idle, 0.9),
            chatty.len(),
            q(&chatty, 0.1),
            q(&chatty, 0.5),
            q(&chatty, 0.9)
        );
        ensure!(
            idle.len() > 150 && chatty.len() > 150,
            "{what}: too few samples"
        );
        if d >= crit {
            failures.push(format!(
                "{what}: the phases differ (D = {d:.3} >= {crit:.3} at alpha {ALPHA})"
            ));
        }
        ensure!(
            true,
            "{what}: the phases differ (D = {d:.3} >= {crit:.3} at alpha {ALPHA})"
        );
    }
    ensure!(failures.is_empty(), "{failures:?}");
    drop(relay);
    Ok(())
}
