//! The observer: a recording TCP proxy that sees what a network observer sees on one path
//! (a client and its relay, or two relays): when each connection opens, and the size and
//! time of every TLS record on every connection, in both directions.
//!
//! It does not decrypt anything; it parses only the 5-byte TLS record headers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Which way a record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to relay.
    Up,
    /// Relay to client.
    Down,
}

/// One TLS record as the observer saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    /// Which connection through the proxy (0 is the first accepted).
    pub conn: u32,
    /// Which way.
    pub direction: Direction,
    /// Seconds since the proxy started, when its last byte passed.
    pub at: f64,
    /// The TLS content type (23 for application data).
    pub content_type: u8,
    /// The record's length on the wire, header included.
    pub len: usize,
}

/// A running proxy and its log.
#[derive(Debug, Clone)]
pub struct Observer {
    /// Where clients connect instead of the relay.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Record>>>,
    opened: Arc<Mutex<Vec<f64>>>,
    start: Instant,
}

impl Observer {
    /// Starts a proxy on loopback that forwards every connection to `upstream`.
    ///
    /// # Errors
    /// When it cannot listen.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let opened = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let l = log.clone();
        let o = opened.clone();
        tokio::spawn(async move {
            let mut conn = 0u32;
            while let Ok((client, _)) = listener.accept().await {
                // Every connection counts, even one the upstream refuses.
                if let Ok(mut o) = o.lock() {
                    o.push(start.elapsed().as_secs_f64());
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    conn += 1;
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, (conn, Direction::Up), l.clone(), start));
                tokio::spawn(pump(sr, cw, (conn, Direction::Down), l.clone(), start));
                conn += 1;
            }
        });
        Ok(Self {
            addr,
            log,
            opened,
            start,
        })
    }

    /// Like [`Observer::start`], on a thread with a runtime of its own (so the observer's
    /// timestamps do not wait behind the code under test). The thread lives as long as the
    /// process.
    ///
    /// # Errors
    /// When the thread, its runtime or the listener cannot start.
    pub fn start_on_own_thread(upstream: SocketAddr) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("observer".into())
            .spawn(move || {
                crate::harness::pin_to_core(0, true);
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow::Error::from(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let _ = tx.send(Observer::start(upstream).await);
                    std::future::pending::<()>().await;
                });
            })?;
        rx.recv()?
    }

    /// Everything recorded so far.
    pub fn records(&self) -> Vec<Record> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Seconds since the proxy started.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// When each connection through the proxy opened (seconds since it started), in the
    /// order they came: connection `i` of the records opened at `opened()[i]`.
    pub fn opened(&self) -> Vec<f64> {
        self.opened.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    (conn, direction): (u32, Direction),
    log: Arc<Mutex<Vec<Record>>>,
    start: Instant,
) {
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes of a record header being collected, and bytes of record body left to pass.
    let mut header: Vec<u8> = Vec::with_capacity(5);
    let mut body_left = 0usize;
    let mut current = (0u8, 0usize);
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        let at = start.elapsed().as_secs_f64();
        let mut i = 0;
        while i < n {
            if body_left == 0 {
                header.push(buf[i]);
                i += 1;
                if header.len() == 5 {
                    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
                    current = (header[0], len + 5);
                    body_left = len;
                    header.clear();
                    if body_left == 0 {
                        push(&log, conn, direction, at, current);
                    }
                }
            } else {
                let take = body_left.min(n - i);
                body_left -= take;
                i += take;
                if body_left == 0 {
                    push(&log, conn, direction, at, current);
                }
            }
        }
    }
}

fn push(
    log: &Mutex<Vec<Record>>,
    conn: u32,
    direction: Direction,
    at: f64,
    (content_type, len): (u8, usize),
) {
    if let Ok(mut l) = log.lock() {
        l.push(Record {
            conn,
            direction,
            at,
            content_type,
            len,
        });
    }
}

/// The two-sample Kolmogorov–Smirnov statistic D of `a` and `b`.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    let (n, m) = (a.len() as f64, b.len() as f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    d
}

/// The critical value of D at significance `alpha` for samples of sizes `n` and `m`
/// (the asymptotic formula: c(α) · sqrt((n + m) / (n · m)), c(α) = sqrt(-ln(α/2) / 2)).
pub fn ks_critical(alpha: f64, n: usize, m: usize) -> f64 {
    let (n, m) = (n as f64, m as f64);
    (-(alpha / 2.0).ln() / 2.0).sqrt() * ((n + m) / (n * m)).sqrt()
}

/// Gaps between consecutive records going `dir` within [from, to) (seconds).
pub fn gaps(records: &[Record], dir: Direction, from: f64, to: f64) -> Vec<f64> {
    let times: Vec<f64> = records
        .iter()
        .filter(|r| r.direction == dir && r.at >= from && r.at < to)
        .map(|r| r.at)
        .collect();
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Delay from each downstream record to the upstream record that answers it, within
/// [from, to) (seconds).
pub fn answer_delays(records: &[Record], from: f64, to: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut last_down: Option<f64> = None;
    for r in records.iter().filter(|r| r.at >= from && r.at < to) {
        match r.direction {
            Direction::Down => last_down = Some(r.at),
            Direction::Up => {
                if let Some(d) = last_down.take() {
                    out.push(r.at - d);
                }
            }
        }
    }
    out
}

/// The timing samples an observer compares between two phases of one connection, each
/// phase as [from, to): upstream gaps, downstream gaps and answer delays, named, with the
/// first phase's samples and the second's.
pub fn timing_samples(
    records: &[Record],
    (a_from, a_to): (f64, f64),
    (b_from, b_to): (f64, f64),
) -> [(&'static str, Vec<f64>, Vec<f64>); 3] {
    [
        (
            "upstream gaps",
            gaps(records, Direction::Up, a_from, a_to),
            gaps(records, Direction::Up, b_from, b_to),
        ),
        (
            "downstream gaps",
            gaps(records, Direction::Down, a_from, a_to),
            gaps(records, Direction::Down, b_from, b_to),
        ),
        (
            "answer delays",
            answer_delays(records, a_from, a_to),
            answer_delays(records, b_from, b_to),
        ),
    ]
}

/// The `p`-quantile of `v` (nearest rank; 0 for an empty sample).
pub fn quantile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let at = ((v.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    v.get(at).copied().unwrap_or(0.0)
}

/// A minimum-delay test: the probability, under the hypothesis that `a` and `b` come from
/// one distribution, of a difference between their low ends (1st percentiles) at least
/// as large as the one seen, by a permutation test with `rounds` shuffles. An observer
/// that times answers looks at their low end: there the network's noise is smallest, and
/// work the sender does only when it has something to send shows as a shift.
pub fn min_delay_p(a: &[f64], b: &[f64], rounds: usize, seed: u64) -> f64 {
    const LOW: f64 = 0.01;
    if a.is_empty() || b.is_empty() {
        return 1.0;
    }
    let seen = (quantile(a, LOW) - quantile(b, LOW)).abs();
    let mut pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    // xorshift64*: a fixed seed keeps the test repeatable.
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut as_large = 0usize;
    for _ in 0..rounds {
        for i in (1..pooled.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            pooled.swap(i, j);
        }
        let (pa, pb) = pooled.split_at(a.len());
        if (quantile(pa, LOW) - quantile(pb, LOW)).abs() >= seen {
            as_large += 1;
        }
    }
    (as_large as f64 + 1.0) / (rounds as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_delay_test_sees_a_shifted_low_end_and_not_equal_samples() {
        // The same spread of delays, one of them 50 us later at its low end only (work
        // done before some answers), and one drawn again from the same distribution.
        let base: Vec<f64> = (0..2000)
            .map(|i| 1e-3 + f64::from(i % 997) * 1e-6)
            .collect();
        let same: Vec<f64> = (0..2000)
            .map(|i| 1e-3 + f64::from((i * 7 + 3) % 997) * 1e-6)
            .collect();
        let shifted: Vec<f64> = base.iter().map(|d| d.max(1.05e-3)).collect();
        assert!(min_delay_p(&base, &same, 500, 7) > 0.05);
        assert!(min_delay_p(&base, &shifted, 500, 7) < 0.01);
    }

    #[test]
    fn ks_separates_different_samples_and_not_equal_ones() {
        let a: Vec<f64> = (0..200).map(|i| f64::from(i) / 200.0).collect();
        let b: Vec<f64> = (0..200).map(|i| f64::from(i) / 200.0 + 0.001).collect();
        let c: Vec<f64> = (0..200).map(|i| f64::from(i) / 400.0 + 0.5).collect();
        let crit = ks_critical(0.01, 200, 200);
        assert!(ks_statistic(&a, &b) < crit);
        assert!(ks_statistic(&a, &c) > crit);
        assert!((ks_critical(0.05, 100, 100) - 0.192).abs() < 0.01);
    }
}
