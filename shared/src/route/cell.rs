//! The hum/2 cells: up (client to entry relay) and down (entry relay to client), both
//! [`CELL_LEN`] bytes (docs/PROTOCOL.md, hum/2 §H4.2).

use super::kdf;
use super::{
    ANSWER_LEN, DIRECTORY_CHUNK_LEN, DirectoryChunk, ITEM_LEN, Item, MAX_BUCKETS, RELAY_ID_LEN,
    RelayId, RouteError, SLOT_LEN, Slot,
};

/// The length of every hum/2 cell, up and down.
pub const CELL_LEN: usize = 1_280;
/// The version byte of a hum/2 cell.
pub const CELL_VERSION_2: u8 = 2;

const UP_SLOT: usize = 1 + RELAY_ID_LEN + 4 + 2;
const UP_TAIL: usize = UP_SLOT + SLOT_LEN;
const DOWN_ITEM: usize = 1 + ANSWER_LEN;
const DOWN_CHUNK: usize = DOWN_ITEM + ITEM_LEN;
const _: () = assert!(DOWN_CHUNK + 2 + DIRECTORY_CHUNK_LEN == CELL_LEN);
const _: () = assert!(UP_TAIL + 20 == CELL_LEN);

/// An up cell: `version || home relay id || home epoch || bucket || slot || zero (20)`.
///
/// The home relay, epoch and bucket are in clear for the entry relay, which routes the
/// slot and the bucket's live stream by them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpCell {
    /// The client's home relay.
    pub home: RelayId,
    /// The home relay's epoch of `bucket`.
    pub epoch: u32,
    /// The client's bucket at its home relay in that epoch.
    pub bucket: u16,
    /// The slot, sealed to the home relay.
    pub slot: Slot,
}

impl UpCell {
    /// The cell's bytes.
    pub fn encode(&self) -> Box<[u8; CELL_LEN]> {
        let mut out = Box::new([0u8; CELL_LEN]);
        out[0] = CELL_VERSION_2;
        out[1..9].copy_from_slice(self.home.as_bytes());
        out[9..13].copy_from_slice(&self.epoch.to_be_bytes());
        out[13..15].copy_from_slice(&self.bucket.to_be_bytes());
        out[UP_SLOT..UP_TAIL].copy_from_slice(self.slot.as_bytes());
        out
    }

    /// Reads an up cell.
    ///
    /// # Errors
    /// [`RouteError::Length`], [`RouteError::Malformed`] (version, padding),
    /// [`RouteError::BucketOutOfRange`].
    pub fn decode(bytes: &[u8]) -> Result<UpCell, RouteError> {
        let bytes = kdf::exact::<CELL_LEN>("up cell", bytes)?;
        if bytes[0] != CELL_VERSION_2 {
            return Err(RouteError::Malformed("cell version"));
        }
        kdf::zeros("up cell padding", &bytes[UP_TAIL..])?;
        let bucket = kdf::u16_at(bytes, 13);
        if bucket >= MAX_BUCKETS {
            return Err(RouteError::BucketOutOfRange {
                bucket,
                buckets: MAX_BUCKETS,
            });
        }
        Ok(UpCell {
            home: RelayId::from_bytes(kdf::take(bytes, 1)),
            epoch: kdf::u32_at(bytes, 9),
            bucket,
            slot: Slot::from_bytes(&bytes[UP_SLOT..UP_TAIL])?,
        })
    }
}

/// The version byte of a refusal cell (docs/PROTOCOL.md, hum/2 §H4.2).
pub const REFUSAL_VERSION: u8 = 0xff;

/// Why an entry relay refuses a client: sent as its last down cell, `0xff || reason ||
/// zero`, before it closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The batch to the client's home relay is full: try again later or elsewhere.
    HomeFull,
    /// The client named the entry relay itself as its home, in a mesh: entry and home
    /// must be different relays (only a single relay is both).
    HomeIsEntry,
    /// The client named a home relay the entry relay does not link to.
    UnknownHome,
}

impl Refusal {
    fn code(self) -> u8 {
        match self {
            Refusal::HomeFull => 1,
            Refusal::HomeIsEntry => 2,
            Refusal::UnknownHome => 3,
        }
    }

    /// The refusal cell.
    pub fn encode(self) -> Box<[u8; CELL_LEN]> {
        let mut out = Box::new([0u8; CELL_LEN]);
        out[0] = REFUSAL_VERSION;
        out[1] = self.code();
        out
    }

    /// Reads a refusal cell; `None` for any other cell.
    pub fn decode(bytes: &[u8]) -> Option<Refusal> {
        let bytes = kdf::exact::<CELL_LEN>("refusal", bytes).ok()?;
        if bytes[0] != REFUSAL_VERSION || bytes[2..].iter().any(|&b| b != 0) {
            return None;
        }
        [
            Refusal::HomeFull,
            Refusal::HomeIsEntry,
            Refusal::UnknownHome,
        ]
        .into_iter()
        .find(|r| r.code() == bytes[1])
    }

    /// The reason, for people.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::HomeFull => "the entry relay's batch to your home relay is full",
            Refusal::HomeIsEntry => {
                "your home relay is this entry relay: in a mesh, enter at another relay"
            }
            Refusal::UnknownHome => "the entry relay does not link to your home relay",
        }
    }
}

/// A down cell of entry tick `t`: `version || answer (64) || item (936) || chunk index ||
/// chunk count || directory chunk (277)`.
///
/// The answer is to the client's slot of tick `t - 2`; the item is the live item of the
/// client's bucket when `t` is even and the reply item of the slot of `t - 2` when it is
/// odd. Random bytes where there is nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownCell {
    /// The sealed answer.
    pub answer: [u8; ANSWER_LEN],
    /// The live item or the sealed reply item.
    pub item: Item,
    /// One chunk of the directory, round robin.
    pub chunk: DirectoryChunk,
}

impl DownCell {
    /// The cell's bytes.
    pub fn encode(&self) -> Box<[u8; CELL_LEN]> {
        let mut out = Box::new([0u8; CELL_LEN]);
        out[0] = CELL_VERSION_2;
        out[1..DOWN_ITEM].copy_from_slice(&self.answer);
        out[DOWN_ITEM..DOWN_CHUNK].copy_from_slice(self.item.as_bytes());
        out[DOWN_CHUNK] = self.chunk.index;
        out[DOWN_CHUNK + 1] = self.chunk.total;
        out[DOWN_CHUNK + 2..].copy_from_slice(&self.chunk.data);
        out
    }

    /// Reads a down cell.
    ///
    /// # Errors
    /// [`RouteError::Length`], [`RouteError::Malformed`] (version, chunk index).
    pub fn decode(bytes: &[u8]) -> Result<DownCell, RouteError> {
        let bytes = kdf::exact::<CELL_LEN>("down cell", bytes)?;
        if bytes[0] != CELL_VERSION_2 {
            return Err(RouteError::Malformed("cell version"));
        }
        let (index, total) = (bytes[DOWN_CHUNK], bytes[DOWN_CHUNK + 1]);
        if total == 0 || index >= total {
            return Err(RouteError::Malformed("directory chunk index"));
        }
        Ok(DownCell {
            answer: kdf::take(bytes, 1),
            item: Item::from_bytes(&bytes[DOWN_ITEM..DOWN_CHUNK])?,
            chunk: DirectoryChunk {
                index,
                total,
                data: kdf::take(bytes, DOWN_CHUNK + 2),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_round_trip_and_no_other_cell_reads_as_one() {
        for r in [
            Refusal::HomeFull,
            Refusal::HomeIsEntry,
            Refusal::UnknownHome,
        ] {
            let cell = r.encode();
            assert_eq!(Refusal::decode(&cell[..]), Some(r));
            assert!(DownCell::decode(&cell[..]).is_err());
        }
        let mut odd = Refusal::HomeFull.encode();
        odd[1] = 9;
        assert_eq!(Refusal::decode(&odd[..]), None);
        odd[1] = 1;
        odd[100] = 1;
        assert_eq!(Refusal::decode(&odd[..]), None);
        assert_eq!(Refusal::decode(&[0xff; 10]), None);
    }
}
