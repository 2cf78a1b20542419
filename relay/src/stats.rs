//! Counters and the periodic one-line stats log. Counts only: never ids, addresses or
//! contents.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::shutdown::Shutdown;
use crate::v1::mailbox::Store;

/// hum/2 counters: one field per counted event or reason (counts only, never ids).
macro_rules! route_counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// The hum/2 roles' counters.
        #[derive(Debug, Default)]
        pub(crate) struct RouteStats {
            $(pub(crate) $name: AtomicU64,)*
        }

        /// A snapshot of the hum/2 roles' counters (counts only, since start unless
        /// said otherwise).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct RouteSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl RouteStats {
            pub(crate) fn snapshot(&self) -> RouteSnapshot {
                RouteSnapshot {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

route_counters! {
    /// hum/2 clients connected now.
    clients,
    /// hum/2 down cells sent.
    cells_out,
    /// hum/2 up cells received.
    cells_in,
    /// hum/2 clients refused: their home relay's batch is full.
    refused_home_full,
    /// hum/2 clients refused: they named this entry relay as home in a mesh.
    refused_home_is_entry,
    /// hum/2 clients refused: they named a home relay this entry relay does not link to.
    refused_unknown_home,
    /// Entry: slot batches sent to mailbox relays.
    batches_sent,
    /// Entry: padding slots sealed.
    dummies_sealed,
    /// Entry: clients whose up cell for a tick had not come when its batch left (a
    /// dummy took the place; the client, or a load generator, fell behind).
    slots_missing,
    /// Entry: reply batches that did not come back in time.
    replies_missing,
    /// Home: slots opened.
    slots_opened,
    /// Home: slots that held a dummy.
    slots_dummy,
    /// Home: slots that did not open or decode (answered with random bytes).
    slots_bad,
    /// Home: slots refused as replays.
    slots_replayed,
    /// Home: slots naming a slot key not held.
    slots_unknown_key,
    /// Home: clear slots refused (only the single relay takes them).
    slots_clear_refused,
    /// Home: deposits forwarded to a destination relay.
    forwarded,
    /// Home: forwarded deposits whose destination did not answer in time.
    forward_late,
    /// Destination: inner blobs that did not open or decode.
    inner_bad,
    /// Deposits stored.
    stored,
    /// Deposits answered `Full`.
    full,
    /// Deposits answered `Retry` (wrong epoch).
    retry,
    /// Catch-up requests answered.
    catch_ups,
    /// Catch-up requests out of range (a rank beyond the page, a bucket the relay does
    /// not have, an epoch after the next), answered as finding nothing.
    catch_ups_refused,
    /// Catch-up requests in slots of even ticks (no reply item to carry them; not
    /// answered).
    catch_ups_even,
    /// Copies deleted with a valid proof.
    deleted,
    /// Stream batches sent (to each entry relay).
    streams_sent,
    /// Items expired at their TTL.
    expired,
    /// Relay links up now.
    links_up,
    /// Links closed: the peer sent bytes that do not decode.
    link_garbage,
    /// Links closed: the peer sent a frame of a size the link does not carry.
    link_wrong_size,
    /// Links closed: the peer stayed silent.
    link_silent,
    /// Links closed: the peer did not read what we sent.
    link_lagging,
    /// Links closed by the peer or the network.
    link_closed,
    /// Links refused at the hello (another relay, tick, capacity or role).
    link_refused,
}

/// Why a connection ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The client closed it, or the socket failed.
    Closed,
    /// It sent a cell that does not decode.
    Garbage,
    /// It sent more cells than it was sent, or more requests than can be answered.
    Flood,
    /// It fell more than the allowed number of ticks behind.
    Lagging,
    /// The relay is shutting down.
    Shutdown,
    /// The relay refused to serve it (hum/2: its home relay; counted on its own).
    Refused,
}

/// The relay's counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) clients: AtomicUsize,
    pub(crate) cells_out: AtomicU64,
    pub(crate) cells_in: AtomicU64,
    pub(crate) deposits: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) handshakes_failed: AtomicU64,
    pub(crate) dropped_garbage: AtomicU64,
    pub(crate) dropped_flood: AtomicU64,
    pub(crate) dropped_lagging: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) route: RouteStats,
}

/// A snapshot of the relay's counters (counts only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Clients connected now.
    pub clients: usize,
    /// Cells sent since start.
    pub cells_out: u64,
    /// Cells received since start.
    pub cells_in: u64,
    /// Envelopes stored since start.
    pub deposits: u64,
    /// Deposits answered `Full` since start.
    pub refused: u64,
    /// Envelopes delivered since start.
    pub delivered: u64,
    /// Connections that failed the TLS handshake or hello.
    pub handshakes_failed: u64,
    /// Clients dropped for sending a cell that does not decode.
    pub dropped_garbage: u64,
    /// Clients dropped for sending more than their share.
    pub dropped_flood: u64,
    /// Clients dropped for falling too far behind the beat.
    pub dropped_lagging: u64,
    /// Envelopes deleted at their TTL since start.
    pub expired: u64,
    /// Mailboxes held now.
    pub mailboxes: usize,
    /// Envelopes held now.
    pub envelopes: usize,
    /// Envelope bytes held now.
    pub bytes: usize,
    /// The hum/2 roles' counters.
    pub route: RouteSnapshot,
    /// hum/2 items held now (mailbox role).
    pub items: usize,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn ended(&self, how: Ending) {
        let c = match how {
            Ending::Garbage => &self.dropped_garbage,
            Ending::Flood => &self.dropped_flood,
            Ending::Lagging => &self.dropped_lagging,
            Ending::Closed | Ending::Shutdown | Ending::Refused => return,
        };
        Self::add(c, 1);
    }

    pub(crate) fn snapshot(&self, store: &Store) -> StatsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let held = store.counts();
        StatsSnapshot {
            clients: self.clients.load(Ordering::Relaxed),
            cells_out: load(&self.cells_out),
            cells_in: load(&self.cells_in),
            deposits: load(&self.deposits),
            refused: load(&self.refused),
            delivered: load(&self.delivered),
            handshakes_failed: load(&self.handshakes_failed),
            dropped_garbage: load(&self.dropped_garbage),
            dropped_flood: load(&self.dropped_flood),
            dropped_lagging: load(&self.dropped_lagging),
            expired: load(&self.expired),
            mailboxes: held.mailboxes,
            envelopes: held.envelopes,
            bytes: held.bytes,
            route: self.route.snapshot(),
            items: 0,
        }
    }
}

/// Writes one stats line every `every` until shutdown.
pub(crate) async fn log_every(
    every: Duration,
    stats: &Stats,
    store: &Store,
    mut shutdown: Shutdown,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    let mut last = stats.snapshot(store);
    let mut last_at = Instant::now();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.recv() => return,
        }
        let now = stats.snapshot(store);
        let secs = last_at.elapsed().as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs;
        tracing::info!(
            clients = now.clients,
            cells_out_per_s = format_args!("{:.0}", rate(now.cells_out, last.cells_out)),
            cells_in_per_s = format_args!("{:.0}", rate(now.cells_in, last.cells_in)),
            mailboxes = now.mailboxes,
            envelopes = now.envelopes,
            bytes_held = now.bytes,
            dropped = (now.dropped_garbage + now.dropped_flood + now.dropped_lagging)
                - (last.dropped_garbage + last.dropped_flood + last.dropped_lagging),
            hum2_clients = now.route.clients,
            links_up = now.route.links_up,
            stored = now.route.stored - last.route.stored,
            full = now.route.full - last.route.full,
            slots_dropped = bad_slots(&now.route) - bad_slots(&last.route),
            slots_missing = now.route.slots_missing - last.route.slots_missing,
            links_closed = closed_links(&now.route) - closed_links(&last.route),
            refused = refusals(&now.route) - refusals(&last.route),
            "stats"
        );
        last = now;
        last_at = Instant::now();
    }
}

/// Slots dropped, for every reason (counts only).
fn bad_slots(r: &RouteSnapshot) -> u64 {
    r.slots_bad + r.slots_replayed + r.slots_unknown_key + r.slots_clear_refused + r.inner_bad
}

/// Links closed for a fault of the peer.
fn closed_links(r: &RouteSnapshot) -> u64 {
    r.link_garbage + r.link_wrong_size + r.link_silent + r.link_lagging + r.link_refused
}

/// hum/2 clients refused.
fn refusals(r: &RouteSnapshot) -> u64 {
    r.refused_home_full + r.refused_home_is_entry + r.refused_unknown_home
}
