//! The real `hum` TUI in tmux at 80x24: group changes in the room's timeline, the member
//! list, and a wrong relay fingerprint with its cause on screen.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};

#[allow(dead_code)]
#[path = "support/plain_client.rs"]
mod plain_client;
use plain_client::Client;

const LONG: Duration = Duration::from_secs(30);

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

fn screen_until(socket: &str, target: &str, want: &[&str]) -> Result<String> {
    screen_when(socket, target, &format!("{want:?}"), |screen| {
        want.iter().all(|w| screen.contains(w))
    })
}

fn screen_when(
    socket: &str,
    target: &str,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<String> {
    let start = Instant::now();
    loop {
        let screen = tmux(socket, &["capture-pane", "-p", "-t", target])?;
        if ok(&screen) {
            return Ok(screen);
        }
        if start.elapsed() > LONG {
            bail!("{target} never showed {what}; the screen was:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The seconds of the "retry Ns" the status bar shows, if any.
fn retry_secs(screen: &str) -> Option<u64> {
    let at = screen.find("retry ")? + "retry ".len();
    screen[at..].split('s').next()?.parse().ok()
}

/// Starts `hum --profile PROFILE --relay RELAY` in a detached 80x24 session.
fn tui(socket: &str, home: &Path, profile: &str, relay: &str) -> Result<()> {
    let cmd = format!(
        "HUM_HOME={} HUM_PASSPHRASE='correct horse' HUM_INSECURE_FAST_KDF=1 HUM_INSECURE_FAST_ROUTE=1 TERM=xterm-256color {} --profile {profile} --relay '{relay}'",
        home.display(),
        env!("CARGO_BIN_EXE_hum")
    );
    tmux(
        socket,
        &[
            "new-session",
            "-d",
            "-s",
            profile,
            "-x",
            "80",
            "-y",
            "24",
            &cmd,
        ],
    )?;
    Ok(())
}

fn have_tmux() -> bool {
    std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_events_members_and_a_wrong_fingerprint_on_screen() -> Result<()> {
    if !have_tmux() {
        eprintln!("tmux is not installed: this test needs it (.ci/run installs it)");
        return Ok(());
    }
    let home = std::env::temp_dir().join(format!("hum-tmux-rooms-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let mut config = hum_relay::Config::ephemeral(Duration::from_millis(20));
    config.max_lag = 1_000;
    let relay = hum_relay::Relay::bind(config).await?.spawn();
    let addr = relay.address().to_string();

    // Alice (line mode) adds Bob, then Dave (her contact, not Bob's), to her group
    // before Bob opens the TUI.
    let mut alice = Client::spawn(&home, "alice", &addr)?;
    let mut bob = Client::spawn(&home, "bob", &addr)?;
    let mut dave = Client::spawn(&home, "dave", &addr)?;
    for (p, name) in [(&mut bob, "bob"), (&mut dave, "dave")] {
        let code = alice.invite().await?;
        p.say(&format!("/accept {code} alice")).await?;
        alice.contact(name).await?;
    }
    alice.say("/group create team").await?;
    alice.say("/group add team bob").await?;
    alice.say("/group add team dave").await?;
    bob.expect(LONG, "dave in the group", |f| {
        (f[0] == "event" && f[5] == "alice added dave").then_some(())
    })
    .await?;
    // Each member's copy of the group comes on its own: Bob's telling of Dave says
    // nothing of when Dave's own arrives.
    dave.expect(LONG, "the group at dave's", |f| {
        (f[0] == "room" && f[2] == "group" && f[3] == "team").then_some(())
    })
    .await?;
    dave.say("/members team").await?;
    let daves = dave
        .expect(LONG, "dave's fingerprint", |f| {
            (f[0] == "member" && f[4] == "you").then(|| f[3].to_owned())
        })
        .await?;
    bob.quit().await?;
    dave.quit().await?;
    // Carol's relay address has a wrong fingerprint.
    let mut wrong = relay.address().clone();
    wrong.fingerprint.0[0] ^= 1;
    let wrong = wrong.to_string();
    let carol = Client::spawn(&home, "carol", &wrong)?;
    carol.quit().await?;

    let socket = format!("hum-test-rooms-{}", std::process::id());
    let result = async {
        tui(&socket, &home, "bob", &addr)?;
        tui(&socket, &home, "carol", &wrong)?;
        screen_until(&socket, "bob", &["team"])?;
        // The group's room: Alice's change is a line of its timeline.
        tmux(&socket, &["send-keys", "-t", "bob", "M-2"])?;
        screen_until(&socket, "bob", &["· alice added you", "· alice added dave"])?;
        // While Bob watches, Alice renames the group: a new line, live.
        alice.say("/group rename team crew").await?;
        screen_until(
            &socket,
            "bob",
            &["· alice renamed the group from team to crew"],
        )?;
        tmux(&socket, &["send-keys", "-t", "bob", "-l", "/members"])?;
        tmux(&socket, &["send-keys", "-t", "bob", "Enter"])?;
        // Dave is marked, with his fingerprint.
        let screen = screen_until(&socket, "bob", &["members of crew (3)"])?;
        ensure!(
            screen.contains("bob  (you)") && screen.contains("alice  (admin)"),
            "{screen}"
        );
        ensure!(screen.contains("dave  not your contact"), "{screen}");
        ensure!(screen.contains(&daves), "{daves} not in\n{screen}");
        ensure!(!screen.contains("alice  (admin)  not"), "{screen}");
        screen_until(
            &socket,
            "carol",
            &["the relay's certificate does not match the fingerprint"],
        )?;
        // Waits grow while it fails; /reconnect tries again at once, with short waits
        // again, and says again why it fails (the notice gives way to the cause).
        screen_when(&socket, "carol", "a wait of 5 s or more", |s| {
            retry_secs(s).is_some_and(|r| r >= 5)
        })?;
        tmux(&socket, &["send-keys", "-t", "carol", "-l", "/reconnect"])?;
        tmux(&socket, &["send-keys", "-t", "carol", "Enter"])?;
        let screen = screen_when(&socket, "carol", "a short wait and the cause", |s| {
            retry_secs(s) == Some(1)
                && s.contains("the relay's certificate does not match the fingerprint")
        })?;
        ensure!(!screen.contains("reconnecting to"), "{screen}");
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let _ = tmux(&socket, &["kill-server"]);
    alice.quit().await?;
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(&home);
    result
}
