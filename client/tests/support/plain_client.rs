//! The real `hum --plain` binary driven through its stdin and stdout, as a script would.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// One running `hum --plain`.
pub(crate) struct Client {
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Client {
    /// `hum --plain --profile PROFILE --relay RELAY` with its profiles in `home`.
    pub(crate) fn spawn(home: &Path, profile: &str, relay: &str) -> Result<Self> {
        Self::spawn_args(home, &["--profile", profile, "--relay", relay])
    }

    /// `hum --plain ARGS` with its profiles in `home`.
    pub(crate) fn spawn_args(home: &Path, args: &[&str]) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hum"))
            .arg("--plain")
            .args(args)
            .env("HUM_HOME", home)
            .env("HUM_PASSPHRASE", "correct horse")
            .env("HUM_INSECURE_FAST_KDF", "1")
            .env("HUM_INSECURE_FAST_ROUTE", "1")
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
            stdin: Some(stdin),
            lines,
        })
    }

    /// Writes one line to its stdin.
    pub(crate) async fn say(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin is closed")?;
        stdin.write_all(line.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
        stdin.flush().await?;
        Ok(())
    }

    /// Closes its stdin (the end of a piped script).
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next output line, if one comes within `limit`.
    pub(crate) async fn line(&mut self, limit: Duration) -> Result<Option<String>> {
        match tokio::time::timeout(limit, self.lines.recv()).await {
            Ok(l) => Ok(l),
            Err(_) => bail!("no output line within {limit:?}"),
        }
    }

    /// The next line whose fields `f` accepts; an `error` line fails.
    pub(crate) async fn expect<T>(
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

    /// Waits for the line `first<TAB>...` and returns its fields after the first.
    pub(crate) async fn expect_kind(
        &mut self,
        limit: Duration,
        first: &str,
    ) -> Result<Vec<String>> {
        self.expect(limit, first, |f| {
            (f[0] == first).then(|| f[1..].iter().map(|s| (*s).to_owned()).collect())
        })
        .await
    }

    /// Makes an invite code.
    pub(crate) async fn invite(&mut self) -> Result<String> {
        self.say("/invite").await?;
        self.expect(Duration::from_secs(20), "an invite", |f| {
            (f[0] == "invite").then(|| f[1].to_owned())
        })
        .await
    }

    /// Waits for a contact named `name`.
    pub(crate) async fn contact(&mut self, name: &str) -> Result<()> {
        self.expect(Duration::from_secs(20), &format!("contact {name}"), |f| {
            (f[0] == "contact" && f[2] == name).then_some(())
        })
        .await
    }

    /// Waits for the process to end and checks that it ended well.
    pub(crate) async fn exits(&mut self, limit: Duration, what: &str) -> Result<()> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                ensure!(status.success(), "{what}: exit status {status}");
                Ok(())
            }
            Err(_) => bail!("{what}: still running after {limit:?}"),
        }
    }

    /// Sends `/quit` and waits for the process to end, so that the next one on the same
    /// profile finds it free.
    pub(crate) async fn quit(mut self) -> Result<()> {
        self.say("/quit").await?;
        self.exits(Duration::from_secs(30), "after /quit").await
    }
}
