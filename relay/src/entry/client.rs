//! One hum/2 client connection: its own task, on the beat, as in hum/1 (`v1/connection.rs`):
//! exactly one down cell per tick, at most one up cell accepted per cell sent. A client
//! that sends a cell that does not decode, floods, or falls more than `max_lag` ticks
//! behind is dropped; one whose home relay the entry role will not serve is sent a
//! refusal cell and closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use hum_shared::route::{CELL_LEN, UpCell, log_digest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio_rustls::server::TlsStream;

use super::ConnId;
use crate::curious::or_null;
use crate::shutdown::Shutdown;
use crate::state::Shared;
use crate::stats::{Ending, Stats};

/// What a hum/2 client connection needs from the relay.
pub(crate) struct ClientHandler {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ticks: watch::Receiver<u64>,
    pub(crate) shutdown: Shutdown,
    /// Held until the end: the relay waits for every `done` before it stops.
    pub(crate) done: mpsc::Sender<()>,
    /// Held until the end: a slot under `max_clients`.
    pub(crate) permit: OwnedSemaphorePermit,
}

enum Event {
    Shutdown,
    Tick(u64),
    Read(std::io::Result<usize>),
}

struct Conn {
    stream: TlsStream<TcpStream>,
    shared: Arc<Shared>,
    ticks: watch::Receiver<u64>,
    id: ConnId,
    /// The last beat (relative) a cell was sent for.
    sent_beat: u64,
    /// The beat (relative) of the down cell the last up cell answered: up cells answer
    /// down cells one for one and in order, whenever the relay gets to read them.
    answered_beat: u64,
    sent: u64,
    received: u64,
    inbuf: Box<[u8; CELL_LEN]>,
    filled: usize,
}

impl ClientHandler {
    /// Says hello, then serves the client until it ends.
    pub(crate) async fn serve(self, mut tls: TlsStream<TcpStream>, peer: SocketAddr) {
        let ClientHandler {
            shared,
            mut ticks,
            mut shutdown,
            done,
            permit,
        } = self;
        let Some(entry) = shared.entry.as_ref() else {
            return;
        };
        let beat = *ticks.borrow_and_update();
        let config = &shared.config;
        let hello = entry.hello(
            shared.tick_base + beat,
            config.tick_micros(),
            u32::try_from(config.ttl.as_secs()).unwrap_or(u32::MAX),
        );
        let said = async {
            let bytes = hello.encode().ok()?;
            tls.write_all(&bytes).await.ok()?;
            tls.flush().await.ok()
        };
        let ok = tokio::select! {
            r = tokio::time::timeout(config.handshake_timeout, said) => r.ok().flatten().is_some(),
            () = shutdown.recv() => return,
        };
        if !ok {
            Stats::add(&shared.stats.handshakes_failed, 1);
            return;
        }
        let id = entry.register(peer);
        shared.stats.route.clients.fetch_add(1, Ordering::Relaxed);
        shared
            .curious
            .record("entry", "connect", shared.now_tick(), || {
                format!(r#""conn":{id},"peer":"{peer}""#)
            });
        let mut conn = Conn {
            stream: tls,
            shared: Arc::clone(&shared),
            ticks,
            id,
            sent_beat: beat,
            answered_beat: beat,
            sent: 0,
            received: 0,
            inbuf: Box::new([0; CELL_LEN]),
            filled: 0,
        };
        let ending = conn.run(&mut shutdown).await;
        entry.unregister(id);
        shared.stats.route.clients.fetch_sub(1, Ordering::Relaxed);
        shared
            .curious
            .record("entry", "disconnect", shared.now_tick(), || {
                format!(r#""conn":{id}"#)
            });
        shared.stats.ended(ending);
        if ending == Ending::Shutdown {
            let _ = tokio::time::timeout(shared.config.tick, conn.stream.shutdown()).await;
        }
        drop((done, permit));
    }
}

impl Conn {
    async fn run(&mut self, shutdown: &mut Shutdown) -> Ending {
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
                    if self.filled == CELL_LEN {
                        self.filled = 0;
                        self.receive().await
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

    /// Sends the cells owed up to beat `t`, each built for its own tick.
    async fn beat(&mut self, t: u64) -> Result<(), Ending> {
        let shared = Arc::clone(&self.shared);
        let Some(entry) = shared.entry.as_ref() else {
            return Err(Ending::Shutdown);
        };
        let (max_lag, tick) = (shared.config.max_lag, shared.config.tick);
        let due = t.saturating_sub(self.sent_beat);
        if due == 0 {
            return Ok(());
        }
        if due > max_lag {
            return Err(Ending::Lagging);
        }
        let patience = tick * u32::try_from(max_lag).unwrap_or(u32::MAX);
        for beat in self.sent_beat + 1..=t {
            let abs = shared.tick_base + beat;
            let cell = entry.down_cell(self.id, abs);
            if shared.curious.on() {
                let (home, bucket) = entry
                    .home_of(self.id)
                    .map_or((None, 0), |(h, _, b)| (Some(h.to_string()), b));
                shared.curious.record("entry", "item", abs, || {
                    format!(
                        r#""conn":{},"home":{},"bucket":{bucket},"live":{},"item":"{}""#,
                        self.id,
                        or_null(home),
                        abs.is_multiple_of(2),
                        log_digest(cell.item.as_bytes())
                    )
                });
            }
            let bytes = cell.encode();
            let stream = &mut self.stream;
            let mut write = std::pin::pin!(async {
                stream.write_all(&bytes[..]).await?;
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
        }
        self.sent += due;
        self.sent_beat = t;
        Stats::add(&shared.stats.route.cells_out, due);
        if self.sent - self.received > max_lag {
            return Err(Ending::Lagging);
        }
        Ok(())
    }

    /// Takes one up cell.
    async fn receive(&mut self) -> Result<(), Ending> {
        let shared = Arc::clone(&self.shared);
        let Some(entry) = shared.entry.as_ref() else {
            return Err(Ending::Shutdown);
        };
        self.received += 1;
        Stats::add(&shared.stats.route.cells_in, 1);
        if self.received > self.sent {
            return Err(Ending::Flood);
        }
        let cell = UpCell::decode(&self.inbuf[..]).map_err(|_| Ending::Garbage)?;
        // Not the last beat sent: a cell read after the next down cell went out (a late
        // client, or this task late to read) still answers its own tick's down cell, and
        // its slot is sealed for that tick.
        self.answered_beat += 1;
        let tick = shared.tick_base + self.answered_beat;
        shared.curious.record("entry", "slot", tick, || {
            format!(
                r#""conn":{},"home":"{}","epoch":{},"bucket":{},"slot":"{}""#,
                self.id,
                cell.home,
                cell.epoch,
                cell.bucket,
                log_digest(cell.slot.as_bytes())
            )
        });
        if let Err(refusal) = entry.on_up(self.id, tick, cell) {
            let counter = match refusal {
                hum_shared::route::Refusal::HomeFull => &shared.stats.route.refused_home_full,
                hum_shared::route::Refusal::HomeIsEntry => {
                    &shared.stats.route.refused_home_is_entry
                }
                _ => &shared.stats.route.refused_unknown_home,
            };
            Stats::add(counter, 1);
            tracing::debug!(reason = refusal.reason(), "client refused");
            let cell = refusal.encode();
            let bye = async {
                self.stream.write_all(&cell[..]).await?;
                self.stream.shutdown().await
            };
            let _ = tokio::time::timeout(shared.config.tick * 2, bye).await;
            return Err(Ending::Refused);
        }
        Ok(())
    }
}
