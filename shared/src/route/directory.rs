//! The directory an entry relay gives its clients: the mailbox relays it links to, with
//! their certificates, bucket counts, clocks and slot keys; and its chunked form in the
//! down cells, with the client's reassembler.

use serde::{Deserialize, Serialize};

use super::kdf::{self, L_DIRECTORY};
use super::{MAX_BUCKETS, RelayId, RouteError, SlotKey, VerifiedSlotKey};
use crate::{CertFingerprint, RelayAddr};

/// Bytes of directory carried by one down cell.
pub const DIRECTORY_CHUNK_LEN: usize = 277;
/// The most chunks a directory is cut into (the chunk count is one byte).
pub const MAX_DIRECTORY_CHUNKS: usize = 255;
/// The largest encoded directory: what fits in [`MAX_DIRECTORY_CHUNKS`] chunks with the
/// stream's length and check.
pub const MAX_DIRECTORY_LEN: usize = MAX_DIRECTORY_CHUNKS * DIRECTORY_CHUNK_LEN - STREAM_OVERHEAD;
/// The most relays a directory lists.
pub const MAX_RELAYS: usize = 64;
/// The largest certificate a directory entry carries.
pub const MAX_CERTIFICATE_LEN: usize = 2048;
/// Length prefix and check of the chunked stream.
const STREAM_OVERHEAD: usize = 4 + 8;

/// The directory (docs/PROTOCOL.md, hum/2 §H4.1): sized by the mesh, the same for every
/// client of an entry relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// The entry relay's tick at which the entries' clocks hold.
    pub tick: u64,
    /// The entry relay has no peers: it is the single relay, entry and home at once.
    pub single: bool,
    /// The clients connected to the entry relay when it made this directory: the
    /// anonymity set its clients' slots hide in (the same number for every client).
    pub clients: u32,
    /// The mailbox relays the entry relay links to.
    pub relays: Vec<RelayEntry>,
}

/// One mailbox relay in a [`Directory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayEntry {
    /// Where it is, with the fingerprint of `certificate`.
    pub address: RelayAddr,
    /// Its TLS certificate (DER), whose key signs the slot keys.
    pub certificate: Vec<u8>,
    /// Its bucket count (1 to 256).
    pub buckets: u16,
    /// Ticks per epoch.
    pub epoch_ticks: u32,
    /// Bits of each flag it compares in catch-up (1 to 8).
    pub flag_bits: u8,
    /// Its epoch at the directory's tick.
    pub epoch: u32,
    /// Its tick within that epoch at the directory's tick.
    pub tick_in_epoch: u32,
    /// Its slot keys of the current and next epochs.
    pub slot_keys: Vec<SlotKey>,
}

#[derive(Serialize, Deserialize)]
struct WireDirectory {
    tick: u64,
    single: bool,
    clients: u32,
    relays: Vec<WireEntry>,
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    address: String,
    certificate: Vec<u8>,
    buckets: u16,
    epoch_ticks: u32,
    flag_bits: u8,
    epoch: u32,
    tick_in_epoch: u32,
    slot_keys: Vec<Vec<u8>>,
}

impl RelayEntry {
    /// The relay's id.
    pub fn id(&self) -> RelayId {
        RelayId::of_fingerprint(&self.address.fingerprint)
    }

    /// The relay's `(epoch, tick in epoch)` `ticks` beats after the directory's tick.
    pub fn clock_after(&self, ticks: u64) -> (u32, u32) {
        let per = u64::from(self.epoch_ticks.max(1));
        let total = u64::from(self.tick_in_epoch) + ticks;
        let epoch = u64::from(self.epoch) + total / per;
        (
            u32::try_from(epoch).unwrap_or(u32::MAX),
            u32::try_from(total % per).unwrap_or(0),
        )
    }

    /// The slot key of `epoch`, verified against this entry's certificate and the
    /// fingerprint the client pinned for this relay (never the directory's own address,
    /// which the entry relay wrote).
    ///
    /// # Errors
    /// [`RouteError::UnknownSlotKey`] if the entry has no key of `epoch`; otherwise as
    /// [`SlotKey::verify`].
    pub fn verified_slot_key(
        &self,
        epoch: u32,
        pinned: &CertFingerprint,
    ) -> Result<VerifiedSlotKey, RouteError> {
        self.slot_keys
            .iter()
            .find(|k| k.epoch() == epoch)
            .ok_or(RouteError::UnknownSlotKey)?
            .verify(&self.certificate, pinned)
    }

    fn check(&self) -> Result<(), RouteError> {
        if self.certificate.len() > MAX_CERTIFICATE_LEN {
            return Err(RouteError::TooLarge {
                what: "certificate",
                len: self.certificate.len(),
                max: MAX_CERTIFICATE_LEN,
            });
        }
        if CertFingerprint::of_certificate(&self.certificate) != self.address.fingerprint {
            return Err(RouteError::CertificateMismatch);
        }
        if self.buckets == 0 || self.buckets > MAX_BUCKETS {
            return Err(RouteError::Malformed("directory bucket count"));
        }
        if self.epoch_ticks == 0 || self.tick_in_epoch >= self.epoch_ticks {
            return Err(RouteError::Malformed("directory clock"));
        }
        super::flag_mask(self.flag_bits)?;
        if self.slot_keys.len() > 2 || self.slot_keys.iter().any(|k| k.relay() != self.id()) {
            return Err(RouteError::Malformed("directory slot keys"));
        }
        Ok(())
    }
}

impl Directory {
    /// The entry of relay `id`, if listed.
    pub fn entry(&self, id: &RelayId) -> Option<&RelayEntry> {
        self.relays.iter().find(|e| e.id() == *id)
    }

    /// The relays pinned by `pinned` (their certificates' fingerprints, as the user gave
    /// them) that announce, here and in `earlier`, two different slot keys for one epoch,
    /// each signed by the pinned certificate: a mailbox relay makes its slot keys afresh
    /// when it starts, so such a relay restarted in between and lost the items it held.
    /// Keys that do not verify say nothing: the entry relay, which writes the directory,
    /// cannot make a restart up for a relay it is not.
    pub fn restarted_since(&self, earlier: &Directory, pinned: &[CertFingerprint]) -> Vec<RelayId> {
        self.relays
            .iter()
            .filter(|now| pinned.contains(&now.address.fingerprint))
            .filter(|now| {
                earlier.entry(&now.id()).is_some_and(|before| {
                    now.slot_keys.iter().any(|k| {
                        before.slot_keys.iter().any(|b| {
                            b.epoch() == k.epoch()
                                && b.public() != k.public()
                                && k.verify(&now.certificate, &now.address.fingerprint).is_ok()
                                && b.verify(&before.certificate, &now.address.fingerprint)
                                    .is_ok()
                        })
                    })
                })
            })
            .map(RelayEntry::id)
            .collect()
    }

    /// The directory's postcard encoding.
    ///
    /// # Errors
    /// [`RouteError::TooLarge`] beyond [`MAX_RELAYS`] or [`MAX_DIRECTORY_LEN`]; the
    /// errors of an entry that would not decode.
    pub fn encode(&self) -> Result<Vec<u8>, RouteError> {
        self.check()?;
        let wire = WireDirectory {
            tick: self.tick,
            single: self.single,
            clients: self.clients,
            relays: self
                .relays
                .iter()
                .map(|e| WireEntry {
                    address: e.address.to_string(),
                    certificate: e.certificate.clone(),
                    buckets: e.buckets,
                    epoch_ticks: e.epoch_ticks,
                    flag_bits: e.flag_bits,
                    epoch: e.epoch,
                    tick_in_epoch: e.tick_in_epoch,
                    slot_keys: e.slot_keys.iter().map(|k| k.encode().to_vec()).collect(),
                })
                .collect(),
        };
        let bytes = postcard::to_stdvec(&wire).map_err(|_| RouteError::Internal)?;
        if bytes.len() > MAX_DIRECTORY_LEN {
            return Err(RouteError::TooLarge {
                what: "directory",
                len: bytes.len(),
                max: MAX_DIRECTORY_LEN,
            });
        }
        Ok(bytes)
    }

    /// Reads and checks a directory: every address parses, every certificate hashes to
    /// its address's fingerprint, every field is in range, nothing trails.
    ///
    /// # Errors
    /// [`RouteError::TooLarge`], [`RouteError::Malformed`],
    /// [`RouteError::CertificateMismatch`].
    pub fn decode(bytes: &[u8]) -> Result<Directory, RouteError> {
        if bytes.len() > MAX_DIRECTORY_LEN {
            return Err(RouteError::TooLarge {
                what: "directory",
                len: bytes.len(),
                max: MAX_DIRECTORY_LEN,
            });
        }
        let (wire, rest) = postcard::take_from_bytes::<WireDirectory>(bytes)
            .map_err(|_| RouteError::Malformed("directory"))?;
        if !rest.is_empty() {
            return Err(RouteError::Malformed("directory trailing bytes"));
        }
        let relays = wire
            .relays
            .into_iter()
            .map(|e| {
                Ok(RelayEntry {
                    address: e
                        .address
                        .parse()
                        .map_err(|_| RouteError::Malformed("directory address"))?,
                    certificate: e.certificate,
                    buckets: e.buckets,
                    epoch_ticks: e.epoch_ticks,
                    flag_bits: e.flag_bits,
                    epoch: e.epoch,
                    tick_in_epoch: e.tick_in_epoch,
                    slot_keys: e
                        .slot_keys
                        .iter()
                        .map(|k| SlotKey::decode(k))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<Vec<_>, RouteError>>()?;
        let dir = Directory {
            tick: wire.tick,
            single: wire.single,
            clients: wire.clients,
            relays,
        };
        dir.check()?;
        Ok(dir)
    }

    fn check(&self) -> Result<(), RouteError> {
        if self.relays.len() > MAX_RELAYS {
            return Err(RouteError::TooLarge {
                what: "directory relay list",
                len: self.relays.len(),
                max: MAX_RELAYS,
            });
        }
        self.relays.iter().try_for_each(RelayEntry::check)
    }

    /// The directory cut into down-cell chunks: the stream `len (u32) || directory ||
    /// check (8)`, zero-padded to whole chunks, where check is
    /// `B2b256("hum/2 directory"; len || directory)[0..8]`.
    ///
    /// # Errors
    /// As [`Directory::encode`].
    pub fn chunks(&self) -> Result<Vec<DirectoryChunk>, RouteError> {
        let bytes = self.encode()?;
        let mut stream = Vec::with_capacity(bytes.len() + STREAM_OVERHEAD);
        // `encode` bounds the length far below u32::MAX.
        stream.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        stream.extend_from_slice(&bytes);
        let check = kdf::b2b(L_DIRECTORY, &[&stream]);
        stream.extend_from_slice(&check[..8]);
        let total = stream.len().div_ceil(DIRECTORY_CHUNK_LEN);
        // At most MAX_DIRECTORY_CHUNKS by the bound on the length.
        let total_u8 = u8::try_from(total).map_err(|_| RouteError::Internal)?;
        Ok(stream
            .chunks(DIRECTORY_CHUNK_LEN)
            .enumerate()
            .map(|(i, part)| {
                let mut data = [0u8; DIRECTORY_CHUNK_LEN];
                data[..part.len()].copy_from_slice(part);
                DirectoryChunk {
                    index: i as u8,
                    total: total_u8,
                    data,
                }
            })
            .collect())
    }
}

/// One chunk of the directory stream, as a down cell carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct DirectoryChunk {
    /// The chunk's index, below `total`.
    pub index: u8,
    /// The number of chunks of the directory (at least 1).
    pub total: u8,
    /// The chunk's bytes (the last one zero-padded).
    pub data: [u8; DIRECTORY_CHUNK_LEN],
}

impl std::fmt::Debug for DirectoryChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DirectoryChunk({}/{})", self.index, self.total)
    }
}

/// The client's reassembler of the directory from down-cell chunks.
///
/// Chunks overwrite their place; whenever every place is filled and the stream's check
/// holds, the directory is decoded, and returned if it changed. A change of directory
/// in mid-round mixes two versions only until every chunk has come round once more.
#[derive(Debug, Default)]
pub struct DirectoryReassembler {
    chunks: Vec<Option<[u8; DIRECTORY_CHUNK_LEN]>>,
    last: Option<Vec<u8>>,
}

impl DirectoryReassembler {
    /// An empty reassembler.
    pub fn new() -> DirectoryReassembler {
        DirectoryReassembler::default()
    }

    /// Takes one chunk; returns the directory when a complete, checked one differs from
    /// the last one returned.
    ///
    /// # Errors
    /// [`RouteError::Malformed`] for a chunk outside its count, or a complete, checked
    /// stream that is not a valid directory (the entry relay sent garbage).
    pub fn push(&mut self, chunk: &DirectoryChunk) -> Result<Option<Directory>, RouteError> {
        if chunk.total == 0 || chunk.index >= chunk.total {
            return Err(RouteError::Malformed("directory chunk index"));
        }
        let total = usize::from(chunk.total);
        if self.chunks.len() != total {
            self.chunks = vec![None; total];
        }
        let index = usize::from(chunk.index);
        if self.chunks[index] == Some(chunk.data) {
            return Ok(None);
        }
        self.chunks[index] = Some(chunk.data);
        let Some(stream) = self
            .chunks
            .iter()
            .map(|c| c.as_ref().map(|d| &d[..]))
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.concat())
        else {
            return Ok(None);
        };
        let len = kdf::u32_at(&stream, 0) as usize;
        let Some(end) = len
            .checked_add(4)
            .filter(|&end| end + 8 <= stream.len() && end + 8 + DIRECTORY_CHUNK_LEN > stream.len())
        else {
            return Ok(None);
        };
        let check = kdf::b2b(L_DIRECTORY, &[&stream[..end]]);
        if check[..8] != stream[end..end + 8] || stream[end + 8..].iter().any(|&b| b != 0) {
            return Ok(None);
        }
        let bytes = &stream[4..end];
        if self.last.as_deref() == Some(bytes) {
            return Ok(None);
        }
        let dir = Directory::decode(bytes)?;
        self.last = Some(bytes.to_vec());
        Ok(Some(dir))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::route::slot_key::tests::relay_cert;
    use crate::route::{SlotKeyPair, SlotKeyring};

    /// A directory of `n` relays, each with two signed slot keys; returns the pinned
    /// fingerprints too.
    pub(crate) fn directory(n: usize) -> Result<(Directory, Vec<CertFingerprint>), RouteError> {
        let mut relays = Vec::new();
        let mut pins = Vec::new();
        for i in 0..n {
            let (cert, key, fp) = relay_cert();
            let id = RelayId::of_fingerprint(&fp);
            let mut ring = SlotKeyring::new();
            ring.advance(3);
            let slot_keys = ring
                .keys()
                .iter()
                .map(|k: &SlotKeyPair| k.announce(id, &key))
                .collect::<Result<_, _>>()?;
            relays.push(RelayEntry {
                address: format!("hum://127.0.0.1:{}#{fp}", 7000 + i)
                    .parse()
                    .map_err(|_| RouteError::Internal)?,
                certificate: cert,
                buckets: 64,
                epoch_ticks: 36_000,
                flag_bits: 8,
                epoch: 3,
                tick_in_epoch: 35_990,
                slot_keys,
            });
            pins.push(fp);
        }
        Ok((
            Directory {
                tick: 1_000,
                single: false,
                clients: 57,
                relays,
            },
            pins,
        ))
    }

    #[test]
    fn round_trips_and_verifies_slot_keys() -> Result<(), RouteError> {
        let (dir, pins) = directory(3)?;
        let back = Directory::decode(&dir.encode()?)?;
        assert_eq!(back, dir);
        assert_eq!(back.clients, 57);
        let e = back
            .entry(&dir.relays[1].id())
            .ok_or(RouteError::Internal)?;
        assert_eq!(e.verified_slot_key(4, &pins[1])?.epoch(), 4);
        assert_eq!(
            e.verified_slot_key(5, &pins[1]).err(),
            Some(RouteError::UnknownSlotKey)
        );
        assert_eq!(
            e.verified_slot_key(4, &pins[0]).err(),
            Some(RouteError::CertificateMismatch)
        );
        assert_eq!(e.clock_after(9), (3, 35_999));
        assert_eq!(e.clock_after(10), (4, 0));
        assert_eq!(e.clock_after(36_010), (5, 0));
        Ok(())
    }

    #[test]
    fn an_entry_relay_cannot_substitute_a_slot_key() -> Result<(), RouteError> {
        let (mut dir, pins) = directory(2)?;
        // The entry relay swaps in a key of its own, signed with its own certificate and
        // listed under relay 0's id: the client's pin of relay 0 refuses it.
        let (cert, key, fp) = relay_cert();
        let forged = SlotKeyPair::generate(4);
        dir.relays[0].slot_keys[1] = forged.announce(dir.relays[0].id(), &key)?;
        assert_eq!(
            dir.relays[0].verified_slot_key(4, &pins[0]).err(),
            Some(RouteError::BadSignature)
        );
        // Replacing the certificate too does not match the pin.
        dir.relays[0].certificate = cert;
        assert_eq!(
            dir.relays[0].verified_slot_key(4, &pins[0]).err(),
            Some(RouteError::CertificateMismatch)
        );
        // And a directory whose certificate does not match its own address is refused
        // whole.
        assert_eq!(dir.encode().err(), Some(RouteError::CertificateMismatch));
        dir.relays[0].address.fingerprint = fp;
        assert!(matches!(dir.encode(), Err(RouteError::Malformed(_))));
        Ok(())
    }

    #[test]
    fn chunks_reassemble_and_mixed_versions_wait() -> Result<(), RouteError> {
        let (dir, _) = directory(4)?;
        let chunks = dir.chunks()?;
        assert!(chunks.len() > 3);
        let mut r = DirectoryReassembler::new();
        let mut got = None;
        for c in chunks.iter().rev() {
            if let Some(d) = r.push(c)? {
                got = Some(d);
            }
        }
        assert_eq!(got.as_ref(), Some(&dir));
        // The same chunks again: nothing new.
        assert!(chunks.iter().all(|c| matches!(r.push(c), Ok(None))));
        // A new directory arrives in mid-round: nothing until every chunk came again.
        let mut newer = dir.clone();
        newer.tick += 1;
        newer.clients += 1;
        let new_chunks = newer.chunks()?;
        assert_eq!(new_chunks.len(), chunks.len());
        // The last chunk holds the stream's check, which always changes.
        let last = new_chunks.len() - 1;
        for c in &new_chunks[..last] {
            assert_eq!(r.push(c)?, None);
        }
        assert_eq!(r.push(&new_chunks[last])?, Some(newer));
        let bad = DirectoryChunk {
            index: 3,
            total: 3,
            data: [0; DIRECTORY_CHUNK_LEN],
        };
        assert!(r.push(&bad).is_err());
        Ok(())
    }
}
