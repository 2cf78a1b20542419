//! One relay link: TLS to the relay, then exactly one cell back for every cell received.
//!
//! The next upstream cell is built right after the previous one is sent, from whatever the
//! engine queued, so the answer to a beat is written the moment the beat arrives and its
//! timing never depends on what it carries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hum_shared::{CellWriter, Down, RelayAddr, Up, decode_cell, read_cell, write_cell};
use tokio::sync::{mpsc::UnboundedSender, watch};

use super::Input;

/// First wait before reconnecting; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long TCP, TLS and the hello may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the next cell from the queue: as many operations as fit, in order.
pub(crate) fn build_cell(queue: &Mutex<VecDeque<Up>>, size: usize) -> Vec<u8> {
    let Ok(mut w) = CellWriter::new(size) else {
        return vec![0; size];
    };
    if let Ok(mut q) = queue.lock() {
        while let Some(op) = q.front() {
            if !w.fits(op) {
                break;
            }
            if let Some(op) = q.pop_front()
                && w.push(&op).is_err()
            {
                break;
            }
        }
    }
    w.finish()
}

/// A uniformly random wait in [0, tick / 4).
fn answer_jitter(tick: Duration) -> Duration {
    let span = u64::try_from(tick.as_micros() / 4).unwrap_or(u64::MAX);
    if span == 0 {
        return Duration::ZERO;
    }
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return Duration::ZERO;
    }
    Duration::from_micros(u64::from_le_bytes(b) % span)
}

/// Runs a link until `stop` turns true, reconnecting with backoff.
pub(crate) async fn run(
    relay: String,
    queue: Arc<Mutex<VecDeque<Up>>>,
    inputs: UnboundedSender<Input>,
    mut stop: watch::Receiver<bool>,
) {
    let addr: RelayAddr = match relay.parse() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(cause = %e, "a relay address does not parse; the link stays down");
            let _ = inputs.send(Input::LinkDown {
                relay,
                retry_in_ms: u64::MAX,
            });
            return;
        }
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *stop.borrow() {
            return;
        }
        let connected = tokio::select! {
            r = tokio::time::timeout(CONNECT_TIMEOUT, hum_relay::connect(&addr)) => r,
            _ = stop.changed() => return,
        };
        match connected {
            Err(_) => tracing::info!(relay = %addr.host_port(), "connecting timed out"),
            Ok(Err(e)) => {
                tracing::info!(relay = %addr.host_port(), cause = %e, "relay unreachable")
            }
            Ok(Ok((tls, hello))) => {
                // Whatever was queued for the previous connection is stale: the engine
                // queues afresh when it hears the link is up.
                if let Ok(mut q) = queue.lock() {
                    q.clear();
                }
                backoff = FIRST_BACKOFF;
                tracing::info!(relay = %addr.host_port(), "link up");
                let _ = inputs.send(Input::LinkUp {
                    relay: relay.clone(),
                    tick: hello.tick,
                    tick_micros: hello.tick_micros,
                });
                let tick = Duration::from_micros(u64::from(hello.tick_micros));
                let cause = beat(
                    tls,
                    hello.cell_size,
                    tick,
                    &relay,
                    &queue,
                    &inputs,
                    &mut stop,
                )
                .await;
                if *stop.borrow() {
                    return;
                }
                tracing::info!(relay = %addr.host_port(), cause = %cause, "link lost");
            }
        }
        let wait = backoff;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        let _ = inputs.send(Input::LinkDown {
            relay: relay.clone(),
            retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn beat(
    mut tls: hum_relay::TlsStream,
    size: usize,
    tick: Duration,
    relay: &str,
    queue: &Mutex<VecDeque<Up>>,
    inputs: &UnboundedSender<Input>,
    stop: &mut watch::Receiver<bool>,
) -> String {
    let mut next = build_cell(queue, size);
    let mut buf = vec![0u8; size];
    // A relay that misses this many beats in a row is gone.
    let silence = (tick * 50).max(Duration::from_secs(5));
    // One cell goes up for every cell that comes down: one count serves both rates.
    let mut cells = 0u32;
    let mut since = tokio::time::Instant::now();
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(silence, read_cell(&mut tls, &mut buf)) => r,
            _ = stop.changed() => return "stopped".into(),
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
                        relay: relay.to_owned(),
                        op,
                    });
                }
            }
            Err(e) => return format!("the relay sent a bad cell: {e}"),
        }
        next = build_cell(queue, size);
        if since.elapsed() >= Duration::from_secs(1) {
            let secs = since.elapsed().as_secs_f64();
            let rate = |n: u32| (f64::from(n) / secs).round() as u32;
            let _ = inputs.send(Input::Rates {
                relay: relay.to_owned(),
                up: rate(cells),
                down: rate(cells),
            });
            cells = 0;
            since = tokio::time::Instant::now();
        }
    }
}
