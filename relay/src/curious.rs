//! The `curious` build's log: what each role sees, as JSON lines (docs/PROTOCOL.md,
//! hum/2 §H8). It is the proof tool of hum/2's claims about what each relay learns, and
//! exists only in builds with `--features curious`; without the feature every call here
//! is empty and `--curious-log` does not exist.
//!
//! Every record has `role`, `ev`, `tick` (this relay's tick) and `ms` (Unix milliseconds,
//! to align relays). Lines go to a background writer through a bounded channel, so the
//! beat never waits for the disk; a record that finds the channel full is dropped and
//! counted, and the count is the log's last record.

/// The curious log, or nothing.
#[derive(Debug, Default)]
pub(crate) struct Curious {
    #[cfg(feature = "curious")]
    out: Option<writer::Writer>,
}

impl Curious {
    /// Opens the log the configuration names (a fresh file), or none.
    #[cfg_attr(not(feature = "curious"), allow(clippy::unnecessary_wraps))]
    pub(crate) fn open(config: &crate::Config) -> Result<Self, crate::RelayError> {
        #[cfg(feature = "curious")]
        if let Some(path) = &config.curious_log {
            let file = std::fs::File::create(path).map_err(|source| crate::RelayError::State {
                path: path.clone(),
                source,
            })?;
            return Ok(Self {
                out: Some(writer::Writer::start(file, config.clock.clone())),
            });
        }
        let _ = config;
        Ok(Self::default())
    }

    /// Whether lines are written (so callers skip building them otherwise).
    pub(crate) fn on(&self) -> bool {
        #[cfg(feature = "curious")]
        return self.out.is_some();
        #[cfg(not(feature = "curious"))]
        false
    }

    /// Writes one record of `role` (`entry` or `mailbox`), event `ev`, at this relay's
    /// tick `tick`, if the log is on. `fields` builds the rest of the object: JSON members
    /// without the braces, e.g. `"conn":3,"peer":"127.0.0.1:5000"`.
    pub(crate) fn record(&self, role: &str, ev: &str, tick: u64, fields: impl FnOnce() -> String) {
        #[cfg(feature = "curious")]
        if let Some(out) = &self.out {
            out.record(role, ev, tick, &fields());
        }
        #[cfg(not(feature = "curious"))]
        let _ = (role, ev, tick, fields);
    }
}

/// A JSON string member value, or `null`.
pub(crate) fn or_null(value: Option<String>) -> String {
    value.map_or_else(|| "null".to_owned(), |v| format!("\"{v}\""))
}

#[cfg(feature = "curious")]
mod writer {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
    use std::thread::JoinHandle;

    /// Lines waiting for the disk before new ones are dropped.
    const QUEUE: usize = 1 << 16;

    /// The background writer of one log.
    #[derive(Debug)]
    pub(super) struct Writer {
        tx: Option<SyncSender<String>>,
        thread: Option<JoinHandle<()>>,
        dropped: AtomicU64,
        clock: crate::Clock,
    }

    impl Writer {
        pub(super) fn start(file: std::fs::File, clock: crate::Clock) -> Self {
            let (tx, rx) = sync_channel(QUEUE);
            let thread = std::thread::Builder::new()
                .name("curious-log".to_owned())
                .spawn(move || drain(&rx, file))
                .map_err(|err| tracing::error!(cause = %err, "cannot start the curious log"))
                .ok();
            Self {
                tx: thread.as_ref().map(|_| tx),
                thread,
                dropped: AtomicU64::new(0),
                clock,
            }
        }

        pub(super) fn record(&self, role: &str, ev: &str, tick: u64, fields: &str) {
            let Some(tx) = &self.tx else {
                return;
            };
            let ms = self.clock.unix_micros() / 1_000;
            let sep = if fields.is_empty() { "" } else { "," };
            let line =
                format!(r#"{{"role":"{role}","ev":"{ev}","tick":{tick},"ms":{ms}{sep}{fields}}}"#);
            match tx.try_send(line) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    impl Drop for Writer {
        fn drop(&mut self) {
            let dropped = self.dropped.load(Ordering::Relaxed);
            if let Some(tx) = self.tx.take() {
                if dropped > 0 {
                    tracing::warn!(dropped, "the curious log dropped records");
                }
                let ms = self.clock.unix_micros() / 1_000;
                let _ = tx.send(format!(
                    r#"{{"role":"relay","ev":"dropped","tick":0,"ms":{ms},"count":{dropped}}}"#
                ));
            }
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Writes lines as they come, flushing whenever the queue is empty, until every
    /// sender is gone.
    fn drain(rx: &Receiver<String>, file: std::fs::File) {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        while let Ok(line) = rx.recv() {
            let _ = writeln!(out, "{line}");
            while let Ok(line) = rx.try_recv() {
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        }
        let _ = out.flush();
    }
}
