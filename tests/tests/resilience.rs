//! Resilience: a relay restarted with messages in flight loses none of them; a full
//! bucket pushes back and the sender keeps what did not fit; what a relay let expire is
//! sent again.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hum::api::{Delivery, Event};
use hum_tests::harness::{Peer, TempDir, befriend, options, relay_config};

/// The tick: on hum/2 one deposit of a contact's is in flight at a time, and each up cell
/// must reach the entry relay within half a tick, which a busy machine misses at 3 ms.
const TICK: Duration = Duration::from_millis(20);

/// How many messages the restart test sends: `HUM_RESTART_MESSAGES`, or 200 (`just soak`
/// sends a thousand).
fn restart_messages() -> usize {
    std::env::var("HUM_RESTART_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_restart_with_messages_in_flight() -> Result<()> {
    let dir = TempDir::new("relay-restart")?;
    let state = dir.path().join("relay-state");
    let mut config = relay_config(TICK);
    config.state_dir = Some(state.clone());
    let relay = hum_relay::Relay::bind(config).await?;
    let port = relay.local_addr()?.port();
    let relay = relay.spawn();
    let addr = relay.address().to_string();
    let mut alice = Peer::create(dir.path(), "alice", &addr)?;
    let mut bob = Peer::create(dir.path(), "bob", &addr)?;
    let ((_, alice_room), _) = befriend(&mut alice, &mut bob).await?;

    let n = restart_messages();
    for i in 0..n {
        alice.say(alice_room, format!("m{i:04}")).await?;
    }
    let mut got: Vec<String> = Vec::with_capacity(n);
    let mut take = |e: &Event| match e {
        Event::Message(m) if !m.from_me => Some(m.text.clone()),
        _ => None,
    };
    while got.len() < n / 10 {
        got.push(
            bob.wait(Duration::from_secs(60), "early messages", &mut take)
                .await?,
        );
    }
    // Kill the relay mid-conversation; everything it held is gone.
    relay.shutdown().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut config = relay_config(TICK);
    config.state_dir = Some(state);
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let relay = hum_relay::Relay::bind(config).await?.spawn();
    ensure!(
        relay.address().to_string() == addr,
        "the restarted relay has another address"
    );

    while got.len() < n {
        got.push(
            bob.wait(
                Duration::from_secs(120),
                "the rest after the restart",
                &mut take,
            )
            .await?,
        );
    }
    let expected: Vec<String> = (0..n).map(|i| format!("m{i:04}")).collect();
    ensure!(got == expected, "messages lost, duplicated or reordered");
    // And nothing more arrives: duplicates were dropped.
    let extra = bob
        .wait(Duration::from_secs(1), "no duplicates", &mut take)
        .await;
    ensure!(extra.is_err(), "a duplicate arrived: {extra:?}");
    alice.quit().await?;
    bob.quit().await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_pushes_back_and_the_sender_retries() -> Result<()> {
    let dir = TempDir::new("full-mailbox")?;
    let mut config = relay_config(TICK);
    // Bob's bucket holds three items; a bucket per epoch, so Bob is alone in his.
    config.bucket_quota = 3;
    config.buckets = hum_relay::BucketCount::Fixed(1);
    let relay = hum_relay::Relay::bind(config).await?.spawn();
    let addr = relay.address().to_string();
    let mut alice = Peer::create(dir.path(), "alice", &addr)?;
    let mut bob = Peer::create(dir.path(), "bob", &addr)?;
    let ((_, alice_room), _) = befriend(&mut alice, &mut bob).await?;
    // Bob goes away; Alice writes more than his bucket holds.
    bob.quit().await?;
    const N: usize = 8;
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(alice.say_queued(alice_room, format!("f{i}")).await?);
    }
    // The relay refuses what does not fit; Alice keeps it queued and retries.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while relay.stats().route.full == 0 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the relay never pushed back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last = *ids.last().context("no message")?;
    let shown = alice.history(alice_room, 20).await?;
    let state = shown.iter().find(|m| m.id == last).and_then(|m| m.delivery);
    ensure!(
        state == Some(Delivery::Queued),
        "the last text is {state:?} while the bucket is full"
    );
    // Bob comes back: everything arrives, once.
    let mut bob = Peer::reopen(dir.path(), "bob", &addr)?;
    let mut got = Vec::new();
    while got.len() < N {
        got.push(
            bob.wait(Duration::from_secs(60), "the messages", |e| match e {
                Event::Message(m) if !m.from_me => Some(m.text.clone()),
                _ => None,
            })
            .await?,
        );
    }
    // Each once, in order: what waited out the full bucket and comes live while Bob's
    // catch-up is owed or under way waits for that catch-up, which brings what was
    // stored before it.
    let expected: Vec<String> = (0..N).map(|i| format!("f{i}")).collect();
    ensure!(got == expected, "got {got:?}");
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_relay_let_expire_is_sent_again() -> Result<()> {
    let dir = TempDir::new("expired")?;
    let mut config = relay_config(TICK);
    config.ttl = Duration::from_secs(1);
    let relay = hum_relay::Relay::bind(config).await?.spawn();
    let addr = relay.address().to_string();
    let options = hum::engine::EngineOptions {
        resend_after: Duration::from_secs(2),
        ..options()
    };
    let mut alice = Peer::create_with(dir.path(), "alice", &addr, options)?;
    let mut bob = Peer::create(dir.path(), "bob", &addr)?;
    let ((_, alice_room), _) = befriend(&mut alice, &mut bob).await?;
    // Bob is away longer than the relay keeps anything.
    bob.quit().await?;
    let id = alice.say_queued(alice_room, "still there?").await?;
    alice.delivery(id, Delivery::Sent).await?;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    // The relay has dropped it; Alice, with no receipt, deposits it again.
    let mut bob = Peer::reopen(dir.path(), "bob", &addr)?;
    ensure!(bob.next_text("alice").await? == "still there?");
    alice.delivery(id, Delivery::Delivered).await?;
    relay.shutdown().await;
    Ok(())
}
