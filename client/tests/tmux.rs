//! The real `hum` TUI in tmux against a real relay: typed into one client's terminal, the
//! message appears in the other client's pane; an invite code copied off one screen as a
//! person copies it (one line per row) and pasted into the other adds the contact.

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
    screen_when(socket, target, &[], limit, &format!("{want:?}"), |s| {
        s.contains(want)
    })
}

/// Captures `target` (with the extra `capture-pane` flags `how`) until `ok` accepts what
/// it shows, for up to `limit`: a terminal draws a frame in pieces, so a condition is
/// waited for, never assumed after a pause.
fn screen_when(
    socket: &str,
    target: &str,
    how: &[&str],
    limit: Duration,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<String> {
    let start = Instant::now();
    let mut args = vec!["capture-pane", "-p"];
    args.extend_from_slice(how);
    args.extend_from_slice(&["-t", target]);
    loop {
        let screen = tmux(socket, &args)?;
        if ok(&screen) {
            return Ok(screen);
        }
        if start.elapsed() > limit {
            bail!("{target} never showed {what}; the screen was:\n{screen}");
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
        .env("HUM_INSECURE_FAST_ROUTE", "1")
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
    // The next process on this profile starts only once this one is gone.
    let limit = Duration::from_secs(30);
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => {
            let status = status?;
            ensure!(
                status.success(),
                "{profile}: exit status {status} after /quit"
            );
        }
        Err(_) => bail!("{profile} still running {limit:?} after /quit"),
    }
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
            "HUM_HOME={} HUM_PASSPHRASE=pass HUM_INSECURE_FAST_KDF=1 HUM_INSECURE_FAST_ROUTE=1 TERM=xterm-256color {hum} --profile {profile} --relay '{addr}'",
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
        // The relay is a single relay: the status bar says what that means.
        screen_until(
            &socket,
            "alice",
            Duration::from_secs(30),
            "single relay: it can see who you talk to",
        )?;
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

fn have_tmux() -> bool {
    let ok = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok();
    if !ok {
        eprintln!("tmux is not installed: this test needs it (.ci/run installs it)");
    }
    ok
}

/// A relay, a home folder and a tmux server for one test; all gone on drop.
struct Stage {
    home: std::path::PathBuf,
    socket: String,
    addr: String,
    relay: Option<hum_relay::RelayHandle>,
}

impl Stage {
    async fn new(name: &str) -> Result<Self> {
        let home = std::env::temp_dir().join(format!("hum-tmux-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let mut config = hum_relay::Config::ephemeral(Duration::from_millis(20));
        config.max_lag = 1_000;
        let relay = hum_relay::Relay::bind(config).await?.spawn();
        Ok(Stage {
            socket: format!("hum-{name}-{}", std::process::id()),
            addr: relay.address().to_string(),
            relay: Some(relay),
            home,
        })
    }

    /// Make a profile through the line mode (fast KDF, as tests do).
    async fn profile(&self, name: &str) -> Result<()> {
        plain(&self.home, name, &self.addr, &[], "ready")
            .await
            .map(|_| ())
    }

    fn hum_command(&self, profile: &str) -> String {
        format!(
            "HUM_HOME={} HUM_PASSPHRASE=pass HUM_INSECURE_FAST_KDF=1 HUM_INSECURE_FAST_ROUTE=1 TERM=xterm-256color {} --profile {profile} --relay '{}'",
            self.home.display(),
            env!("CARGO_BIN_EXE_hum"),
            self.addr
        )
    }

    /// Start `profile`'s TUI in a tmux session of its name, `w` x `h`; the session stays
    /// after hum exits, so what it printed can be read.
    fn tui(&self, profile: &str, w: u16, h: u16) -> Result<()> {
        tmux(
            &self.socket,
            &[
                "new-session",
                "-d",
                "-s",
                profile,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                &self.hum_command(profile),
            ],
        )?;
        tmux(
            &self.socket,
            &["set-option", "-w", "-t", profile, "remain-on-exit", "on"],
        )?;
        screen_until(
            &self.socket,
            profile,
            Duration::from_secs(30),
            &format!("hum · {profile}"),
        )
        .map(|_| ())
    }

    fn keys(&self, target: &str, literal: &str) -> Result<()> {
        tmux(&self.socket, &["send-keys", "-t", target, "-l", literal]).map(|_| ())
    }

    fn key(&self, target: &str, key: &str) -> Result<()> {
        tmux(&self.socket, &["send-keys", "-t", target, key]).map(|_| ())
    }

    /// Paste `text` into `target` as a terminal paste does (bracketed, as hum asks for).
    fn paste(&self, target: &str, text: &str) -> Result<()> {
        let file = self.home.join("clipboard.txt");
        std::fs::write(&file, text)?;
        tmux(
            &self.socket,
            &["load-buffer", "-b", "clip", &file.display().to_string()],
        )?;
        tmux(
            &self.socket,
            &["paste-buffer", "-p", "-d", "-b", "clip", "-t", target],
        )
        .map(|_| ())
    }

    fn until(&self, target: &str, want: &str) -> Result<String> {
        screen_until(&self.socket, target, Duration::from_secs(30), want)
    }

    /// Waits until `ok` accepts `target`'s screen, captured with the flags `how`.
    fn when(
        &self,
        target: &str,
        how: &[&str],
        what: &str,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String> {
        screen_when(&self.socket, target, how, Duration::from_secs(30), what, ok)
    }

    /// The screen as a person copies it: one line per row.
    fn rows(&self, target: &str) -> Result<Vec<String>> {
        Ok(tmux(&self.socket, &["capture-pane", "-p", "-t", target])?
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// The screen with rows the terminal wrapped joined, as a terminal selection of a
    /// wrapped line copies it.
    fn joined(&self, target: &str) -> Result<Vec<String>> {
        Ok(
            tmux(&self.socket, &["capture-pane", "-p", "-J", "-t", target])?
                .lines()
                .map(str::to_owned)
                .collect(),
        )
    }

    async fn close(mut self) {
        let _ = tmux(&self.socket, &["kill-server"]);
        if let Some(r) = self.relay.take() {
            r.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// The rows of the invite code on a screen: from the row that starts with `hum2-`, the
/// rows made of nothing but the code's characters.
fn code_rows(rows: &[String]) -> Result<Vec<String>> {
    let first = rows
        .iter()
        .position(|r| r.starts_with("hum2-"))
        .context("no invite code on screen")?;
    let code_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
    Ok(rows[first..]
        .iter()
        .map(|r| r.trim_end().to_owned())
        .take_while(|r| !r.is_empty() && r.chars().all(code_char))
        .collect())
}

/// The invite overlay's code, checked as a person sees it: its rows hold nothing but the
/// code, and a copy of the wrapped line gives it whole.
fn copy_code(stage: &Stage, who: &str, width: usize) -> Result<(String, Vec<String>)> {
    stage.keys(who, "/invite")?;
    stage.key(who, "Enter")?;
    // The code is on screen whole once the terminal holds its rows as one wrapped line:
    // hum writes it so after the frame that draws the overlay.
    stage.when(
        who,
        &["-J"],
        "the invite code as one wrapped line",
        |joined| {
            let rows = stage.rows(who).and_then(|r| code_rows(&r));
            rows.is_ok_and(|r| r.len() > 1 && joined.lines().any(|l| l.trim_end() == r.concat()))
        },
    )?;
    let rows = code_rows(&stage.rows(who)?)?;
    ensure!(
        rows.len() > 1,
        "a code this long takes several rows: {rows:?}"
    );
    ensure!(
        rows[..rows.len() - 1].iter().all(|r| r.len() == width),
        "full rows, no border: {rows:?}"
    );
    let code = rows.concat();
    ensure!(code.len() > 500, "{code}");
    let joined = stage.joined(who)?;
    ensure!(
        joined.iter().any(|l| l.trim_end() == code),
        "the terminal keeps the code as one wrapped line:\n{}",
        joined.join("\n")
    );
    ensure!(
        !stage
            .rows(who)?
            .iter()
            .any(|r| r.contains("making an invite")),
        "the notice is gone once the code shows"
    );
    Ok((code, rows))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_code_copied_off_an_80x24_screen_and_pasted_after_accept_adds_the_contact()
-> Result<()> {
    if !have_tmux() {
        return Ok(());
    }
    let stage = Stage::new("accept80").await?;
    let result = async {
        stage.profile("alice").await?;
        stage.profile("bob").await?;
        stage.tui("alice", 80, 24)?;
        stage.tui("bob", 80, 24)?;
        let (_code, rows) = copy_code(&stage, "alice", 80)?;
        stage.key("alice", "Escape")?;
        // Bob types /accept and pastes the rows he copied, one line each.
        stage.keys("bob", "/accept ")?;
        stage.paste("bob", &(rows.join("\n") + "\n"))?;
        let tail = rows.last().context("no rows")?;
        let screen = stage.until("bob", tail)?;
        ensure!(
            !screen.contains("Send a paste"),
            "no paste guard:\n{screen}"
        );
        stage.key("bob", "Enter")?;
        // The contact is there on both sides.
        stage.until("bob", "1  alice")?;
        stage.until("alice", "1  bob")?;
        Ok::<(), anyhow::Error>(())
    }
    .await;
    stage.close().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_code_pasted_alone_at_120x40_is_offered_and_accepted_and_printed_on_exit()
-> Result<()> {
    if !have_tmux() {
        return Ok(());
    }
    let stage = Stage::new("alone120").await?;
    let result = async {
        stage.profile("carol").await?;
        stage.profile("louis").await?;
        stage.tui("carol", 120, 40)?;
        stage.tui("louis", 120, 40)?;
        let (code, rows) = copy_code(&stage, "carol", 120)?;
        stage.key("carol", "Escape")?;
        // Louis pastes the code alone: hum asks, and never sends it as a message.
        stage.paste("louis", &rows.join("\n"))?;
        stage.until("louis", "Accept this invite code?")?;
        stage.keys("louis", "y")?;
        stage.until("louis", "1  carol")?;
        stage.until("carol", "1  louis")?;
        // The theme is remembered, and the code is printed once the terminal is back.
        stage.keys("carol", "/theme light")?;
        stage.key("carol", "Enter")?;
        stage.until("carol", "theme light")?;
        stage.keys("carol", "/quit")?;
        stage.key("carol", "Enter")?;
        // Printed on the shell's screen, as one line under its heading. tmux marks the
        // pane dead below its last row, which can scroll the heading into the history.
        stage.when(
            "carol",
            &["-J", "-S", "-"],
            "the code printed as one line under its heading",
            |s| {
                s.lines()
                    .skip_while(|l| !l.contains("made in this session"))
                    .any(|l| l.trim_end() == code)
            },
        )?;
        tmux(
            &stage.socket,
            &[
                "respawn-pane",
                "-k",
                "-t",
                "carol",
                &stage.hum_command("carol"),
            ],
        )?;
        stage.when("carol", &[], "the light theme after a restart", |s| {
            s.contains("hum · carol") && s.lines().any(|l| l.trim_end().ends_with("light"))
        })?;
        Ok::<(), anyhow::Error>(())
    }
    .await;
    stage.close().await;
    result
}
