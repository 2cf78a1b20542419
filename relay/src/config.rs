//! The relay's settings, with defaults justified in docs/RELAY.md.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hum_shared::{DEFAULT_CELL_SIZE, ENVELOPE_LEN, check_cell_size};

use crate::{Clock, RelayError};

/// The TCP port a relay listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7667;
/// The default tick: ten cells a second each way (docs/RELAY.md).
pub const DEFAULT_TICK: Duration = Duration::from_millis(100);
/// How long an unacknowledged envelope is kept by default: 7 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

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
        Ok(())
    }

    /// The tick in microseconds, as the hello announces it.
    pub(crate) fn tick_micros(&self) -> u32 {
        u32::try_from(self.tick.as_micros()).unwrap_or(u32::MAX)
    }
}
