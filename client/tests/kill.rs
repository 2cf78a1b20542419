//! The real `hum --plain` binary killed mid-send and restarted: every message it had
//! accepted is delivered exactly once, in order.

use std::time::Duration;

use anyhow::{Result, ensure};

#[allow(dead_code)]
#[path = "support/plain_client.rs"]
mod plain_client;
use plain_client::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_send_and_restarted_delivers_everything_once_in_order() -> Result<()> {
    let home = std::env::temp_dir().join(format!("hum-kill-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let mut config = hum_relay::Config::ephemeral(Duration::from_millis(20));
    config.max_lag = 2_000;
    let relay = hum_relay::Relay::bind(config).await?.spawn();
    let addr = relay.address().to_string();

    let mut bob = Client::spawn(&home, "bob", &addr)?;
    let mut alice = Client::spawn(&home, "alice", &addr)?;
    bob.say("/invite").await?;
    let code = bob
        .expect(Duration::from_secs(20), "an invite", |f| {
            (f[0] == "invite").then(|| f[1].to_owned())
        })
        .await?;
    alice.say(&format!("/accept {code} bob")).await?;
    alice
        .expect(Duration::from_secs(20), "bob as a contact", |f| {
            (f[0] == "contact" && f[2] == "bob").then_some(())
        })
        .await?;
    bob.expect(Duration::from_secs(20), "alice as a contact", |f| {
        (f[0] == "contact" && f[2] == "alice").then_some(())
    })
    .await?;

    const N: usize = 1000;
    for i in 0..N {
        alice.say(&format!("/msg bob k{i:04}")).await?;
    }
    // Wait until alice has committed all of them to her outbox, then kill her mid-send.
    let mut queued = 0;
    while queued < N {
        alice
            .expect(Duration::from_secs(60), "queued messages", |f| {
                (f[0] == "message" && f[5] == "out").then_some(())
            })
            .await?;
        queued += 1;
    }
    let mut got: Vec<String> = Vec::new();
    let incoming = |f: &[&str]| (f[0] == "message" && f[5] == "in").then(|| f[7].to_owned());
    got.push(
        bob.expect(Duration::from_secs(60), "a first message", incoming)
            .await?,
    );
    // Bob has one message and alice sends one envelope at a time: she is mid-send.
    alice.child.start_kill()?;
    alice.child.wait().await?;

    let mut alice = Client::spawn(&home, "alice", &addr)?;
    while got.len() < N {
        got.push(
            bob.expect(
                Duration::from_secs(120),
                "the rest after alice's restart",
                incoming,
            )
            .await?,
        );
    }
    let expected: Vec<String> = (0..N).map(|i| format!("k{i:04}")).collect();
    ensure!(
        got == expected,
        "lost, duplicated or reordered: first difference at {:?}",
        got.iter().zip(&expected).position(|(a, b)| a != b)
    );
    let extra = bob
        .expect(Duration::from_secs(2), "no duplicate", incoming)
        .await;
    ensure!(extra.is_err(), "a duplicate arrived: {extra:?}");
    alice.say("/quit").await?;
    bob.say("/quit").await?;
    let _ = tokio::time::timeout(Duration::from_secs(10), alice.child.wait()).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), bob.child.wait()).await;
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(&home);
    Ok(())
}
