//! hum-relay: the in-memory TLS relay that beats the ticks.
//!
//! Every connected client receives exactly one fixed-size cell per tick and answers with
//! exactly one; deposits, subscriptions and acknowledgements ride those cells. Mailboxes
//! live in memory only; the only file the relay writes is its TLS key and certificate.
//! See docs/RELAY.md for the design and docs/PROTOCOL.md §1 and §4 for the wire.
//!
//! Embedding a relay (as the client's `--demo` and the tests do):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use std::time::Duration;
//! let relay = hum_relay::Relay::bind(hum_relay::Config::ephemeral(Duration::from_millis(20))).await?;
//! let addr = relay.address(); // hum://127.0.0.1:PORT#FINGERPRINT
//! let handle = relay.spawn();
//! let (mut tls, hello) = hum_relay::connect(&addr).await?;
//! assert_eq!(hello.cell_size, hum_shared::DEFAULT_CELL_SIZE);
//! let mut cell = vec![0; hello.cell_size];
//! hum_shared::read_cell(&mut tls, &mut cell).await?; // the next beat
//! handle.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
#![forbid(unsafe_code)]

mod beat;
mod clock;
mod config;
mod curious;
mod entry;
mod error;
mod link;
mod listener;
mod mailbox;
mod peers;
mod random;
mod relay;
mod shutdown;
mod state;
mod stats;
#[cfg(feature = "test-client")]
pub mod test_client;
mod tls;
mod v1;

pub use clock::Clock;
pub use config::{
    BucketCount, Config, DEFAULT_EPOCH_TICKS, DEFAULT_PORT, DEFAULT_TICK, DEFAULT_TTL,
    USERS_PER_BUCKET, auto_buckets,
};
pub use entry::HeldClient;
pub use error::{ConnectError, RelayError};
pub use link::LinkSnapshot;
pub use peers::{Peer, Role, load_peers};
pub use relay::{Held, Relay, RelayHandle, init_identity};
pub use stats::{RouteSnapshot, StatsSnapshot};
pub use tls::{ALPN, client_config_hum2};
pub use v1::connect::{TlsStream, client_config, connect, connect_over};
