//! Relay links as a user meets them: a wrong fingerprint says why, a relay that restarts
//! is rejoined within two seconds, and `/reconnect` does not wait out the backoff.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use hum::api::{Command, ErrorKind, Event, LinkState};
use hum_tests::harness::{Peer, TempDir, relay_config};

const TICK: Duration = Duration::from_millis(20);
const CAUSE: &str = "the relay's certificate does not match the fingerprint in its address";

fn link_state(e: &Event) -> Option<LinkState> {
    match e {
        Event::Link(l) => Some(l.state),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_fingerprint_is_shown_once_with_its_cause() -> Result<()> {
    let dir = TempDir::new("wrong-fingerprint")?;
    let relay = hum_relay::Relay::bind(relay_config(TICK)).await?.spawn();
    let mut wrong = relay.address().clone();
    wrong.fingerprint.0[0] ^= 1;
    let mut alice = Peer::create(dir.path(), "alice", &wrong.to_string())?;
    let (kind, shown) = alice.next_error(Duration::from_secs(20)).await?;
    ensure!(kind == ErrorKind::Link, "{kind:?}: {shown}");
    ensure!(
        shown == format!("{CAUSE} (relay {})", wrong.host_port()),
        "{shown}"
    );
    // Retries fail the same way; the cause is not repeated.
    let mut downs = 0;
    while downs < 4 {
        if let LinkState::Down { .. } = alice
            .wait(Duration::from_secs(20), "more attempts", link_state)
            .await?
        {
            downs += 1;
        }
    }
    ensure!(alice.errors().is_empty(), "{:?}", alice.errors());
    alice.quit().await?;
    relay.shutdown().await;
    Ok(())
}

/// A relay bound to `port` with its identity in `state`.
async fn relay_at(state: &std::path::Path, port: u16) -> Result<hum_relay::RelayHandle> {
    let mut config = relay_config(TICK);
    config.state_dir = Some(state.to_owned());
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    Ok(hum_relay::Relay::bind(config).await?.spawn())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_is_tried_again_every_two_seconds_at_most() -> Result<()> {
    let dir = TempDir::new("quick-retry")?;
    let state = dir.path().join("relay");
    let relay = relay_at(&state, 0).await?;
    let port = relay.address().port;
    let addr = relay.address().to_string();
    let mut alice = Peer::create(dir.path(), "alice", &addr)?;
    alice
        .wait(Duration::from_secs(20), "the link up", |e| {
            (link_state(e) == Some(LinkState::Up)).then_some(())
        })
        .await?;
    relay.shutdown().await;
    // Ten attempts refused in a row: without a lower cap the waits would have doubled
    // to 51 s by now.
    let mut waits = Vec::new();
    while waits.len() < 10 {
        if let LinkState::Down { retry_in_ms } = alice
            .wait(Duration::from_secs(20), "attempts", link_state)
            .await?
        {
            waits.push(retry_in_ms);
        }
    }
    ensure!(waits.iter().all(|w| *w <= 2_000), "waits: {waits:?}");
    ensure!(
        waits.iter().filter(|w| **w >= 1_000).count() >= 3,
        "waits: {waits:?}"
    );
    let relay = relay_at(&state, port).await?;
    alice
        .wait(Duration::from_secs(5), "the link up again", |e| {
            (link_state(e) == Some(LinkState::Up)).then_some(())
        })
        .await?;
    alice.quit().await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_does_not_wait_out_the_backoff() -> Result<()> {
    let dir = TempDir::new("reconnect")?;
    let state = dir.path().join("relay");
    let relay = relay_at(&state, 0).await?;
    let port = relay.address().port;
    let addr = relay.address().to_string();
    relay.shutdown().await;
    // Something that accepts and hangs up: not a quick refusal, so the waits grow.
    let hole = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let hole_task = tokio::spawn(async move {
        while let Ok((s, _)) = hole.accept().await {
            drop(s);
        }
    });
    let mut alice = Peer::create(dir.path(), "alice", &addr)?;
    let wait = alice
        .wait(
            Duration::from_secs(30),
            "a long wait",
            |e| match link_state(e) {
                Some(LinkState::Down { retry_in_ms }) if retry_in_ms >= 3_000 => Some(retry_in_ms),
                _ => None,
            },
        )
        .await?;
    hole_task.abort();
    let _ = hole_task.await;
    let relay = relay_at(&state, port).await?;
    let asked = tokio::time::Instant::now();
    alice.send(Command::Reconnect).await?;
    alice
        .wait(Duration::from_secs(5), "the notice", |e| match e {
            Event::Notice(n) if n.starts_with("reconnecting to 127.0.0.1:") => Some(()),
            _ => None,
        })
        .await?;
    alice
        .wait(Duration::from_secs(30), "the link up", |e| {
            (link_state(e) == Some(LinkState::Up)).then_some(())
        })
        .await?;
    let took = asked.elapsed();
    if took >= Duration::from_millis(wait) {
        bail!("up after {took:?}, no sooner than the {wait} ms wait");
    }
    // The hum/2 link was retried at once too.
    alice
        .wait(Duration::from_secs(30), "the hum/2 link up", |e| match e {
            Event::Route(r) if r.state == LinkState::Up => Some(()),
            _ => None,
        })
        .await?;
    let took = asked.elapsed();
    if took >= Duration::from_millis(wait) {
        bail!("the hum/2 link up after {took:?}, no sooner than the {wait} ms wait");
    }
    alice.send(Command::Reconnect).await?;
    alice
        .wait(Duration::from_secs(5), "the notice", |e| match e {
            Event::Notice(n) if n == "every relay link is up" => Some(()),
            _ => None,
        })
        .await?;
    alice.quit().await?;
    relay.shutdown().await;
    Ok(())
}
