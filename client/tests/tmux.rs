//! The real `hum` TUI in tmux against a real relay: typed into one client's terminal, the
//! message appears in the other client's pane.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

fn tmux(socket: &str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "tmux {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn screen_until(socket: &str, target: &str, limit: Duration, want: &str) -> Result<String> {
    let start = Instant::now();
    loop {
        let screen = tmux(socket, &["capture-pane", "-p", "-t", target])?;
        if screen.contains(want) {
            return Ok(screen);
        }
        if start.elapsed() > limit {
            bail!("{target} never showed {want:?}; the screen was:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `hum --plain` with `lines` on stdin and returns its output once `until` appears.
async fn plain(
    home: &Path,
    profile: &str,
    relay: &str,
    lines: &[String],
    until: &str,
) -> Result<Vec<String>> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hum"))
        .args(["--plain", "--profile", profile, "--relay", relay])
        .env("HUM_HOME", home)
        .env("HUM_PASSPHRASE", "pass")
        .env("HUM_INSECURE_FAST_KDF", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    for l in lines {
        stdin.write_all(format!("{l}\n").as_bytes()).await?;
    }
    let mut out = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = out.next_line().await {
            let done = l.contains(until);
            seen.push(l);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    ensure!(
        matches!(found, Ok(true)),
        "{profile} never printed {until:?}: {seen:?}"
    );
    stdin.write_all(b"/quit\n").await?;
    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_in_one_terminal_appears_in_the_other() -> Result<()> {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("tmux is not installed: this test needs it (.ci/run installs it)");
        return Ok(());
    }
    let home = std::env::temp_dir().join(format!("hum-tmux-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let mut config = hum_relay::Config::ephemeral(Duration::from_millis(20));
    config.max_lag = 1_000;
    let relay = hum_relay::Relay::bind(config).await?.spawn();
    let addr = relay.address().to_string();

    // Alice and Bob become contacts through the line mode.
    let out = plain(&home, "alice", &addr, &["/invite".into()], "invite\t").await?;
    let code = out
        .iter()
        .find_map(|l| l.strip_prefix("invite\t"))
        .context("no invite")?
        .to_owned();
    plain(
        &home,
        "bob",
        &addr,
        &[format!("/accept {code} alice")],
        "contact\t",
    )
    .await?;
    plain(&home, "alice", &addr, &[], "contact\t").await?;

    let socket = format!("hum-test-{}", std::process::id());
    let hum = env!("CARGO_BIN_EXE_hum");
    let run = |profile: &str| {
        format!(
            "HUM_HOME={} HUM_PASSPHRASE=pass HUM_INSECURE_FAST_KDF=1 TERM=xterm-256color {hum} --profile {profile} --relay '{addr}'",
            home.display()
        )
    };
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "alice",
            "-x",
            "80",
            "-y",
            "24",
            &run("alice"),
        ],
    )?;
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "bob",
            "-x",
            "80",
            "-y",
            "24",
            &run("bob"),
        ],
    )?;
    let result = async {
        screen_until(&socket, "alice", Duration::from_secs(30), "bob")?;
        screen_until(&socket, "bob", Duration::from_secs(30), "alice")?;
        // Alice opens her room with Bob and types.
        tmux(&socket, &["send-keys", "-t", "alice", "M-1"])?;
        tmux(
            &socket,
            &[
                "send-keys",
                "-t",
                "alice",
                "-l",
                "hello from a real terminal 日本",
            ],
        )?;
        tmux(&socket, &["send-keys", "-t", "alice", "Enter"])?;
        tmux(&socket, &["send-keys", "-t", "bob", "M-1"])?;
        let bob = screen_until(
            &socket,
            "bob",
            Duration::from_secs(30),
            "hello from a real terminal",
        )?;
        ensure!(bob.contains("alice"), "the sender is not shown:\n{bob}");
        // Alice sees her message delivered (✓✓) once Bob's receipt is back.
        screen_until(&socket, "alice", Duration::from_secs(30), "✓✓")?;
        // /quit leaves and the terminal is given back.
        tmux(&socket, &["send-keys", "-t", "alice", "-l", "/quit"])?;
        tmux(&socket, &["send-keys", "-t", "alice", "Enter"])?;
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let _ = tmux(&socket, &["kill-server"]);
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(&home);
    result
}
