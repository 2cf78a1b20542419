//! The request half of a slot: catch-up or delete, addressed to the home relay.

use super::kdf;
use super::{COPY_TAG_LEN, CopyTag, DetectionKey, MAX_BUCKETS, RouteError, TagSecret};

/// Length of the request field of a slot's plaintext (the largest request, a delete).
pub(crate) const REQUEST_FIELD_LEN: usize = 2 + 4 + COPY_TAG_LEN + 32;

/// What a slot asks of the client's home relay besides its deposit (docs/PROTOCOL.md,
/// hum/2 §H4.3). Catch-up requests go in slots of odd ticks only, so their reply item
/// lands in the odd-tick item of the down cell two ticks later.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Request {
    /// Nothing.
    #[default]
    None,
    /// The item of rank `rank` among the entries of `bucket` in `epoch` after sequence
    /// `after` whose flags match `detect`.
    CatchUp(CatchUp),
    /// Delete the copy tagged `tag` in `bucket` of `epoch`; `proof` is its tag secret.
    Delete(Delete),
}

/// Requests in one page of a catch-up: the ranks 0 to 7 after one anchor.
pub const CATCH_UP_PAGE: u8 = 8;

/// A catch-up request: one rank of one page of one epoch of one bucket. The requests of a
/// page share their anchor `after` and differ in `rank`, so none needs another's answer
/// and they go in consecutive request slots (docs/PROTOCOL.md, hum/2 §H6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUp {
    /// The bucket (the requester's own, in that epoch).
    pub bucket: u16,
    /// The home relay's epoch asked about.
    pub epoch: u32,
    /// The requester's detection key of that epoch.
    pub detect: DetectionKey,
    /// The page's anchor: the sequence number after which to look (0 for the first page,
    /// then the `next_after` of the last rank of the page before).
    pub after: u64,
    /// Which match after the anchor: 0 the first, up to [`CATCH_UP_PAGE`] - 1. Deleted and
    /// expired copies keep their rank at the relay, so a rank names the same copy for as
    /// long as its epoch is held.
    pub rank: u8,
}

/// A delete request: the recipient shows the tag secret of a copy it received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// The bucket of the copy.
    pub bucket: u16,
    /// The epoch of the copy.
    pub epoch: u32,
    /// The copy's tag.
    pub tag: CopyTag,
    /// The attempt's tag secret, whose hash is the seed the copy was made from.
    pub proof: TagSecret,
}

impl Request {
    /// The kind number written in the slot (0 none, 1 catch-up, 2 delete).
    pub(crate) fn kind(&self) -> u8 {
        match self {
            Request::None => 0,
            Request::CatchUp(_) => 1,
            Request::Delete(_) => 2,
        }
    }

    /// Writes the request field (zero-padded).
    pub(crate) fn encode(&self, out: &mut [u8]) {
        out.fill(0);
        match self {
            Request::None => {}
            Request::CatchUp(c) => {
                out[..2].copy_from_slice(&c.bucket.to_be_bytes());
                out[2..6].copy_from_slice(&c.epoch.to_be_bytes());
                out[6..38].copy_from_slice(c.detect.expose_secret());
                out[38..46].copy_from_slice(&c.after.to_be_bytes());
                out[46] = c.rank;
            }
            Request::Delete(d) => {
                out[..2].copy_from_slice(&d.bucket.to_be_bytes());
                out[2..6].copy_from_slice(&d.epoch.to_be_bytes());
                out[6..22].copy_from_slice(d.tag.as_bytes());
                out[22..54].copy_from_slice(d.proof.expose_secret());
            }
        }
    }

    /// Reads a request field of `kind`.
    pub(crate) fn decode(kind: u8, field: &[u8]) -> Result<Request, RouteError> {
        let field = kdf::exact::<REQUEST_FIELD_LEN>("request", field)?;
        let bucket = kdf::u16_at(field, 0);
        let request = match kind {
            0 => {
                kdf::zeros("empty request padding", field)?;
                return Ok(Request::None);
            }
            1 => {
                kdf::zeros("catch-up padding", &field[47..])?;
                Request::CatchUp(CatchUp {
                    bucket,
                    epoch: kdf::u32_at(field, 2),
                    detect: DetectionKey::from_bytes(kdf::take(field, 6)),
                    after: kdf::u64_at(field, 38),
                    rank: field[46],
                })
            }
            2 => Request::Delete(Delete {
                bucket,
                epoch: kdf::u32_at(field, 2),
                tag: CopyTag::from_bytes(kdf::take(field, 6)),
                proof: TagSecret::from_bytes(kdf::take(field, 22)),
            }),
            _ => return Err(RouteError::Malformed("request kind")),
        };
        if bucket >= MAX_BUCKETS {
            return Err(RouteError::BucketOutOfRange {
                bucket,
                buckets: MAX_BUCKETS,
            });
        }
        Ok(request)
    }
}
