//! Splitting a payload into equal-size parts and reassembling them in any order
//! (docs/PROTOCOL.md §2.3).
//!
//! Every part is exactly `part_size` bytes: a 32-byte header, then a chunk of the payload,
//! zero-padded in the last part. The header carries the message id, the part's index, the
//! number of parts, the payload length and a BLAKE2b-128 digest of the whole payload, so a
//! missing, duplicated, foreign or corrupted part is caught.

use std::collections::HashMap;

use crate::SplitError;

/// Bytes of the header at the front of every part.
pub const PART_HEADER_LEN: usize = 32;
const DIGEST_LEN: usize = 16;

/// The header of one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartHeader {
    msg_id: u64,
    index: u16,
    total: u16,
    payload_len: u32,
    digest: [u8; DIGEST_LEN],
}

impl PartHeader {
    fn write(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.msg_id.to_be_bytes());
        out[8..10].copy_from_slice(&self.index.to_be_bytes());
        out[10..12].copy_from_slice(&self.total.to_be_bytes());
        out[12..16].copy_from_slice(&self.payload_len.to_be_bytes());
        out[16..32].copy_from_slice(&self.digest);
    }

    fn read(b: &[u8]) -> Result<Self, SplitError> {
        let h = b
            .get(..PART_HEADER_LEN)
            .ok_or(SplitError::Malformed("shorter than a part header"))?;
        let mut msg_id = [0u8; 8];
        msg_id.copy_from_slice(&h[0..8]);
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(&h[16..32]);
        Ok(Self {
            msg_id: u64::from_be_bytes(msg_id),
            index: u16::from_be_bytes([h[8], h[9]]),
            total: u16::from_be_bytes([h[10], h[11]]),
            payload_len: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
            digest,
        })
    }
}

fn digest(payload: &[u8]) -> Result<[u8; DIGEST_LEN], SplitError> {
    let mut h = orion::hazardous::hash::blake2::blake2b::Blake2b::new(DIGEST_LEN)
        .map_err(|_| SplitError::Corrupted)?;
    h.update(b"hum/1 split")
        .map_err(|_| SplitError::Corrupted)?;
    h.update(payload).map_err(|_| SplitError::Corrupted)?;
    let d = h.finalize().map_err(|_| SplitError::Corrupted)?;
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(d.as_ref());
    Ok(out)
}

/// How many parts a payload of `len` bytes needs at `part_size`.
///
/// # Errors
/// [`SplitError::PartSize`] when a part cannot carry any payload, [`SplitError::TooLong`]
/// when more than `u16::MAX` parts would be needed.
pub fn parts_needed(len: usize, part_size: usize) -> Result<u16, SplitError> {
    let chunk = part_size
        .checked_sub(PART_HEADER_LEN)
        .filter(|&c| c > 0)
        .ok_or(SplitError::PartSize(part_size))?;
    let n = len.div_ceil(chunk).max(1);
    u16::try_from(n).map_err(|_| SplitError::TooLong(len))
}

/// Splits `payload` into parts of exactly `part_size` bytes each.
///
/// # Errors
/// As [`parts_needed`]; also [`SplitError::TooLong`] past 4 GiB.
pub fn split(msg_id: u64, payload: &[u8], part_size: usize) -> Result<Vec<Vec<u8>>, SplitError> {
    let total = parts_needed(payload.len(), part_size)?;
    let payload_len =
        u32::try_from(payload.len()).map_err(|_| SplitError::TooLong(payload.len()))?;
    let chunk = part_size - PART_HEADER_LEN;
    let digest = digest(payload)?;
    let mut parts = Vec::with_capacity(usize::from(total));
    for index in 0..total {
        let mut part = vec![0u8; part_size];
        PartHeader {
            msg_id,
            index,
            total,
            payload_len,
            digest,
        }
        .write(&mut part);
        let start = usize::from(index) * chunk;
        let end = (start + chunk).min(payload.len());
        if start < end {
            part[PART_HEADER_LEN..PART_HEADER_LEN + end - start]
                .copy_from_slice(&payload[start..end]);
        }
        parts.push(part);
    }
    Ok(parts)
}

/// The message id a part belongs to, read from its header without reassembling.
///
/// # Errors
/// [`SplitError::Malformed`] when the bytes are shorter than a part header.
pub fn part_msg_id(part: &[u8]) -> Result<u64, SplitError> {
    Ok(PartHeader::read(part)?.msg_id)
}

/// Parts of one message collected so far.
#[derive(Debug)]
struct Pending {
    header: PartHeader,
    chunks: Vec<Option<Vec<u8>>>,
    have: usize,
    bytes: usize,
    /// Insertion order, for evicting the oldest message.
    born: u64,
}

/// Collects parts of many messages, in any order, within a memory bound.
///
/// Held bytes are counted by the chunks actually received, never by what a header
/// claims, so a peer cannot make it allocate more than `max_bytes` (plus one part).
#[derive(Debug)]
pub struct Reassembler {
    part_size: usize,
    max_bytes: usize,
    max_messages: usize,
    max_payload: usize,
    held: usize,
    clock: u64,
    pending: HashMap<u64, Pending>,
}

impl Reassembler {
    /// A reassembler for parts of `part_size` bytes that holds at most `max_bytes` of
    /// incomplete messages, at most `max_messages` of them, and accepts payloads of at
    /// most `max_payload` bytes.
    pub fn new(
        part_size: usize,
        max_bytes: usize,
        max_messages: usize,
        max_payload: usize,
    ) -> Self {
        Self {
            part_size,
            max_bytes,
            max_messages,
            max_payload,
            held: 0,
            clock: 0,
            pending: HashMap::new(),
        }
    }

    /// Bytes of incomplete messages held now.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Number of incomplete messages held now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The message ids still incomplete, with the indexes of the parts they miss.
    pub fn missing(&self) -> Vec<(u64, Vec<u16>)> {
        let mut out: Vec<(u64, Vec<u16>)> = self
            .pending
            .iter()
            .map(|(&id, p)| {
                let miss = (0..p.header.total)
                    .filter(|&i| p.chunks.get(usize::from(i)).is_some_and(Option::is_none))
                    .collect();
                (id, miss)
            })
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// Forgets an incomplete message (for example when it is too old to finish).
    pub fn drop_message(&mut self, msg_id: u64) {
        if let Some(p) = self.pending.remove(&msg_id) {
            self.held -= p.bytes;
        }
    }

    /// Takes one part. Returns the message id and payload once all its parts are in.
    ///
    /// # Errors
    /// [`SplitError::Malformed`] for a part of the wrong size or an impossible header,
    /// [`SplitError::Duplicate`] for a part already held, [`SplitError::Foreign`] for a
    /// part whose header disagrees with the message it claims, [`SplitError::Corrupted`]
    /// when the whole does not match its digest (the message is dropped), and
    /// [`SplitError::Full`] when holding it would pass the bound (nothing is kept).
    pub fn insert(&mut self, part: &[u8]) -> Result<Option<(u64, Vec<u8>)>, SplitError> {
        if part.len() != self.part_size {
            return Err(SplitError::Malformed("part has the wrong size"));
        }
        let h = PartHeader::read(part)?;
        let chunk = self.part_size - PART_HEADER_LEN;
        let payload_len =
            usize::try_from(h.payload_len).map_err(|_| SplitError::Malformed("length"))?;
        if payload_len > self.max_payload {
            return Err(SplitError::Malformed("payload longer than allowed"));
        }
        if h.total == 0
            || h.index >= h.total
            || parts_needed(payload_len, self.part_size)? != h.total
        {
            return Err(SplitError::Malformed("impossible part numbering"));
        }
        let start = usize::from(h.index) * chunk;
        let take = payload_len.saturating_sub(start).min(chunk);
        if part[PART_HEADER_LEN + take..].iter().any(|&b| b != 0) {
            return Err(SplitError::Malformed("padding is not zero"));
        }
        if h.total == 1 {
            let payload = part[PART_HEADER_LEN..PART_HEADER_LEN + take].to_vec();
            return if digest(&payload)? == h.digest {
                Ok(Some((h.msg_id, payload)))
            } else {
                Err(SplitError::Corrupted)
            };
        }
        if let Some(p) = self.pending.get(&h.msg_id) {
            if p.header.total != h.total
                || p.header.payload_len != h.payload_len
                || p.header.digest != h.digest
            {
                return Err(SplitError::Foreign { index: h.index });
            }
            if p.chunks
                .get(usize::from(h.index))
                .is_some_and(Option::is_some)
            {
                return Err(SplitError::Duplicate { index: h.index });
            }
        } else if self.pending.len() >= self.max_messages {
            return Err(SplitError::Full(self.held));
        }
        if self.held + take > self.max_bytes {
            return Err(SplitError::Full(self.held));
        }
        self.clock += 1;
        let born = self.clock;
        let p = self.pending.entry(h.msg_id).or_insert_with(|| Pending {
            header: h,
            chunks: vec![None; usize::from(h.total)],
            have: 0,
            bytes: 0,
            born,
        });
        if let Some(slot) = p.chunks.get_mut(usize::from(h.index)) {
            *slot = Some(part[PART_HEADER_LEN..PART_HEADER_LEN + take].to_vec());
        }
        p.have += 1;
        p.bytes += take;
        self.held += take;
        if p.have < usize::from(p.header.total) {
            return Ok(None);
        }
        let done = self
            .pending
            .remove(&h.msg_id)
            .ok_or(SplitError::Corrupted)?;
        self.held -= done.bytes;
        let mut payload = Vec::with_capacity(done.bytes);
        for c in done.chunks.into_iter().flatten() {
            payload.extend_from_slice(&c);
        }
        if digest(&payload)? != done.header.digest {
            return Err(SplitError::Corrupted);
        }
        Ok(Some((h.msg_id, payload)))
    }

    /// Drops the oldest incomplete message, if any, and returns its id.
    pub fn evict_oldest(&mut self) -> Option<u64> {
        let id = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.born)
            .map(|(&id, _)| id)?;
        self.drop_message(id);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(part: usize) -> Reassembler {
        Reassembler::new(part, 1 << 20, 16, 1 << 20)
    }

    #[test]
    fn single_part_round_trip() -> Result<(), SplitError> {
        let parts = split(1, b"hello", 64)?;
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].len(), 64);
        assert_eq!(r(64).insert(&parts[0])?, Some((1, b"hello".to_vec())));
        Ok(())
    }

    #[test]
    fn empty_payload_is_one_part() -> Result<(), SplitError> {
        let parts = split(3, b"", 64)?;
        assert_eq!(parts.len(), 1);
        assert_eq!(r(64).insert(&parts[0])?, Some((3, Vec::new())));
        Ok(())
    }

    #[test]
    fn duplicate_and_missing_parts_are_reported() -> Result<(), SplitError> {
        let payload: Vec<u8> = (0..200u8).collect();
        let parts = split(9, &payload, 64)?;
        assert_eq!(parts.len(), 7);
        let mut re = r(64);
        assert_eq!(re.insert(&parts[2])?, None);
        assert_eq!(
            re.insert(&parts[2]),
            Err(SplitError::Duplicate { index: 2 })
        );
        assert_eq!(re.missing(), vec![(9, vec![0, 1, 3, 4, 5, 6])]);
        Ok(())
    }

    #[test]
    fn foreign_part_under_same_id_is_caught() -> Result<(), SplitError> {
        let a = split(5, &[1u8; 100], 64)?;
        let b = split(5, &[2u8; 100], 64)?;
        let mut re = r(64);
        re.insert(&a[0])?;
        assert_eq!(re.insert(&b[1]), Err(SplitError::Foreign { index: 1 }));
        Ok(())
    }

    #[test]
    fn corrupted_chunk_is_caught() -> Result<(), SplitError> {
        let mut parts = split(5, &[1u8; 100], 64)?;
        parts[1][40] ^= 0xff;
        let mut re = r(64);
        for p in &parts[..parts.len() - 1] {
            re.insert(p)?;
        }
        assert_eq!(
            re.insert(&parts[parts.len() - 1]),
            Err(SplitError::Corrupted)
        );
        assert_eq!(re.held_bytes(), 0);
        Ok(())
    }

    #[test]
    fn memory_is_bounded_by_received_bytes() -> Result<(), SplitError> {
        let mut re = Reassembler::new(64, 100, 2, 1 << 20);
        // Claims a huge payload: refused by the payload bound, nothing allocated.
        let mut big = split(1, &[0u8; 10], 64)?.remove(0);
        big[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(re.insert(&big), Err(SplitError::Malformed(_))));
        let a = split(1, &[1u8; 300], 64)?;
        let b = split(2, &[2u8; 300], 64)?;
        let c = split(3, &[3u8; 300], 64)?;
        re.insert(&a[0])?;
        re.insert(&a[1])?;
        re.insert(&b[0])?;
        assert!(matches!(re.insert(&c[0]), Err(SplitError::Full(_))));
        assert!(matches!(re.insert(&b[1]), Err(SplitError::Full(_))));
        assert!(re.held_bytes() <= 100);
        assert_eq!(re.evict_oldest(), Some(1));
        re.insert(&b[1])?;
        Ok(())
    }
}
