//! The frames relays exchange each tick after the link hello (docs/PROTOCOL.md, hum/2
//! §H5.2). Every frame's size follows from the link's configuration alone, never from
//! activity, and a reader never allocates more than that size.

use super::kdf;
use super::{
    ANSWER_LEN, INNER_ANSWER_LEN, INNER_BLOB_LEN, ITEM_LEN, InnerAnswer, InnerBlob, Item,
    LinkConfig, RouteError, SLOT_KEY_LEN, SLOT_LEN, Slot, SlotKey,
};

/// Length of a frame header: kind (1) and body length (u32).
pub const FRAME_HEADER_LEN: usize = 5;
/// Length of a directory update's body.
pub const DIRECTORY_UPDATE_LEN: usize = 8 + 4 + 4 + 4 + 2 + 1 + 1 + 2 * SLOT_KEY_LEN;

/// The kinds of link frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Entry to home: a tick's slots.
    Slots,
    /// Home to entry: the answers (and, on odd ticks, reply items) of a slot batch.
    Replies,
    /// Mailbox to entry: one item per bucket.
    Stream,
    /// Home to destination: inner blobs.
    Forward,
    /// Destination to home: the inner answers of a forward batch.
    ForwardAnswers,
    /// Mailbox to entry: its directory entry (clock and slot keys).
    Directory,
}

impl FrameKind {
    fn byte(self) -> u8 {
        match self {
            FrameKind::Slots => 1,
            FrameKind::Replies => 2,
            FrameKind::Stream => 3,
            FrameKind::Forward => 4,
            FrameKind::ForwardAnswers => 5,
            FrameKind::Directory => 6,
        }
    }

    fn from_byte(b: u8) -> Result<FrameKind, RouteError> {
        Ok(match b {
            1 => FrameKind::Slots,
            2 => FrameKind::Replies,
            3 => FrameKind::Stream,
            4 => FrameKind::Forward,
            5 => FrameKind::ForwardAnswers,
            6 => FrameKind::Directory,
            _ => return Err(RouteError::Malformed("link frame kind")),
        })
    }
}

/// The body lengths a frame of `kind` may have under `cfg` (reply batches have two: with
/// and without items).
fn body_lens(kind: FrameKind, cfg: &LinkConfig) -> [usize; 2] {
    let c = cfg.capacity;
    let one = |n| [n, n];
    match kind {
        FrameKind::Slots => one(8 + c * SLOT_LEN),
        FrameKind::Replies => [8 + c * ANSWER_LEN, 8 + c * (ANSWER_LEN + ITEM_LEN)],
        FrameKind::Stream => one(8 + 4 + cfg.buckets * ITEM_LEN),
        FrameKind::Forward => one(8 + c * (1 + INNER_BLOB_LEN)),
        FrameKind::ForwardAnswers => one(8 + c * INNER_ANSWER_LEN),
        FrameKind::Directory => one(DIRECTORY_UPDATE_LEN),
    }
}

/// Reads a frame header and returns the kind and the body length to read next, checked
/// against what `cfg` allows (so the reader allocates nothing a peer merely claims).
///
/// # Errors
/// [`RouteError::Incomplete`] with fewer than [`FRAME_HEADER_LEN`] bytes;
/// [`RouteError::Malformed`] for an unknown kind; [`RouteError::Length`] for a body length
/// the configuration does not give.
pub fn read_frame_header(
    header: &[u8],
    cfg: &LinkConfig,
) -> Result<(FrameKind, usize), RouteError> {
    if header.len() < FRAME_HEADER_LEN {
        return Err(RouteError::Incomplete {
            what: "link frame header",
            have: header.len(),
            need: FRAME_HEADER_LEN,
        });
    }
    let kind = FrameKind::from_byte(header[0])?;
    let len = kdf::u32_at(header, 1) as usize;
    let allowed = body_lens(kind, cfg);
    if !allowed.contains(&len) {
        return Err(RouteError::Length {
            what: "link frame",
            expected: allowed[0],
            actual: len,
        });
    }
    Ok((kind, len))
}

/// Entry to home: the slots of entry tick `tick`, exactly `capacity` (real ones and
/// dummies, shuffled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotBatch {
    /// The entry relay's tick (in every slot's associated data).
    pub tick: u64,
    /// The slots.
    pub slots: Vec<Slot>,
}

/// Home to entry: one answer per slot of the batch of `tick`, in batch order, and on odd
/// ticks one reply item per slot too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyBatch {
    /// The tick of the slot batch answered.
    pub tick: u64,
    /// The sealed answers.
    pub answers: Vec<[u8; ANSWER_LEN]>,
    /// The sealed reply items: `capacity` of them when `tick` is odd, none when even.
    pub items: Vec<Item>,
}

/// Mailbox to entry, on the mailbox relay's even ticks: bucket `b`'s next item at place
/// `b`, or random bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBatch {
    /// The mailbox relay's tick.
    pub tick: u64,
    /// The mailbox relay's epoch of the buckets.
    pub epoch: u32,
    /// One item per bucket.
    pub items: Vec<Item>,
}

/// Home to destination: `capacity` places, each a real inner blob or padding. A clear
/// byte marks the real ones (the destination may learn how many real deposits came from
/// this home relay in a tick).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardBatch {
    /// The home relay's tick.
    pub tick: u64,
    /// The places: `Some` for a real blob, `None` for padding (random bytes on the wire).
    pub blobs: Vec<Option<InnerBlob>>,
}

/// Destination to home: one sealed inner answer per place of the forward batch of `tick`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAnswers {
    /// The tick of the forward batch answered.
    pub tick: u64,
    /// The answers, by place (random bytes for padding places).
    pub answers: Vec<InnerAnswer>,
}

/// Mailbox to entry: the mailbox relay's directory entry, less the address and
/// certificate the entry relay knows from its relays file and the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUpdate {
    /// The mailbox relay's tick at which the clock holds.
    pub tick: u64,
    /// Its epoch.
    pub epoch: u32,
    /// Its tick in that epoch.
    pub tick_in_epoch: u32,
    /// Ticks per epoch.
    pub epoch_ticks: u32,
    /// Bucket count.
    pub buckets: u16,
    /// Flag bits.
    pub flag_bits: u8,
    /// The current and next slot keys (at most two).
    pub slot_keys: Vec<SlotKey>,
}

/// One link frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkFrame {
    /// A slot batch.
    Slots(SlotBatch),
    /// A reply batch.
    Replies(ReplyBatch),
    /// A stream batch.
    Stream(StreamBatch),
    /// A forward batch.
    Forward(ForwardBatch),
    /// Forward answers.
    ForwardAnswers(ForwardAnswers),
    /// A directory update.
    Directory(DirectoryUpdate),
}

fn count(expected: usize, actual: usize) -> Result<(), RouteError> {
    if expected == actual {
        Ok(())
    } else {
        Err(RouteError::BatchSize { expected, actual })
    }
}

impl LinkFrame {
    /// The frame's kind.
    pub fn kind(&self) -> FrameKind {
        match self {
            LinkFrame::Slots(_) => FrameKind::Slots,
            LinkFrame::Replies(_) => FrameKind::Replies,
            LinkFrame::Stream(_) => FrameKind::Stream,
            LinkFrame::Forward(_) => FrameKind::Forward,
            LinkFrame::ForwardAnswers(_) => FrameKind::ForwardAnswers,
            LinkFrame::Directory(_) => FrameKind::Directory,
        }
    }

    /// The frame's bytes, header included.
    ///
    /// # Errors
    /// [`RouteError::BatchSize`] unless every batch has exactly the entries `cfg` gives
    /// (reply items: `capacity` on odd ticks, none on even ones);
    /// [`RouteError::TooLarge`] for more than two slot keys.
    pub fn encode(&self, cfg: &LinkConfig) -> Result<Vec<u8>, RouteError> {
        let mut body = Vec::new();
        match self {
            LinkFrame::Slots(b) => {
                count(cfg.capacity, b.slots.len())?;
                body.extend_from_slice(&b.tick.to_be_bytes());
                b.slots
                    .iter()
                    .for_each(|s| body.extend_from_slice(s.as_bytes()));
            }
            LinkFrame::Replies(b) => {
                count(cfg.capacity, b.answers.len())?;
                count(
                    if b.tick % 2 == 1 { cfg.capacity } else { 0 },
                    b.items.len(),
                )?;
                body.extend_from_slice(&b.tick.to_be_bytes());
                b.answers.iter().for_each(|a| body.extend_from_slice(a));
                b.items
                    .iter()
                    .for_each(|i| body.extend_from_slice(i.as_bytes()));
            }
            LinkFrame::Stream(b) => {
                count(cfg.buckets, b.items.len())?;
                body.extend_from_slice(&b.tick.to_be_bytes());
                body.extend_from_slice(&b.epoch.to_be_bytes());
                b.items
                    .iter()
                    .for_each(|i| body.extend_from_slice(i.as_bytes()));
            }
            LinkFrame::Forward(b) => {
                count(cfg.capacity, b.blobs.len())?;
                body.extend_from_slice(&b.tick.to_be_bytes());
                for blob in &b.blobs {
                    match blob {
                        Some(blob) => {
                            body.push(1);
                            body.extend_from_slice(blob.as_bytes());
                        }
                        None => {
                            body.push(0);
                            body.extend_from_slice(InnerBlob::random().as_bytes());
                        }
                    }
                }
            }
            LinkFrame::ForwardAnswers(b) => {
                count(cfg.capacity, b.answers.len())?;
                body.extend_from_slice(&b.tick.to_be_bytes());
                b.answers
                    .iter()
                    .for_each(|a| body.extend_from_slice(a.as_bytes()));
            }
            LinkFrame::Directory(u) => {
                if u.slot_keys.len() > 2 {
                    return Err(RouteError::TooLarge {
                        what: "slot key list",
                        len: u.slot_keys.len(),
                        max: 2,
                    });
                }
                body.extend_from_slice(&u.tick.to_be_bytes());
                body.extend_from_slice(&u.epoch.to_be_bytes());
                body.extend_from_slice(&u.tick_in_epoch.to_be_bytes());
                body.extend_from_slice(&u.epoch_ticks.to_be_bytes());
                body.extend_from_slice(&u.buckets.to_be_bytes());
                body.push(u.flag_bits);
                body.push(u.slot_keys.len() as u8);
                u.slot_keys
                    .iter()
                    .for_each(|k| body.extend_from_slice(&k.encode()));
                body.resize(DIRECTORY_UPDATE_LEN, 0);
            }
        }
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
        out.push(self.kind().byte());
        // Bounded by MAX_LINK_CAPACITY entries of at most a few KiB.
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Reads a whole frame, header included (exactly: trailing bytes are refused).
    ///
    /// # Errors
    /// As [`read_frame_header`]; [`RouteError::Incomplete`] for a short body;
    /// [`RouteError::Length`] for trailing bytes; [`RouteError::Malformed`] for a place
    /// marker other than 0 or 1, a reply batch whose items do not match its tick's parity,
    /// or a directory update out of range.
    pub fn decode(bytes: &[u8], cfg: &LinkConfig) -> Result<LinkFrame, RouteError> {
        let (kind, len) = read_frame_header(bytes, cfg)?;
        let total = FRAME_HEADER_LEN + len;
        if bytes.len() < total {
            return Err(RouteError::Incomplete {
                what: "link frame",
                have: bytes.len(),
                need: total,
            });
        }
        if bytes.len() > total {
            return Err(RouteError::Length {
                what: "link frame",
                expected: total,
                actual: bytes.len(),
            });
        }
        let body = &bytes[FRAME_HEADER_LEN..];
        let tick = kdf::u64_at(body, 0);
        let rest = &body[8..];
        Ok(match kind {
            FrameKind::Slots => LinkFrame::Slots(SlotBatch {
                tick,
                slots: rest
                    .chunks_exact(SLOT_LEN)
                    .map(Slot::from_bytes)
                    .collect::<Result<_, _>>()?,
            }),
            FrameKind::Replies => {
                let with_items = len == body_lens(kind, cfg)[1] && cfg.capacity > 0;
                if with_items != (tick % 2 == 1) && cfg.capacity > 0 {
                    return Err(RouteError::Malformed("reply batch parity"));
                }
                let (answers, items) = rest.split_at(cfg.capacity * ANSWER_LEN);
                LinkFrame::Replies(ReplyBatch {
                    tick,
                    answers: answers
                        .chunks_exact(ANSWER_LEN)
                        .map(|a| kdf::take(a, 0))
                        .collect(),
                    items: items
                        .chunks_exact(ITEM_LEN)
                        .map(Item::from_bytes)
                        .collect::<Result<_, _>>()?,
                })
            }
            FrameKind::Stream => LinkFrame::Stream(StreamBatch {
                tick,
                epoch: kdf::u32_at(rest, 0),
                items: rest[4..]
                    .chunks_exact(ITEM_LEN)
                    .map(Item::from_bytes)
                    .collect::<Result<_, _>>()?,
            }),
            FrameKind::Forward => LinkFrame::Forward(ForwardBatch {
                tick,
                blobs: rest
                    .chunks_exact(1 + INNER_BLOB_LEN)
                    .map(|place| match place[0] {
                        0 => Ok(None),
                        1 => InnerBlob::from_bytes(&place[1..]).map(Some),
                        _ => Err(RouteError::Malformed("forward place marker")),
                    })
                    .collect::<Result<_, _>>()?,
            }),
            FrameKind::ForwardAnswers => LinkFrame::ForwardAnswers(ForwardAnswers {
                tick,
                answers: rest
                    .chunks_exact(INNER_ANSWER_LEN)
                    .map(InnerAnswer::from_bytes)
                    .collect::<Result<_, _>>()?,
            }),
            FrameKind::Directory => LinkFrame::Directory(decode_update(tick, rest)?),
        })
    }
}

fn decode_update(tick: u64, rest: &[u8]) -> Result<DirectoryUpdate, RouteError> {
    let keys = usize::from(rest[15]);
    if keys > 2 {
        return Err(RouteError::Malformed("directory update key count"));
    }
    kdf::zeros(
        "directory update padding",
        &rest[16 + keys * SLOT_KEY_LEN..],
    )?;
    let update = DirectoryUpdate {
        tick,
        epoch: kdf::u32_at(rest, 0),
        tick_in_epoch: kdf::u32_at(rest, 4),
        epoch_ticks: kdf::u32_at(rest, 8),
        buckets: kdf::u16_at(rest, 12),
        flag_bits: rest[14],
        slot_keys: (0..keys)
            .map(|i| SlotKey::decode(&rest[16 + i * SLOT_KEY_LEN..16 + (i + 1) * SLOT_KEY_LEN]))
            .collect::<Result<_, _>>()?,
    };
    if update.epoch_ticks == 0
        || update.tick_in_epoch >= update.epoch_ticks
        || update.buckets == 0
        || update.buckets > super::MAX_BUCKETS
    {
        return Err(RouteError::Malformed("directory update clock or buckets"));
    }
    super::flag_mask(update.flag_bits)?;
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: LinkConfig = LinkConfig {
        capacity: 3,
        buckets: 4,
    };

    #[test]
    fn sizes_follow_the_configuration_only() -> Result<(), RouteError> {
        let even = LinkFrame::Replies(ReplyBatch {
            tick: 10,
            answers: vec![[1; ANSWER_LEN]; 3],
            items: vec![],
        });
        let odd = LinkFrame::Replies(ReplyBatch {
            tick: 11,
            answers: vec![[1; ANSWER_LEN]; 3],
            items: vec![Item::random(), Item::random(), Item::random()],
        });
        for f in [&even, &odd] {
            let bytes = f.encode(&CFG)?;
            assert_eq!(&LinkFrame::decode(&bytes, &CFG)?, f);
        }
        let short = LinkFrame::Replies(ReplyBatch {
            tick: 11,
            answers: vec![[1; ANSWER_LEN]; 3],
            items: vec![],
        });
        assert_eq!(
            short.encode(&CFG),
            Err(RouteError::BatchSize {
                expected: 3,
                actual: 0
            })
        );
        // An odd tick claimed on an even-sized batch.
        let mut bytes = even.encode(&CFG)?;
        bytes[FRAME_HEADER_LEN + 7] = 11;
        assert_eq!(
            LinkFrame::decode(&bytes, &CFG),
            Err(RouteError::Malformed("reply batch parity"))
        );
        Ok(())
    }

    #[test]
    fn a_claimed_length_beyond_the_configuration_is_refused_before_reading() {
        let mut header = [0u8; FRAME_HEADER_LEN];
        header[0] = 1;
        header[1..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_frame_header(&header, &CFG),
            Err(RouteError::Length { .. })
        ));
        header[0] = 77;
        assert_eq!(
            read_frame_header(&header, &CFG),
            Err(RouteError::Malformed("link frame kind"))
        );
        assert!(matches!(
            read_frame_header(&header[..2], &CFG),
            Err(RouteError::Incomplete { .. })
        ));
    }

    #[test]
    fn forward_padding_is_random_on_the_wire() -> Result<(), RouteError> {
        let f = LinkFrame::Forward(ForwardBatch {
            tick: 3,
            blobs: vec![None, Some(InnerBlob::random()), None],
        });
        let a = f.encode(&CFG)?;
        let b = f.encode(&CFG)?;
        assert_eq!(a.len(), b.len());
        assert_ne!(a, b);
        assert_eq!(LinkFrame::decode(&a, &CFG)?, f);
        let mut bad = a;
        bad[FRAME_HEADER_LEN + 8] = 2;
        assert_eq!(
            LinkFrame::decode(&bad, &CFG),
            Err(RouteError::Malformed("forward place marker"))
        );
        Ok(())
    }
}
