//! The deposit: what a destination relay stores, one copy per bucket.

use super::kdf;
use super::{Item, MAX_BUCKETS, RouteError, TagSeed, WRAPPED_LEN, WrappedEnvelope};

/// The most copies (recipients homed at one relay) one deposit lists.
pub const MAX_COPIES: usize = 64;

/// Length of an encoded deposit body (`InnerPlain` without its epoch): the copy count,
/// 64 `(bucket, flag)` pairs, the tag seed and the wrapped envelope.
pub const DEPOSIT_LEN: usize = 1 + 2 * MAX_COPIES + 32 + WRAPPED_LEN;

/// One recipient's entry in a deposit: its bucket at the destination relay and the flag
/// its detection key gives the copy there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Copy {
    /// The recipient's bucket (below the relay's bucket count, at most 255).
    pub bucket: u16,
    /// `DK(recipient, e).flag(seed.copy_tag(bucket))`.
    pub flag: u8,
}

/// What a destination relay stores (docs/PROTOCOL.md, hum/2 §H4.3, `InnerPlain`): the
/// destination epoch, the copies (1:1, one; a group, one per member homed there), the tag
/// seed and the wrapped envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    epoch: u32,
    copies: Vec<Copy>,
    seed: TagSeed,
    payload: WrappedEnvelope,
}

/// One bucket's copy of a deposit, as the destination relay stores and streams it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketCopy {
    /// The bucket.
    pub bucket: u16,
    /// The rewrapped item for that bucket.
    pub item: Item,
    /// The flags of the recipients in that bucket (for catch-up).
    pub flags: Vec<u8>,
}

impl Deposit {
    /// A deposit for the destination relay's `epoch`.
    ///
    /// # Errors
    /// [`RouteError::CopyCount`] for no copies or more than [`MAX_COPIES`];
    /// [`RouteError::BucketOutOfRange`] for a bucket above 255.
    pub fn new(
        epoch: u32,
        copies: &[Copy],
        seed: TagSeed,
        payload: WrappedEnvelope,
    ) -> Result<Deposit, RouteError> {
        if copies.is_empty() || copies.len() > MAX_COPIES {
            return Err(RouteError::CopyCount(copies.len()));
        }
        if let Some(c) = copies.iter().find(|c| c.bucket >= MAX_BUCKETS) {
            return Err(RouteError::BucketOutOfRange {
                bucket: c.bucket,
                buckets: MAX_BUCKETS,
            });
        }
        Ok(Deposit {
            epoch,
            copies: copies.to_vec(),
            seed,
            payload,
        })
    }

    /// The destination relay's epoch the deposit is for.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The copies, as the sender listed them.
    pub fn copies(&self) -> &[Copy] {
        &self.copies
    }

    /// The tag seed.
    pub fn seed(&self) -> &TagSeed {
        &self.seed
    }

    /// The wrapped envelope.
    pub fn payload(&self) -> &WrappedEnvelope {
        &self.payload
    }

    /// One copy per distinct bucket (in bucket order), each rewrapped and carrying the
    /// flags of the recipients in that bucket: what the destination relay stores.
    pub fn bucket_copies(&self) -> Vec<BucketCopy> {
        let mut buckets: Vec<u16> = self.copies.iter().map(|c| c.bucket).collect();
        buckets.sort_unstable();
        buckets.dedup();
        buckets
            .into_iter()
            .map(|bucket| BucketCopy {
                bucket,
                item: Item::rewrap(&self.seed, bucket, &self.payload),
                flags: self
                    .copies
                    .iter()
                    .filter(|c| c.bucket == bucket)
                    .map(|c| c.flag)
                    .collect(),
            })
            .collect()
    }

    /// Writes the body: `count || copies (zero-padded to 64) || seed || P`.
    pub(crate) fn encode_body(&self, out: &mut [u8]) {
        out.fill(0);
        // `new` and `decode_body` keep the count within 1..=64 and buckets below 256.
        out[0] = self.copies.len() as u8;
        for (i, c) in self.copies.iter().enumerate() {
            out[1 + 2 * i] = c.bucket as u8;
            out[2 + 2 * i] = c.flag;
        }
        let at = 1 + 2 * MAX_COPIES;
        out[at..at + 32].copy_from_slice(self.seed.as_bytes());
        out[at + 32..DEPOSIT_LEN].copy_from_slice(self.payload.as_bytes());
    }

    /// Reads a body written by [`Deposit::encode_body`].
    pub(crate) fn decode_body(epoch: u32, body: &[u8]) -> Result<Deposit, RouteError> {
        let body = kdf::exact::<DEPOSIT_LEN>("deposit", body)?;
        let count = usize::from(body[0]);
        if count == 0 || count > MAX_COPIES {
            return Err(RouteError::Malformed("deposit copy count"));
        }
        kdf::zeros(
            "deposit copy padding",
            &body[1 + 2 * count..1 + 2 * MAX_COPIES],
        )?;
        let copies: Vec<Copy> = (0..count)
            .map(|i| Copy {
                bucket: u16::from(body[1 + 2 * i]),
                flag: body[2 + 2 * i],
            })
            .collect();
        let at = 1 + 2 * MAX_COPIES;
        Ok(Deposit {
            epoch,
            copies,
            seed: TagSeed::from_bytes(kdf::take(body, at)),
            payload: WrappedEnvelope::from_bytes(&body[at + 32..])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::TagSecret;

    fn deposit(copies: &[Copy]) -> Result<Deposit, RouteError> {
        Deposit::new(
            9,
            copies,
            TagSecret::from_bytes([1; 32]).seed(),
            WrappedEnvelope::random(),
        )
    }

    #[test]
    fn copies_group_by_bucket() -> Result<(), RouteError> {
        let d = deposit(&[
            Copy { bucket: 7, flag: 1 },
            Copy { bucket: 2, flag: 5 },
            Copy { bucket: 7, flag: 3 },
        ])?;
        let c = d.bucket_copies();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].bucket, c[0].flags.clone()), (2, vec![5]));
        assert_eq!((c[1].bucket, c[1].flags.clone()), (7, vec![1, 3]));
        assert_eq!(c[1].item.tag(), d.seed().copy_tag(7));
        Ok(())
    }

    #[test]
    fn bounds_and_padding() -> Result<(), RouteError> {
        assert_eq!(deposit(&[]), Err(RouteError::CopyCount(0)));
        let many = vec![Copy { bucket: 1, flag: 0 }; MAX_COPIES + 1];
        assert_eq!(deposit(&many), Err(RouteError::CopyCount(65)));
        assert!(
            deposit(&[Copy {
                bucket: 256,
                flag: 0
            }])
            .is_err()
        );
        let d = deposit(&[Copy {
            bucket: 255,
            flag: 9,
        }])?;
        let mut body = [0u8; DEPOSIT_LEN];
        d.encode_body(&mut body);
        assert_eq!(Deposit::decode_body(9, &body)?, d);
        body[5] = 1;
        assert_eq!(
            Deposit::decode_body(9, &body),
            Err(RouteError::Malformed("deposit copy padding"))
        );
        body[5] = 0;
        body[0] = 0;
        assert!(Deposit::decode_body(9, &body).is_err());
        body[0] = 65;
        assert!(Deposit::decode_body(9, &body).is_err());
        Ok(())
    }
}
