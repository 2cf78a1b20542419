//! One relay link: TLS to the relay, then exactly one cell back for every cell received.
//!
//! The next upstream cell is built right after the previous one is sent, from whatever the
//! engine queued, so the answer to a beat is written the moment the beat arrives and its
//! timing never depends on what it carries.

use std::time::Duration;

use hum_shared::{CellWriter, Down, RelayAddr, Up, decode_cell, read_cell, write_cell};
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::watch;

use super::Input;

/// First wait before reconnecting; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait after the relay's host refused the connection at once: nothing listens
/// there for the moment (a relay restarting), and trying again costs almost nothing, so
/// the link is back within this long after the relay is.
const QUICK_MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A refusal faster than this is a quick failure.
const QUICK: Duration = Duration::from_secs(1);
/// How long TCP, TLS and the hello may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many operations wait for a link's cells at most: the engine waits when a link
/// is this far behind (while a link is down it drops what it is sent at once).
pub(crate) const LINK_QUEUE: usize = 4096;

/// An operation for a link, meant for one of its connections.
#[derive(Debug)]
pub(crate) struct LinkOp {
    /// The connection, as counted in [`Input::LinkUp`].
    pub(crate) conn: u64,
    /// The operation.
    pub(crate) op: Up,
}

/// The operations a link takes from the engine: a bounded channel, and the one
/// operation taken that did not fit into the last cell.
pub(crate) struct LinkOps {
    rx: mpsc::Receiver<LinkOp>,
    held: Option<Up>,
}

impl LinkOps {
    pub(crate) fn new(rx: mpsc::Receiver<LinkOp>) -> Self {
        Self { rx, held: None }
    }

    /// The next operation for connection `conn`; those for earlier ones are dropped.
    fn next(&mut self, conn: u64) -> Option<Up> {
        if let Some(op) = self.held.take() {
            return Some(op);
        }
        while let Ok(LinkOp { conn: c, op }) = self.rx.try_recv() {
            if c == conn {
                return Some(op);
            }
        }
        None
    }

    /// Drops everything waiting: it was meant for a connection that is gone.
    fn clear(&mut self) {
        self.held = None;
        while self.rx.try_recv().is_ok() {}
    }

    /// Builds the next cell for connection `conn`: as many operations as fit, in order.
    fn build_cell(&mut self, conn: u64, size: usize) -> Vec<u8> {
        let Ok(mut w) = CellWriter::new(size) else {
            return vec![0; size];
        };
        while let Some(op) = self.next(conn) {
            if !w.fits(&op) {
                self.held = Some(op);
                break;
            }
            if w.push(&op).is_err() {
                break;
            }
        }
        w.finish()
    }
}

/// A uniformly random duration in [0, span), to the microsecond (zero when the system
/// has no randomness).
pub(super) fn random_below(span: Duration) -> Duration {
    let span = u64::try_from(span.as_micros()).unwrap_or(u64::MAX);
    if span == 0 {
        return Duration::ZERO;
    }
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return Duration::ZERO;
    }
    Duration::from_micros(u64::from_le_bytes(b) % span)
}

/// A uniformly random wait in [0, tick / 4).
pub(super) fn answer_jitter(tick: Duration) -> Duration {
    random_below(tick / 4)
}

/// What a face is told, and how soon to try again, after an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    /// The host answered at once that nothing listens on the port.
    quick: bool,
    /// A cause the user has to act on (it does not go away by waiting), in words.
    shown: Option<String>,
}

impl Failure {
    fn of(e: &hum_relay::ConnectError, took: Duration) -> Self {
        use hum_relay::ConnectError as E;
        match e {
            E::Io(io) => Failure {
                quick: io.kind() == std::io::ErrorKind::ConnectionRefused && took < QUICK,
                shown: None,
            },
            E::Hello(hum_shared::CellIoError::Closed | hum_shared::CellIoError::Io(_)) => Failure {
                quick: false,
                shown: None,
            },
            other => Failure {
                quick: false,
                shown: Some(other.to_string()),
            },
        }
    }
}

/// The waits between attempts: doubling from [`FIRST_BACKOFF`], capped lower after quick
/// failures, each drawn at random between half and all of it so that the clients of a
/// relay that restarts do not all come back at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Self {
            next: FIRST_BACKOFF,
        }
    }

    /// The wait after a failed attempt, given a random duration in [0, wait / 2].
    pub(super) fn wait(
        &mut self,
        quick: bool,
        random: impl FnOnce(Duration) -> Duration,
    ) -> Duration {
        let cap = if quick {
            QUICK_MAX_BACKOFF
        } else {
            MAX_BACKOFF
        };
        let full = self.next.min(cap);
        self.next = (self.next * 2).min(MAX_BACKOFF);
        let half = full / 2;
        half + random(full - half).min(full - half)
    }
}

/// What the engine tells a link task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LinkControl {
    /// Stop for good.
    pub(crate) stop: bool,
    /// Raised by `/reconnect`: a link waiting to try again tries at once.
    pub(crate) retries: u64,
}

/// Runs a link until told to stop, reconnecting with backoff.
pub(crate) async fn run(
    relay: RelayAddr,
    mut ops: LinkOps,
    inputs: UnboundedSender<Input>,
    mut control: watch::Receiver<LinkControl>,
) {
    let addr = relay.clone();
    let mut backoff = Backoff::new();
    let mut conn = 0u64;
    loop {
        if control.borrow().stop {
            return;
        }
        let started = tokio::time::Instant::now();
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, hum_relay::connect(&addr));
        tokio::pin!(attempt);
        let connected = loop {
            tokio::select! {
                r = &mut attempt => break r,
                changed = control.changed() => {
                    if changed.is_err() || control.borrow().stop {
                        return;
                    }
                }
                // Not connected: what the engine sends now is for a connection that is
                // gone (it sends afresh when it hears the link is up).
                Some(_) = ops.rx.recv() => {}
            }
        };
        let failure = match connected {
            Err(_) => {
                tracing::info!(relay = %addr.host_port(), "connecting timed out");
                Failure {
                    quick: false,
                    shown: None,
                }
            }
            Ok(Err(e)) => {
                tracing::info!(relay = %addr.host_port(), cause = %e, "relay unreachable");
                Failure::of(&e, started.elapsed())
            }
            Ok(Ok((tls, hello))) => {
                // Whatever was queued for the previous connection is stale: the engine
                // queues afresh, for this connection, when it hears the link is up.
                ops.clear();
                conn += 1;
                backoff = Backoff::new();
                tracing::info!(relay = %addr.host_port(), "link up");
                let _ = inputs.send(Input::LinkUp {
                    relay: relay.clone(),
                    conn,
                    tick: hello.tick,
                    tick_micros: hello.tick_micros,
                });
                let tick = Duration::from_micros(u64::from(hello.tick_micros));
                let cause = beat(
                    tls,
                    Beat {
                        size: hello.cell_size,
                        tick,
                        relay: &relay,
                        conn,
                    },
                    &mut ops,
                    &inputs,
                    &mut control,
                )
                .await;
                if control.borrow().stop {
                    return;
                }
                tracing::info!(relay = %addr.host_port(), cause = %cause, "link lost");
                Failure {
                    quick: false,
                    shown: None,
                }
            }
        };
        let wait = backoff.wait(failure.quick, random_below);
        let _ = inputs.send(Input::LinkDown {
            relay: relay.clone(),
            retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            cause: failure.shown,
        });
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                changed = control.changed() => {
                    if changed.is_err() || control.borrow().stop {
                        return;
                    }
                    // Asked to reconnect: now, and with short waits again.
                    backoff = Backoff::new();
                    break;
                }
                Some(_) = ops.rx.recv() => {}
            }
        }
    }
}

/// One connection's beat.
struct Beat<'a> {
    size: usize,
    tick: Duration,
    relay: &'a RelayAddr,
    conn: u64,
}

async fn beat(
    mut tls: hum_relay::TlsStream,
    Beat {
        size,
        tick,
        relay,
        conn,
    }: Beat<'_>,
    ops: &mut LinkOps,
    inputs: &UnboundedSender<Input>,
    control: &mut watch::Receiver<LinkControl>,
) -> String {
    let mut next = ops.build_cell(conn, size);
    let mut buf = vec![0u8; size];
    // A relay that misses this many beats in a row is gone.
    let silence = (tick * 50).max(Duration::from_secs(5));
    // One cell goes up for every cell that comes down: one count serves both rates.
    let mut cells = 0u32;
    let mut since = tokio::time::Instant::now();
    loop {
        let read = {
            // A cell read must not be cut short (the stream would lose its framing): a
            // reconnect request while up leaves it running and changes nothing.
            let reading = tokio::time::timeout(silence, read_cell(&mut tls, &mut buf));
            tokio::pin!(reading);
            loop {
                tokio::select! {
                    r = &mut reading => break r,
                    changed = control.changed() => {
                        if changed.is_err() || control.borrow().stop {
                            return "stopped".into();
                        }
                    }
                }
            }
        };
        match read {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return "the relay stopped beating".into(),
        }
        // The answer leaves after a random wait of up to a quarter tick: the few
        // microseconds the client's own load adds or removes vanish in that spread, so the
        // answer's timing tells an observer nothing about what the client is doing.
        let wait = answer_jitter(tick);
        if !wait.is_zero() {
            // A plain sleep of this link's own thread: microsecond precision, where the
            // runtime's timer would round to whole milliseconds (and its rounding would
            // drift against the beat). Nothing else runs on this thread.
            std::thread::sleep(wait);
        }
        if let Err(e) = write_cell(&mut tls, &next, size).await {
            return e.to_string();
        }
        cells += 1;
        match decode_cell::<Down>(&buf, size) {
            Ok(ops) => {
                for op in ops {
                    let _ = inputs.send(Input::Down {
                        relay: relay.clone(),
                        op,
                    });
                }
            }
            Err(e) => return format!("the relay sent a bad cell: {e}"),
        }
        next = ops.build_cell(conn, size);
        if since.elapsed() >= Duration::from_secs(1) {
            let secs = since.elapsed().as_secs_f64();
            let rate = |n: u32| (f64::from(n) / secs).round() as u32;
            let _ = inputs.send(Input::Rates {
                relay: relay.clone(),
                up: rate(cells),
                down: rate(cells),
            });
            cells = 0;
            since = tokio::time::Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(quick: bool, n: usize, random: fn(Duration) -> Duration) -> Vec<Duration> {
        let mut b = Backoff::new();
        (0..n).map(|_| b.wait(quick, random)).collect()
    }

    #[test]
    fn waits_double_up_to_their_cap() {
        let most = |span: Duration| span;
        let slow = waits(false, 12, most);
        assert_eq!(slow[0], FIRST_BACKOFF);
        assert_eq!(slow[1], FIRST_BACKOFF * 2);
        assert_eq!(slow[11], MAX_BACKOFF);
        assert!(slow.windows(2).all(|w| w[0] <= w[1]));
        // A relay that refuses at once is tried again within two seconds, however long
        // it has been away.
        let quick = waits(true, 12, most);
        assert_eq!(quick[11], QUICK_MAX_BACKOFF);
        assert!(quick.iter().all(|w| *w <= QUICK_MAX_BACKOFF));
    }

    #[test]
    fn waits_are_drawn_between_half_and_all() {
        let least = |_: Duration| Duration::ZERO;
        let quick = waits(true, 12, least);
        assert_eq!(quick[0], FIRST_BACKOFF / 2);
        assert_eq!(quick[11], QUICK_MAX_BACKOFF / 2);
        // A random source that overshoots is held to the full wait.
        let over = |span: Duration| span * 3;
        assert_eq!(waits(false, 1, over)[0], FIRST_BACKOFF);
        for _ in 0..100 {
            let w = Backoff::new().wait(false, random_below);
            assert!(w >= FIRST_BACKOFF / 2 && w <= FIRST_BACKOFF, "{w:?}");
        }
    }

    #[test]
    fn only_causes_that_waiting_does_not_fix_are_shown() {
        use hum_relay::ConnectError as E;
        let refused = E::Io(std::io::ErrorKind::ConnectionRefused.into());
        let quick = Failure::of(&refused, Duration::from_millis(1));
        assert_eq!((quick.quick, quick.shown), (true, None));
        assert!(!Failure::of(&refused, Duration::from_secs(2)).quick);
        let reset = Failure::of(
            &E::Io(std::io::ErrorKind::ConnectionReset.into()),
            Duration::ZERO,
        );
        assert_eq!((reset.quick, reset.shown), (false, None));
        let wrong = Failure::of(&E::WrongCertificate, Duration::ZERO);
        assert_eq!(
            wrong.shown.as_deref(),
            Some("the relay's certificate does not match the fingerprint in its address")
        );
    }
}
