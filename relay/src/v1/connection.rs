//! One client connection: its own task, so a slow client never delays anyone's beat.
//!
//! The task waits on three things at once: the beat (send the cells this tick owes),
//! the socket (read the client's cells, a few bytes at a time, cancel-safe), and
//! shutdown. It sends exactly one cell per tick and accepts at most one cell per cell
//! sent. A client that sends a cell that does not decode, more cells than it was sent,
//! or more requests than can be answered is dropped; so is one that falls more than
//! `max_lag` ticks behind, whether it stops answering or stops reading.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use hum_shared::{CellWriter, Down, HELLO_LEN, HelloV1, Up, decode_cell};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio_rustls::server::TlsStream;

use crate::shutdown::Shutdown;
use crate::state::Shared;
use crate::stats::{Ending, Stats};
use crate::v1::mailbox::Sub;

/// Most answers a connection may have waiting; a client that asks for more than the
/// downstream cells can carry is flooding.
const MAX_ANSWERS: usize = 1024;

/// What a client connection needs from the relay: its shared state, the beat, the
/// shutdown signal, and the two things it holds until it ends (the relay's count of
/// live connections and its slot under the connection cap).
pub(crate) struct Handler {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ticks: watch::Receiver<u64>,
    pub(crate) shutdown: Shutdown,
    /// Held until the end: the relay waits for every `done` before it stops.
    pub(crate) done: mpsc::Sender<()>,
    /// Held until the end: a slot under `max_clients`.
    pub(crate) permit: OwnedSemaphorePermit,
}

impl Handler {
    /// Says hello on a TLS stream that agreed on ALPN `hum/1`, then serves one client
    /// until it ends.
    pub(crate) async fn serve(self, mut tls: TlsStream<TcpStream>) {
        let Handler {
            shared,
            mut ticks,
            mut shutdown,
            done,
            permit,
        } = self;
        let config = &shared.config;
        let handshake = async {
            let tick = *ticks.borrow_and_update();
            let hello = HelloV1 {
                cell_size: config.cell_size,
                tick_micros: config.tick_micros(),
                ttl_secs: config.ttl.as_secs(),
                tick,
            };
            let bytes: [u8; HELLO_LEN] = hello.encode();
            tls.write_all(&bytes).await.ok()?;
            tls.flush().await.ok()?;
            Some((tls, tick))
        };
        let opened = tokio::select! {
            r = tokio::time::timeout(config.handshake_timeout, handshake) => r.ok().flatten(),
            () = shutdown.recv() => return,
        };
        let Some((stream, tick)) = opened else {
            Stats::add(&shared.stats.handshakes_failed, 1);
            return;
        };
        shared.stats.clients.fetch_add(1, Ordering::Relaxed);
        let mut conn = Connection {
            inbuf: vec![0; config.cell_size].into_boxed_slice(),
            stream,
            shared: Arc::clone(&shared),
            ticks,
            sent_tick: tick,
            sent: 0,
            received: 0,
            subs: Vec::new(),
            turn: 0,
            answers: VecDeque::new(),
            filled: 0,
        };
        // The client's life runs in a task of its own: the memory the handshake needed is
        // given back now instead of staying reserved in this task for the connection's life.
        // An async block, not an async fn taking the connection by value: a value argument
        // is stored twice in the future (rust-lang/rust#62958), and this future is what
        // every idle client costs.
        tokio::spawn(async move {
            let ending = conn.run(&mut shutdown).await;
            conn.end(ending).await;
            // Held until the end: the relay waits for every `done`; `permit` is a slot.
            drop((done, permit));
        });
    }
}

impl Connection {
    async fn end(&mut self, ending: Ending) {
        let shared = &self.shared;
        shared.store.unsubscribe_all(&self.subs);
        shared.stats.clients.fetch_sub(1, Ordering::Relaxed);
        shared.stats.ended(ending);
        tracing::debug!(ending = ?ending, "client left");
        if ending == Ending::Shutdown {
            let _ = tokio::time::timeout(shared.config.tick, self.stream.shutdown()).await;
        }
    }
}

/// What woke the connection task.
enum Event {
    Shutdown,
    Tick(u64),
    Read(std::io::Result<usize>),
}

/// The state of one client on the beat.
struct Connection {
    stream: TlsStream<TcpStream>,
    shared: Arc<Shared>,
    ticks: watch::Receiver<u64>,
    /// The last tick a cell was sent for.
    sent_tick: u64,
    sent: u64,
    received: u64,
    subs: Vec<Sub>,
    /// Which subscription delivers first in the next cell.
    turn: usize,
    answers: VecDeque<Down>,
    inbuf: Box<[u8]>,
    filled: usize,
}

impl Connection {
    async fn run(&mut self, shutdown: &mut Shutdown) -> Ending {
        // One shutdown future for the connection's life: made anew on every event, it
        // would join and leave the signal's waiter list (a lock shared by every client)
        // twice per tick.
        let mut shutdown = std::pin::pin!(shutdown.recv());
        loop {
            let event = tokio::select! {
                biased;
                () = &mut shutdown => Event::Shutdown,
                changed = self.ticks.changed() => match changed {
                    Ok(()) => Event::Tick(*self.ticks.borrow_and_update()),
                    Err(_) => Event::Shutdown,
                },
                read = self.stream.read(&mut self.inbuf[self.filled..]) => Event::Read(read),
            };
            let step = match event {
                Event::Shutdown => Err(Ending::Shutdown),
                Event::Tick(t) => self.beat(t).await,
                Event::Read(Ok(0) | Err(_)) => Err(Ending::Closed),
                Event::Read(Ok(n)) => {
                    self.filled += n;
                    if self.filled == self.inbuf.len() {
                        self.filled = 0;
                        self.receive()
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(ending) = step {
                return ending;
            }
        }
    }

    /// Sends the cells owed up to tick `t` (one, unless this task ran late), without
    /// waiting more than `max_lag` ticks for a client that does not read.
    async fn beat(&mut self, t: u64) -> Result<(), Ending> {
        // Plain copies: no reference count touched per client per tick (that counter's
        // cache line would bounce between cores).
        let (max_lag, tick) = (self.shared.config.max_lag, self.shared.config.tick);
        let due = t.saturating_sub(self.sent_tick);
        if due == 0 {
            return Ok(());
        }
        if due > max_lag {
            return Err(Ending::Lagging);
        }
        let built = self.build_cells(due);
        let patience = tick * u32::try_from(max_lag).unwrap_or(u32::MAX);
        let (stream, cover, cell_size) = (
            &mut self.stream,
            &self.shared.cover[..],
            self.shared.config.cell_size,
        );
        let mut write = std::pin::pin!(async {
            // One write per cell: each cell is its own TLS record, so an observer sees the
            // same record size even when this task ran late and owes several cells.
            let mut built = built.chunks(cell_size);
            for _ in 0..due {
                // The shared cover cell stands for every cell not built.
                let cell = built.next().unwrap_or(cover);
                stream.write_all(cell).await?;
            }
            stream.flush().await
        });
        // Almost always the socket takes the cell at once: only a write that has to
        // wait arms a timer (a timer per client per tick costs CPU for nothing).
        let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
        let written = match first {
            Poll::Ready(r) => r,
            Poll::Pending => tokio::time::timeout(patience, write)
                .await
                .map_err(|_| Ending::Lagging)?,
        };
        written.map_err(|_| Ending::Closed)?;
        self.sent += due;
        self.sent_tick = t;
        Stats::add(&self.shared.stats.cells_out, due);
        if self.sent - self.received > max_lag {
            return Err(Ending::Lagging);
        }
        Ok(())
    }

    /// The `due` cells owed, back to back; none at all when they would all be cover
    /// cells (an idle client, the common case: it is then sent the shared cover cell,
    /// and nothing is allocated or copied for it).
    fn build_cells(&mut self, due: u64) -> Vec<u8> {
        if self.answers.is_empty() && !self.shared.store.has_pending(&self.subs) {
            return Vec::new();
        }
        let size = self.shared.config.cell_size;
        let mut cells = Vec::with_capacity(size.saturating_mul(usize::try_from(due).unwrap_or(1)));
        for _ in 0..due {
            self.build_cell(&mut cells);
        }
        cells
    }

    /// Appends one cell to `out`: waiting answers first, then deliveries, as many as fit;
    /// a cover cell when there is nothing.
    fn build_cell(&mut self, out: &mut Vec<u8>) {
        let shared = &self.shared;
        let Ok(mut w) = CellWriter::new(shared.config.cell_size) else {
            // The cell size was validated at start.
            out.extend_from_slice(&shared.cover);
            return;
        };
        while let Some(a) = self.answers.front() {
            if w.push(a).is_err() {
                break;
            }
            self.answers.pop_front();
        }
        if self.answers.is_empty() {
            // An idle client keeps no room for answers it is not waiting for.
            self.answers.shrink_to_fit();
        }
        let n = shared.store.fill(&mut self.subs, &mut self.turn, &mut w);
        Stats::add(&shared.stats.delivered, n as u64);
        out.extend_from_slice(&w.finish());
    }

    /// Applies the operations of one received cell.
    fn receive(&mut self) -> Result<(), Ending> {
        let shared = &self.shared;
        self.received += 1;
        Stats::add(&shared.stats.cells_in, 1);
        if self.received > self.sent {
            return Err(Ending::Flood);
        }
        let ops =
            decode_cell::<Up>(&self.inbuf, shared.config.cell_size).map_err(|_| Ending::Garbage)?;
        for op in ops {
            match op {
                Up::Deposit {
                    tag,
                    mailbox,
                    fanout,
                    envelope,
                } => {
                    let answer = match shared.store.deposit(mailbox, fanout, envelope) {
                        Ok(_) => {
                            Stats::add(&shared.stats.deposits, 1);
                            Down::Stored { tag }
                        }
                        Err(_) => {
                            Stats::add(&shared.stats.refused, 1);
                            Down::Full { tag }
                        }
                    };
                    self.answers.push_back(answer);
                }
                Up::Subscribe { capability, after } => {
                    let id = capability.mailbox_id();
                    if let Some(s) = self.subs.iter_mut().find(|s| s.id == id) {
                        s.cursor = after;
                    } else if self.subs.len() < shared.config.max_subscriptions {
                        shared.store.subscribe(id);
                        // Most clients follow one or two mailboxes: no spare room.
                        self.subs.reserve_exact(1);
                        self.subs.push(Sub { id, cursor: after });
                    } else {
                        // Over the limit: no subscription, so no answer.
                        continue;
                    }
                    self.answers.push_back(Down::Subscribed { mailbox: id });
                }
                Up::Unsubscribe { mailbox } => {
                    if let Some(i) = self.subs.iter().position(|s| s.id == mailbox) {
                        self.subs.swap_remove(i);
                        shared.store.unsubscribe(mailbox);
                    }
                }
                Up::Ack { mailbox, seq } => {
                    // Only a subscriber (a holder of the capability) may delete.
                    if self.subs.iter().any(|s| s.id == mailbox) {
                        shared.store.ack(mailbox, seq);
                    }
                }
            }
        }
        if self.answers.len() > MAX_ANSWERS {
            return Err(Ending::Flood);
        }
        Ok(())
    }
}
