//! The relay's settings, with defaults justified in docs/RELAY.md.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hum_shared::{DEFAULT_CELL_SIZE, ENVELOPE_LEN, check_cell_size};

use crate::{Clock, Peer, RelayError, Role};

/// The TCP port a relay listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7667;
/// The default tick: ten cells a second each way (docs/RELAY.md).
pub const DEFAULT_TICK: Duration = Duration::from_millis(100);
/// How long an unacknowledged envelope is kept by default: 7 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// hum/2: users a bucket is sized for when the bucket count is [`BucketCount::Auto`]
/// (docs/RELAY.md, "Buckets": a bucket streams one item every second tick, five a second
/// at 100 ms, so 32 users a bucket leave each about 0.16 items a second, twice the peak
/// the proof's load measured, and keep each bucket's anonymity set at 32 or more).
pub const USERS_PER_BUCKET: usize = 32;
/// hum/2: ticks per epoch by default: one hour at 100 ms.
pub const DEFAULT_EPOCH_TICKS: u32 = 36_000;

/// Everything a relay needs to know before it binds.
///
/// ```
/// let mut config = hum_relay::Config::default();
/// config.listen = "127.0.0.1:0".parse()?;
/// config.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Address and port to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Length of one tick of the beat.
    pub tick: Duration,
    /// Size of every cell, both directions.
    pub cell_size: usize,
    /// How long an unacknowledged envelope is kept.
    pub ttl: Duration,
    /// Most clients connected at once; more wait for a free slot.
    pub max_clients: usize,
    /// Where the TLS key and certificate live. `None` makes a fresh certificate held in
    /// memory only (tests, demos): its fingerprint changes at every start.
    pub state_dir: Option<PathBuf>,
    /// Most envelopes one mailbox holds; a deposit beyond it is answered `Full`.
    pub mailbox_quota: usize,
    /// Most envelope bytes the relay holds in all; a deposit beyond it is answered `Full`.
    pub global_quota: usize,
    /// Most mailboxes one connection can subscribe to.
    pub max_subscriptions: usize,
    /// How many ticks a client may fall behind (unanswered cells, or cells it does not
    /// read) before it is dropped.
    pub max_lag: u64,
    /// How long a TLS handshake and hello may take.
    pub handshake_timeout: Duration,
    /// How often the one-line stats log is written (`None`: never).
    pub stats_every: Option<Duration>,
    /// The clock that expiry and sequence numbers follow (tests advance it).
    pub clock: Clock,
    /// hum/2: what this relay does in a mesh.
    pub role: Role,
    /// hum/2: the other relays of the mesh (none: the single relay, if `role` is both).
    pub peers: Vec<Peer>,
    /// hum/2 mailbox role: buckets per epoch, or `Auto` to size them from the users the
    /// relay may hold ([`Config::bucket_count`]).
    pub buckets: BucketCount,
    /// hum/2 mailbox role: ticks per epoch.
    pub epoch_ticks: u32,
    /// hum/2 mailbox role: bits of each flag compared in catch-up (1 to 8).
    pub flag_bits: u8,
    /// hum/2 mailbox role: most items one bucket holds in one epoch before `Full`.
    pub bucket_quota: usize,
    /// hum/2 mailbox role: most items held in all before `Full`.
    pub item_quota: usize,
    /// hum/2 mailbox role: most deposits one bucket takes from one source (a peer's
    /// batch) in one tick before `Full`, so one sender cannot jam a bucket.
    pub source_cap: usize,
    /// hum/2: ticks a peer relay may stay silent before its link is closed.
    pub link_silence: u64,
    /// hum/2 mailbox role: its directory update goes to every link this often, in ticks
    /// (and at once when its slot keys change).
    pub directory_every: u64,
    /// hum/2: the longest wait before a lost link is dialled again (the wait doubles
    /// from one tick up to this, with random jitter).
    pub max_backoff: Duration,
    /// hum/2 `curious` build: where to write what each role sees (JSON lines).
    #[cfg(feature = "curious")]
    pub curious_log: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_PORT)),
            tick: DEFAULT_TICK,
            cell_size: DEFAULT_CELL_SIZE,
            ttl: DEFAULT_TTL,
            max_clients: 10_000,
            state_dir: None,
            mailbox_quota: 1024,
            // 1 GiB of envelopes.
            global_quota: 1 << 30,
            max_subscriptions: 1024,
            max_lag: 30,
            handshake_timeout: Duration::from_secs(10),
            stats_every: Some(Duration::from_secs(60)),
            clock: Clock::system(),
            role: Role::Both,
            peers: Vec::new(),
            buckets: BucketCount::Auto,
            epoch_ticks: DEFAULT_EPOCH_TICKS,
            flag_bits: 8,
            bucket_quota: 4096,
            // About 1 GiB of items.
            item_quota: 1 << 20,
            source_cap: 8,
            link_silence: 30,
            directory_every: 10,
            max_backoff: Duration::from_secs(10),
            #[cfg(feature = "curious")]
            curious_log: None,
        }
    }
}

impl Config {
    /// A configuration for tests and embedded relays: loopback, a free port, an in-memory
    /// certificate, the given tick, no stats log.
    pub fn ephemeral(tick: Duration) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tick,
            stats_every: None,
            ..Self::default()
        }
    }

    /// Checks that the settings make sense together.
    ///
    /// # Errors
    /// [`RelayError::Config`] naming the setting that does not.
    pub fn validate(&self) -> Result<(), RelayError> {
        let bad = |what: &str| Err(RelayError::Config(what.to_owned()));
        if check_cell_size(self.cell_size).is_err() {
            return bad("cell size must be between 1024 and 65535 bytes");
        }
        if self.tick < Duration::from_millis(1) || self.tick > Duration::from_secs(60) {
            return bad("tick must be between 1 ms and 60 s");
        }
        if self.ttl < self.tick {
            return bad("ttl must be at least one tick");
        }
        if self.max_clients == 0 {
            return bad("max clients must be at least 1");
        }
        if self.mailbox_quota == 0 || self.global_quota < ENVELOPE_LEN {
            return bad("quotas must hold at least one envelope");
        }
        if self.max_lag < 2 {
            return bad("max lag must be at least 2 ticks");
        }
        if let BucketCount::Fixed(n) = self.buckets
            && (n == 0 || n > hum_shared::route::MAX_BUCKETS)
        {
            return bad("buckets must be 1 to 256");
        }
        if self.epoch_ticks < 4 {
            return bad("an epoch must be at least 4 ticks");
        }
        if hum_shared::route::flag_mask(self.flag_bits).is_err() {
            return bad("flag bits must be 1 to 8");
        }
        if self.bucket_quota == 0 || self.item_quota == 0 || self.source_cap == 0 {
            return bad("item quotas and the source cap must be at least 1");
        }
        if self.link_silence < 2 * self.directory_every.max(1) {
            return bad("link silence must be at least twice the directory interval");
        }
        if self.role == Role::Mailbox && self.peers.is_empty() {
            return bad("a mailbox relay needs peers (--peers FILE) to serve");
        }
        if self.role == Role::Entry && !self.peers.iter().any(|p| p.role.is_mailbox()) {
            return bad("an entry relay needs a mailbox relay among its peers");
        }
        Ok(())
    }

    /// The single relay: both roles and no peers (clients use it as entry and home, and
    /// it sees what a hum/1 relay sees).
    pub fn is_single(&self) -> bool {
        self.role == Role::Both && self.peers.is_empty()
    }

    /// The users this relay may hold as a mailbox relay: the single relay, its clients;
    /// otherwise the capacity of its links to relays that face clients (a mesh entry
    /// relay refuses a client that names it as home, so its own clients are homed
    /// elsewhere).
    pub fn homed_capacity(&self) -> usize {
        if self.is_single() {
            return self.max_clients;
        }
        self.peers
            .iter()
            .filter(|p| p.role.is_entry())
            .map(|p| usize::from(p.capacity))
            .sum()
    }

    /// The buckets per epoch this relay announces: the fixed count, or for `Auto`
    /// [`auto_buckets`] of [`Config::homed_capacity`].
    pub fn bucket_count(&self) -> u16 {
        match self.buckets {
            BucketCount::Fixed(n) => n,
            BucketCount::Auto => auto_buckets(self.homed_capacity()),
        }
    }

    /// The tick in microseconds, as the hello announces it.
    pub(crate) fn tick_micros(&self) -> u32 {
        u32::try_from(self.tick.as_micros()).unwrap_or(u32::MAX)
    }
}

/// hum/2 mailbox role: how many buckets an epoch has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BucketCount {
    /// One bucket per [`USERS_PER_BUCKET`] users the relay may hold, 1 to 256
    /// ([`auto_buckets`]).
    #[default]
    Auto,
    /// Exactly this many (1 to 256).
    Fixed(u16),
}

impl std::str::FromStr for BucketCount {
    type Err = String;

    /// `auto` or a count from 1 to 256.
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(BucketCount::Auto);
        }
        match s.parse::<u16>() {
            Ok(n) if (1..=hum_shared::route::MAX_BUCKETS).contains(&n) => Ok(BucketCount::Fixed(n)),
            _ => Err(format!("{s:?} is not a bucket count (auto, or 1 to 256)")),
        }
    }
}

impl std::fmt::Display for BucketCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BucketCount::Auto => f.write_str("auto"),
            BucketCount::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// The bucket count for `users` users: `ceil(users / USERS_PER_BUCKET)`, at least 1 and
/// at most 256.
///
/// ```
/// assert_eq!(hum_relay::auto_buckets(282), 9);
/// assert_eq!(hum_relay::auto_buckets(0), 1);
/// assert_eq!(hum_relay::auto_buckets(10_000), 256);
/// ```
pub fn auto_buckets(users: usize) -> u16 {
    let n = users.div_ceil(USERS_PER_BUCKET).max(1);
    u16::try_from(n)
        .unwrap_or(u16::MAX)
        .min(hum_shared::route::MAX_BUCKETS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hum_shared::RelayAddr;

    fn peer(role: Role, capacity: u16, port: u16) -> Result<Peer, String> {
        let addr: RelayAddr = format!("hum://127.0.0.1:{port}#{}", "a".repeat(64))
            .parse()
            .map_err(|e| format!("{e:?}"))?;
        Ok(Peer::new(addr, role, capacity))
    }

    #[test]
    fn auto_buckets_follow_the_users_a_relay_may_hold() -> Result<(), String> {
        // The single relay: its own clients.
        let mut c = Config::default();
        assert_eq!(c.buckets, BucketCount::Auto);
        c.max_clients = 500;
        assert_eq!(c.bucket_count(), 16);
        c.max_clients = 10_000;
        assert_eq!(c.bucket_count(), 256);
        // A mailbox relay: the capacity of its links to relays facing clients, not of
        // those to other mailbox relays.
        c.role = Role::Mailbox;
        c.peers = vec![
            peer(Role::Entry, 282, 1)?,
            peer(Role::Mailbox, 282, 2)?,
            peer(Role::Both, 100, 3)?,
        ];
        assert_eq!(c.homed_capacity(), 382);
        assert_eq!(c.bucket_count(), 12);
        c.validate().map_err(|e| e.to_string())?;
        // An explicit count stays.
        c.buckets = BucketCount::Fixed(8);
        assert_eq!(c.bucket_count(), 8);
        c.buckets = BucketCount::Fixed(257);
        assert!(c.validate().is_err());
        assert_eq!("auto".parse::<BucketCount>(), Ok(BucketCount::Auto));
        assert_eq!("64".parse::<BucketCount>(), Ok(BucketCount::Fixed(64)));
        assert!("0".parse::<BucketCount>().is_err());
        assert!("257".parse::<BucketCount>().is_err());
        assert!("many".parse::<BucketCount>().is_err());
        Ok(())
    }
}
