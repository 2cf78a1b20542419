//! The entry relay's hello to a hum/2 client (docs/PROTOCOL.md, hum/2 §H4.1).

use super::kdf;
use super::{CELL_LEN, Directory, MAX_DIRECTORY_LEN, RELAY_ID_LEN, RelayId, RouteError};

/// The ALPN protocol name of hum/2 client connections.
pub const ALPN_HUM2: &[u8] = b"hum/2";
/// The magic a hum/2 hello starts with.
pub const HELLO_MAGIC: [u8; 8] = *b"hum/2\0\0\0";
/// Length of the hello before the directory.
pub const HELLO_HEADER_LEN: usize = 8 + 2 + 4 + 4 + 8 + RELAY_ID_LEN + 4;

/// The entry relay's hello: `magic (8) || cell size (u16) || tick micros (u32) || ttl
/// seconds (u32) || entry tick (u64) || entry relay id (8) || directory length (u32) ||
/// directory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The beat, in microseconds.
    pub tick_micros: u32,
    /// How long mailbox relays keep items, in seconds.
    pub ttl_secs: u32,
    /// The entry relay's tick when it sent the hello.
    pub tick: u64,
    /// The entry relay's id (in every slot's associated data).
    pub relay: RelayId,
    /// The directory.
    pub directory: Directory,
}

impl Hello {
    /// The hello's bytes.
    ///
    /// # Errors
    /// As [`Directory::encode`].
    pub fn encode(&self) -> Result<Vec<u8>, RouteError> {
        let dir = self.directory.encode()?;
        let mut out = Vec::with_capacity(HELLO_HEADER_LEN + dir.len());
        out.extend_from_slice(&HELLO_MAGIC);
        out.extend_from_slice(&(CELL_LEN as u16).to_be_bytes());
        out.extend_from_slice(&self.tick_micros.to_be_bytes());
        out.extend_from_slice(&self.ttl_secs.to_be_bytes());
        out.extend_from_slice(&self.tick.to_be_bytes());
        out.extend_from_slice(self.relay.as_bytes());
        // `Directory::encode` bounds the length by MAX_DIRECTORY_LEN.
        out.extend_from_slice(&(dir.len() as u32).to_be_bytes());
        out.extend_from_slice(&dir);
        Ok(out)
    }

    /// The whole hello's length, from its first [`HELLO_HEADER_LEN`] bytes: what a reader
    /// reads before calling [`Hello::decode`].
    ///
    /// # Errors
    /// [`RouteError::Incomplete`] with fewer bytes; [`RouteError::Malformed`] for a bad
    /// magic or cell size; [`RouteError::TooLarge`] for a directory beyond the limit.
    pub fn total_len(header: &[u8]) -> Result<usize, RouteError> {
        if header.len() < HELLO_HEADER_LEN {
            return Err(RouteError::Incomplete {
                what: "hello",
                have: header.len(),
                need: HELLO_HEADER_LEN,
            });
        }
        if header[..8] != HELLO_MAGIC {
            return Err(RouteError::Malformed("hello magic"));
        }
        if usize::from(kdf::u16_at(header, 8)) != CELL_LEN {
            return Err(RouteError::Malformed("hello cell size"));
        }
        let len = kdf::u32_at(header, HELLO_HEADER_LEN - 4) as usize;
        if len > MAX_DIRECTORY_LEN {
            return Err(RouteError::TooLarge {
                what: "directory",
                len,
                max: MAX_DIRECTORY_LEN,
            });
        }
        Ok(HELLO_HEADER_LEN + len)
    }

    /// Reads a hello (exactly its bytes: trailing bytes are refused).
    ///
    /// # Errors
    /// As [`Hello::total_len`]; [`RouteError::Length`] for trailing bytes; as
    /// [`Directory::decode`].
    pub fn decode(bytes: &[u8]) -> Result<Hello, RouteError> {
        let total = Hello::total_len(bytes)?;
        if bytes.len() < total {
            return Err(RouteError::Incomplete {
                what: "hello",
                have: bytes.len(),
                need: total,
            });
        }
        if bytes.len() > total {
            return Err(RouteError::Length {
                what: "hello",
                expected: total,
                actual: bytes.len(),
            });
        }
        let tick_micros = kdf::u32_at(bytes, 10);
        if tick_micros == 0 {
            return Err(RouteError::Malformed("hello tick"));
        }
        Ok(Hello {
            tick_micros,
            ttl_secs: kdf::u32_at(bytes, 14),
            tick: kdf::u64_at(bytes, 18),
            relay: RelayId::from_bytes(kdf::take(bytes, 26)),
            directory: Directory::decode(&bytes[HELLO_HEADER_LEN..])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::directory::tests::directory;

    #[test]
    fn round_trip_and_incomplete() -> Result<(), RouteError> {
        let (directory, _) = directory(2)?;
        let hello = Hello {
            tick_micros: 100_000,
            ttl_secs: 7 * 86_400,
            tick: 17_000_000_000,
            relay: RelayId::from_bytes([4; 8]),
            directory,
        };
        let bytes = hello.encode()?;
        assert_eq!(Hello::total_len(&bytes[..HELLO_HEADER_LEN])?, bytes.len());
        assert_eq!(Hello::decode(&bytes)?, hello);
        assert!(matches!(
            Hello::decode(&bytes[..bytes.len() - 1]),
            Err(RouteError::Incomplete { .. })
        ));
        assert!(matches!(
            Hello::decode(&bytes[..10]),
            Err(RouteError::Incomplete { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            Hello::decode(&long),
            Err(RouteError::Length { .. })
        ));
        let mut bad = bytes.clone();
        bad[0] = b'x';
        assert_eq!(
            Hello::decode(&bad),
            Err(RouteError::Malformed("hello magic"))
        );
        let mut huge = bytes;
        huge[HELLO_HEADER_LEN - 4..HELLO_HEADER_LEN].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Hello::total_len(&huge),
            Err(RouteError::TooLarge { .. })
        ));
        Ok(())
    }
}
