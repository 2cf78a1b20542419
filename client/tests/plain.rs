//! The real `hum --plain` binary as scripts use it: commands piped in before it is ready,
//! answers in the order of the commands, SIGTERM and SIGINT with stdin still open, the
//! demo and the embedded relay with port 7667 taken.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tokio::sync::watch;

#[allow(dead_code)]
#[path = "support/plain_client.rs"]
mod plain_client;
use plain_client::Client;

const LONG: Duration = Duration::from_secs(30);

/// A folder for profiles, removed at the end.
struct Home(PathBuf);

impl Home {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("hum-plain-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Self(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn relay() -> Result<hum_relay::RelayHandle> {
    let mut config = hum_relay::Config::ephemeral(Duration::from_millis(20));
    config.max_lag = 2_000;
    Ok(hum_relay::Relay::bind(config).await?.spawn())
}

/// Every line the client prints until it exits.
async fn all_lines(c: &mut Client) -> Result<Vec<String>> {
    let mut out = Vec::new();
    while let Some(l) = c.line(LONG).await? {
        out.push(l);
    }
    Ok(out)
}

/// Texts of incoming messages, until `n` have arrived.
async fn incoming(c: &mut Client, n: usize) -> Result<Vec<String>> {
    let mut got = Vec::new();
    while got.len() < n {
        got.push(
            c.expect(LONG, "an incoming message", |f| {
                (f[0] == "message" && f[5] == "in").then(|| f[7].to_owned())
            })
            .await?,
        );
    }
    Ok(got)
}

/// Reads what the client prints until it exits; fails unless the relay had taken the
/// message `id` to bob (its `sent` line) by then.
async fn sent_before_exit(c: &mut Client, id: &str, what: &str) -> Result<()> {
    let out = all_lines(c).await?;
    ensure!(
        out.iter()
            .any(|l| *l == format!("delivery\tbob\t{id}\tsent")),
        "alice quit {what} before the relay had the message: {out:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_piped_in_before_ready_wait_for_the_profile() -> Result<()> {
    let home = Home::new("piped");
    let relay = relay().await?;
    let addr = relay.address().to_string();
    let mut bob = Client::spawn(home.path(), "bob", &addr)?;
    let code = bob.invite().await?;

    // Everything at once, then the end of input, as `printf ... | hum --plain` does: the
    // second line names the contact the first one adds.
    let mut alice = Client::spawn(home.path(), "alice", &addr)?;
    alice.say(&format!("/accept {code} bob")).await?;
    alice.say("/msg bob first").await?;
    alice.close_stdin();
    let out = all_lines(&mut alice).await?;
    let errors: Vec<&String> = out.iter().filter(|l| l.starts_with("error")).collect();
    ensure!(errors.is_empty(), "errors: {errors:?} in {out:?}");
    ensure!(
        out.iter()
            .any(|l| l.starts_with("message\tbob\t") && l.ends_with("\tfirst")),
        "the message was not taken: {out:?}"
    );
    alice.exits(LONG, "alice after the end of input").await?;

    // The profile exists now: `echo "/msg bob again" | hum --plain`.
    let mut alice = Client::spawn(home.path(), "alice", &addr)?;
    alice.say("/msg bob again").await?;
    alice.close_stdin();
    let out = all_lines(&mut alice).await?;
    let errors: Vec<&String> = out.iter().filter(|l| l.starts_with("error")).collect();
    ensure!(errors.is_empty(), "errors: {errors:?} in {out:?}");
    alice.exits(LONG, "alice after the end of input").await?;

    ensure!(incoming(&mut bob, 2).await? == ["first", "again"]);
    bob.quit().await?;
    relay.shutdown().await;
    Ok(())
}

/// A way to `relay` through 127.0.0.1: while `hold` is set, the connections it takes wait
/// before they reach the relay, so a client's link stays connecting until it is cleared.
async fn held_way(relay: &hum_relay::RelayHandle) -> Result<(String, watch::Sender<bool>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let mut addr = relay.address().clone();
    let target = addr.host_port();
    addr.port = listener.local_addr()?.port();
    let (hold, held) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let mut held = held.clone();
            let target = target.clone();
            tokio::spawn(async move {
                if held.wait_for(|h| !h).await.is_err() {
                    return;
                }
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    // As the relay and the client do: a cell held back for an earlier
                    // one's acknowledgement would miss its tick's batch.
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Ok((addr.to_string(), hold))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_input_waits_for_a_relay_link_still_connecting() -> Result<()> {
    let home = Home::new("connecting");
    let relay = relay().await?;
    let (addr, hold) = held_way(&relay).await?;
    let mut bob = Client::spawn(home.path(), "bob", &addr)?;
    bob.expect(LONG, "bob's link up", |f| {
        (f[0] == "link" && f[2] == "up").then_some(())
    })
    .await?;
    let code = bob.invite().await?;

    // Alice's link cannot come up before her whole script has been read.
    hold.send_replace(true);
    let mut alice = Client::spawn(home.path(), "alice", &addr)?;
    alice.say(&format!("/accept {code} bob")).await?;
    alice.say("/msg bob first").await?;
    alice.close_stdin();
    let id = alice
        .expect(LONG, "the message taken", |f| {
            (f[0] == "message" && f[5] == "out" && f[7] == "first").then(|| f[2].to_owned())
        })
        .await?;
    hold.send_replace(false);
    sent_before_exit(&mut alice, &id, "at the end of input").await?;
    alice.exits(LONG, "alice after the end of input").await?;
    ensure!(incoming(&mut bob, 1).await? == ["first"]);
    bob.quit().await?;
    relay.shutdown().await;
    Ok(())
}

/// Alice and bob as contacts, both running.
async fn pair(home: &Path, addr: &str) -> Result<(Client, Client)> {
    let mut bob = Client::spawn(home, "bob", addr)?;
    let mut alice = Client::spawn(home, "alice", addr)?;
    let code = bob.invite().await?;
    alice.say(&format!("/accept {code} bob")).await?;
    alice.contact("bob").await?;
    bob.contact("alice").await?;
    Ok((alice, bob))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_come_in_the_order_of_the_commands() -> Result<()> {
    let home = Home::new("order");
    let relay = relay().await?;
    let addr = relay.address().to_string();
    let (mut alice, bob) = pair(home.path(), &addr).await?;
    alice.say("/msg bob first words").await?;
    alice
        .expect(LONG, "the message", |f| {
            (f[0] == "message" && f[7] == "first words").then_some(())
        })
        .await?;

    // Commands the engine answers and commands the line mode answers itself, mixed.
    let script = [
        "/verify bob",
        "/rooms",
        "/history bob 5",
        "/contacts",
        "/search first",
        "/help",
        "/frobnicate",
        "/read bob",
        "/nick bob bobby",
        "/verify bobby",
        "/rooms",
    ];
    for l in script {
        alice.say(l).await?;
    }
    // Fourteen answer lines in all (one room, one message in its history).
    let mut kinds: Vec<String> = Vec::new();
    let mut last_safety = String::new();
    for _ in 0..14 {
        // Lines no command asked for, the link and delivery states, are left out.
        let l = loop {
            let l = alice
                .line(LONG)
                .await
                .with_context(|| format!("answers so far: {kinds:?}"))?
                .context("alice exited")?;
            if !l.starts_with("link\t") && !l.starts_with("delivery\t") {
                break l;
            }
        };
        let f: Vec<&str> = l.split('\t').collect();
        if f[0] == "safety" {
            last_safety = f[1].to_owned();
        }
        // One entry per run of equal kinds: /rooms prints a line per room.
        if kinds.last().map(String::as_str) != Some(f[0]) {
            kinds.push(f[0].to_owned());
        }
    }
    let expected = [
        "safety",  // /verify bob
        "room",    // /rooms
        "history", // /history bob 5, then its messages
        "message", "contact", // /contacts
        "search",  // /search first, then its match
        "message", "notice",  // /help
        "error",   // /frobnicate
        "room",    // /read bob: the room, its unread count cleared
        "contact", // /nick bob bobby: the contact and its room renamed
        "room", "safety", // /verify bobby
        "room",   // /rooms
    ];
    ensure!(kinds == expected, "answers out of order: {kinds:?}");
    ensure!(
        last_safety == "bobby",
        "the last /verify answered {last_safety}"
    );
    alice.quit().await?;
    bob.quit().await?;
    relay.shutdown().await;
    Ok(())
}

fn signal(c: &Client, name: &str) -> Result<()> {
    let pid = c.child.id().context("no pid")?;
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()?;
    ensure!(status.success(), "kill -{name} failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_quit_with_stdin_open_and_the_outbox_drained() -> Result<()> {
    let home = Home::new("signals");
    let relay = relay().await?;
    let (addr, hold) = held_way(&relay).await?;
    let (mut alice, mut bob) = pair(home.path(), &addr).await?;

    // SIGTERM with the link up; SIGINT right after a restart, its link still connecting.
    for (signame, text) in [
        ("TERM", "sent before SIGTERM"),
        ("INT", "sent before SIGINT"),
    ] {
        alice.say(&format!("/msg bob {text}")).await?;
        let id = alice
            .expect(LONG, "the message taken", |f| {
                (f[0] == "message" && f[5] == "out" && f[7] == text).then(|| f[2].to_owned())
            })
            .await?;
        // Stdin stays open: only the signal can end it.
        signal(&alice, signame)?;
        hold.send_replace(false);
        sent_before_exit(&mut alice, &id, &format!("on SIG{signame}")).await?;
        alice
            .exits(Duration::from_secs(10), &format!("after SIG{signame}"))
            .await?;
        ensure!(incoming(&mut bob, 1).await? == [text]);
        hold.send_replace(true);
        alice = Client::spawn(home.path(), "alice", &addr)?;
        alice.expect_kind(LONG, "ready").await?;
    }
    hold.send_replace(false);
    alice.quit().await?;
    bob.quit().await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_and_embedded_relay_start_with_port_7667_taken() -> Result<()> {
    // Held by this test, or already by something else: either way it is taken.
    let _holder = std::net::TcpListener::bind(("127.0.0.1", hum_relay::DEFAULT_PORT));
    ensure!(
        std::net::TcpListener::bind(("127.0.0.1", hum_relay::DEFAULT_PORT)).is_err(),
        "port 7667 should be taken"
    );

    // The demo: a line typed at once goes to the demo contact, who answers it.
    let home = Home::new("demo");
    let mut demo = Client::spawn_args(home.path(), &["--demo"])?;
    demo.say("hello guide").await?;
    demo.expect(LONG, "the guide's answer", |f| {
        (f[0] == "message" && f[1] == "hum-guide" && f[5] == "in" && f[7].contains("hello guide"))
            .then_some(())
    })
    .await?;
    demo.quit().await?;

    // The embedded relay says which port it took, and the client is on it.
    let mut alice = Client::spawn_args(home.path(), &["--profile", "alice", "--embedded-relay"])?;
    let notice = alice.expect_kind(LONG, "notice").await?;
    let at = notice[0]
        .strip_prefix("embedded relay on ")
        .and_then(|r| r.split(' ').next())
        .with_context(|| format!("unexpected notice {notice:?}"))?
        .to_owned();
    ensure!(
        at.starts_with("127.0.0.1:") && at != "127.0.0.1:7667",
        "{at}"
    );
    alice
        .expect(LONG, "the link up", |f| {
            (f[0] == "link" && f[1] == at && f[2] == "up").then_some(())
        })
        .await?;
    alice.quit().await?;
    Ok(())
}

/// `hum --plain | head -3`: the reader closes the pipe after a few lines. hum quits as
/// at the end of input, with status 0 and nothing on stderr, as a Unix filter does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_ends_the_line_mode_quietly() -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let home = Home::new("epipe");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hum"))
        .args(["--plain", "--demo"])
        .env("HUM_HOME", home.path())
        .env("HUM_PASSPHRASE", "correct horse")
        .env("HUM_INSECURE_FAST_KDF", "1")
        .env("HUM_INSECURE_FAST_ROUTE", "1")
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    for _ in 0..3 {
        lines.next_line().await?.context("hum ended early")?;
    }
    drop(lines);
    // A command after the pipe closed makes hum write again.
    let mut stdin = child.stdin.take().context("stdin")?;
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"/rooms\n").await?;
    drop(stdin);
    let out = tokio::time::timeout(LONG, child.wait_with_output()).await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "exit {:?}, stderr: {stderr}",
        out.status
    );
    ensure!(!stderr.contains("Error"), "stderr: {stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_relay_fingerprint_is_an_error_line_with_its_cause() -> Result<()> {
    let home = Home::new("fingerprint");
    let relay = relay().await?;
    let mut wrong = relay.address().clone();
    wrong.fingerprint.0[0] ^= 1;
    let mut alice = Client::spawn(home.path(), "alice", &wrong.to_string())?;
    let error = loop {
        let l = alice.line(LONG).await?.context("alice exited")?;
        if let Some(e) = l.strip_prefix("error\t") {
            break e.to_owned();
        }
    };
    ensure!(
        error
            == format!(
                "the relay's certificate does not match the fingerprint in its address (relay {})",
                wrong.host_port()
            ),
        "{error}"
    );
    alice.quit().await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_events_are_in_history_and_members_are_listed() -> Result<()> {
    let home = Home::new("members");
    let relay = relay().await?;
    let addr = relay.address().to_string();
    let (mut alice, mut bob) = pair(home.path(), &addr).await?;
    alice.say("/group create team").await?;
    alice.say("/group add team bob").await?;
    bob.expect(LONG, "the group", |f| {
        (f[0] == "room" && f[3] == "team").then_some(())
    })
    .await?;
    bob.expect(LONG, "the event", |f| {
        (f[0] == "event" && f[1] == "team" && f[4] == "alice" && f[5] == "alice added you")
            .then_some(())
    })
    .await?;

    alice.say("/history team").await?;
    let head = alice.expect_kind(LONG, "history").await?;
    ensure!(head == ["team", "2", "end"], "{head:?}");
    let mut texts = Vec::new();
    for _ in 0..2 {
        let f = alice.expect_kind(LONG, "event").await?;
        ensure!(f[0] == "team" && f[3] == "alice", "{f:?}");
        texts.push(f[4].clone());
    }
    ensure!(
        texts == ["you created the group team", "you added bob"],
        "{texts:?}"
    );

    bob.say("/members team").await?;
    let head = bob.expect_kind(LONG, "members").await?;
    ensure!(head == ["team", "2"], "{head:?}");
    let me = bob.expect_kind(LONG, "member").await?;
    let admin = bob.expect_kind(LONG, "member").await?;
    ensure!(
        me[1] == "bob" && me[3] == "you" && me[4] == "member",
        "{me:?}"
    );
    ensure!(
        admin[1] == "alice" && admin[3] == "contact" && admin[4] == "admin",
        "{admin:?}"
    );
    ensure!(
        admin[2].len() == 39 && admin[2].matches(':').count() == 7,
        "{admin:?}"
    );
    alice.quit().await?;
    bob.quit().await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_group_needs_no_name_and_invite_file_writes_the_code() -> Result<()> {
    let home = Home::new("language");
    let relay = relay().await?;
    let addr = relay.address().to_string();
    let (mut alice, mut bob) = pair(home.path(), &addr).await?;
    alice.say("/g c team").await?;
    alice
        .expect(LONG, "the group", |f| {
            (f[0] == "room" && f[2] == "group" && f[3] == "team").then_some(())
        })
        .await?;
    // The TUI's form, with the group current: as in an open group room there.
    alice.say("/room te").await?;
    let current = alice.expect_kind(LONG, "notice").await?;
    ensure!(current == ["current room is team"], "{current:?}");
    alice.say("/group add bob").await?;
    bob.expect(LONG, "the group", |f| {
        (f[0] == "room" && f[3] == "team").then_some(())
    })
    .await?;
    alice.say("/members").await?;
    let head = alice.expect_kind(LONG, "members").await?;
    ensure!(head == ["team", "2"], "{head:?}");
    // `/invite FILE` as in the TUI: the code goes to a new file, and it says so.
    let file = home.path().join("code.txt");
    alice.say(&format!("/invite {}", file.display())).await?;
    let code = alice.expect_kind(LONG, "invite").await?;
    let saved = alice.expect_kind(LONG, "notice").await?;
    ensure!(
        saved == [format!("invite code saved to {}", file.display())],
        "{saved:?}"
    );
    ensure!(std::fs::read_to_string(&file)? == format!("{}\n", code[0]));
    // A command of the TUI says where it is.
    alice.say("/split").await?;
    let e = alice.line(LONG).await?.context("alice exited")?;
    ensure!(
        e.starts_with("error\t/split is a command of the TUI"),
        "{e}"
    );
    alice.quit().await?;
    bob.quit().await?;
    relay.shutdown().await;
    Ok(())
}
