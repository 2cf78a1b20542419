//! The real `hum --plain` binary killed mid-send and restarted: every message it had
//! accepted is delivered exactly once, in order.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

struct Client {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Client {
    fn spawn(home: &Path, profile: &str, relay: &str) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hum"))
            .args(["--plain", "--profile", profile, "--relay", relay])
            .env("HUM_HOME", home)
            .env("HUM_PASSPHRASE", "correct horse")
            .env("HUM_INSECURE_FAST_KDF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut r = BufReader::new(stdout).lines();
            while let Ok(Some(l)) = r.next_line().await {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            lines,
        })
    }

    async fn say(&mut self, line: &str) -> Result<()> {
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.write_all(b"\n").await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// The next line whose fields `f` accepts.
    async fn expect<T>(
        &mut self,
        limit: Duration,
        what: &str,
        mut f: impl FnMut(&[&str]) -> Option<T>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(l)) => {
                    let fields: Vec<&str> = l.split('\t').collect();
                    if fields.first() == Some(&"error") {
                        bail!("client error while waiting for {what}: {l}");
                    }
                    if let Some(t) = f(&fields) {
                        return Ok(t);
                    }
                }
                Ok(None) => bail!("the client exited while waiting for {what}"),
                Err(_) => bail!("timed out waiting for {what}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_send_and_restarted_delivers_everything_once_in_order() -> Result<()> {
    let home = std::env::temp_dir().join(format!("hum-kill-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let mut config = hum_relay::Config::ephemeral(Duration::from_millis(5));
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
