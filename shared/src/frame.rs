//! The operations cells carry, and the hello that opens a connection
//! (docs/PROTOCOL.md §1 and §4).

use serde::{Deserialize, Serialize};

use crate::{CellError, check_cell_size};

pub use crate::crypto::{Capability, ENVELOPE_LEN, MailboxId};

/// One operation a client sends the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Up {
    /// Store `envelope` in `mailbox`. The relay answers [`Down::Stored`] or
    /// [`Down::Full`] with the same `tag`.
    Deposit {
        /// The client's number for this deposit, echoed in the answer.
        tag: u32,
        /// Where to store it.
        mailbox: MailboxId,
        /// Whether the mailbox is a group mailbox: every subscriber receives every
        /// envelope, which stays until it expires instead of being deleted on ack.
        fanout: bool,
        /// The sealed envelope, exactly [`ENVELOPE_LEN`] bytes.
        #[serde(with = "envelope_bytes")]
        envelope: Vec<u8>,
    },
    /// Receive the envelopes of the mailbox whose id is the hash of `capability`: those
    /// with a sequence number above `after` now, and new ones as they arrive.
    Subscribe {
        /// The fetch capability.
        capability: Capability,
        /// Deliver only envelopes with a larger sequence number.
        after: u64,
    },
    /// Stop receiving a mailbox on this connection.
    Unsubscribe {
        /// The mailbox.
        mailbox: MailboxId,
    },
    /// The envelope `seq` of `mailbox` was received and is safe to delete (a queue
    /// mailbox deletes it; a group mailbox keeps it until it expires).
    Ack {
        /// The mailbox, which this connection must have subscribed to.
        mailbox: MailboxId,
        /// The sequence number of the envelope.
        seq: u64,
    },
}

/// One operation the relay sends a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Down {
    /// An envelope from a subscribed mailbox.
    Deliver {
        /// The mailbox it was deposited in.
        mailbox: MailboxId,
        /// Its sequence number in that mailbox (increasing, never reused).
        seq: u64,
        /// The sealed envelope, exactly [`ENVELOPE_LEN`] bytes.
        #[serde(with = "envelope_bytes")]
        envelope: Vec<u8>,
    },
    /// The deposit with this tag is stored.
    Stored {
        /// The deposit's tag.
        tag: u32,
    },
    /// The deposit with this tag was refused because a quota is reached: keep the
    /// envelope and try again later.
    Full {
        /// The deposit's tag.
        tag: u32,
    },
    /// The subscription is in place; everything stored so far is on its way.
    Subscribed {
        /// The mailbox.
        mailbox: MailboxId,
    },
}

/// (De)serializes envelope bytes, refusing any length but [`ENVELOPE_LEN`].
mod envelope_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let b: &[u8] = <&[u8]>::deserialize(d)?;
        if b.len() != super::ENVELOPE_LEN {
            return Err(D::Error::custom("envelope has the wrong length"));
        }
        Ok(b.to_vec())
    }
}

/// Length of the hello the relay sends first on every connection.
pub const HELLO_LEN: usize = 32;
const HELLO_MAGIC: &[u8; 8] = b"hum/1\0\0\0";

/// What the relay announces when a client connects: the cell size and beat every cell
/// after it follows (docs/PROTOCOL.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloV1 {
    /// Size of every cell, both directions.
    pub cell_size: usize,
    /// Length of one tick, in microseconds.
    pub tick_micros: u32,
    /// How long the relay keeps an unacknowledged envelope, in seconds.
    pub ttl_secs: u64,
    /// The relay's current tick number.
    pub tick: u64,
}

impl HelloV1 {
    /// The hello's fixed-size encoding.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        out[..8].copy_from_slice(HELLO_MAGIC);
        // cell_size is at most MAX_CELL_SIZE when built through `decode`; saturate otherwise.
        let cell = u32::try_from(self.cell_size).unwrap_or(u32::MAX);
        out[8..12].copy_from_slice(&cell.to_be_bytes());
        out[12..16].copy_from_slice(&self.tick_micros.to_be_bytes());
        out[16..24].copy_from_slice(&self.ttl_secs.to_be_bytes());
        out[24..32].copy_from_slice(&self.tick.to_be_bytes());
        out
    }

    /// Reads a hello.
    ///
    /// # Errors
    /// [`CellError::BadHello`] for a wrong magic or a zero tick,
    /// [`CellError::BadCellSize`] for a cell size hum/1 does not allow.
    pub fn decode(b: &[u8; HELLO_LEN]) -> Result<Self, CellError> {
        if &b[..8] != HELLO_MAGIC {
            return Err(CellError::BadHello);
        }
        let word = |r: std::ops::Range<usize>| -> u64 {
            b[r].iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
        };
        let cell_size = usize::try_from(word(8..12)).map_err(|_| CellError::BadHello)?;
        let tick_micros = u32::try_from(word(12..16)).map_err(|_| CellError::BadHello)?;
        if tick_micros == 0 {
            return Err(CellError::BadHello);
        }
        Ok(Self {
            cell_size: check_cell_size(cell_size)?,
            tick_micros,
            ttl_secs: word(16..24),
            tick: word(24..32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_rejects_strangers() -> Result<(), CellError> {
        let h = HelloV1 {
            cell_size: 1024,
            tick_micros: 100_000,
            ttl_secs: 7 * 86_400,
            tick: 42,
        };
        assert_eq!(HelloV1::decode(&h.encode())?, h);
        let mut bad = h.encode();
        bad[0] = b'H';
        assert_eq!(HelloV1::decode(&bad), Err(CellError::BadHello));
        let small = HelloV1 { cell_size: 10, ..h };
        assert_eq!(
            HelloV1::decode(&small.encode()),
            Err(CellError::BadCellSize(10))
        );
        Ok(())
    }

    #[test]
    fn envelope_of_wrong_length_does_not_decode() {
        let op = Up::Deposit {
            tag: 1,
            mailbox: MailboxId::from_bytes([0; 32]),
            fanout: false,
            envelope: vec![0; ENVELOPE_LEN - 1],
        };
        let bytes = postcard::to_stdvec(&op).unwrap_or_default();
        assert!(postcard::from_bytes::<Up>(&bytes).is_err());
    }
}
