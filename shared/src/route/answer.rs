//! The answer to a slot: what became of its deposit and of its request.

use super::kdf;
use super::{InnerAnswer, RouteError};

/// Length of a sealed answer in a down cell.
pub const ANSWER_LEN: usize = ANSWER_PLAIN_LEN + kdf::AEAD_TAG_LEN;
/// Length of an answer's plaintext.
pub(crate) const ANSWER_PLAIN_LEN: usize = 48;
/// Length of the deposit field of an answer (an outcome, or the destination's sealed
/// [`InnerAnswer`]).
pub(crate) const DEPOSIT_FIELD_LEN: usize = 24;
/// Length of an encoded [`DepositOutcome`] before padding.
pub(crate) const OUTCOME_LEN: usize = 5;

/// What became of a slot's deposit (docs/PROTOCOL.md, hum/2 §H4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DepositOutcome {
    /// The slot carried no deposit (a dummy).
    #[default]
    None,
    /// The destination relay stored it: the envelope counts as sent.
    Stored,
    /// A quota was reached: deposit again later, with a fresh tag seed.
    Full,
    /// The deposit was for an epoch the destination is not in (nor about to be): make it
    /// again for `epoch`.
    Retry {
        /// The destination relay's current epoch.
        epoch: u32,
    },
    /// No answer came back, or it did not open: deposit again later.
    Unknown,
}

impl DepositOutcome {
    /// Writes `kind || epoch` ([`OUTCOME_LEN`] bytes) at the start of `out`.
    pub(crate) fn encode(&self, out: &mut [u8]) {
        let (kind, epoch) = match self {
            DepositOutcome::None => (0, 0),
            DepositOutcome::Stored => (1, 0),
            DepositOutcome::Full => (2, 0),
            DepositOutcome::Retry { epoch } => (3, *epoch),
            DepositOutcome::Unknown => (4, 0),
        };
        out[0] = kind;
        out[1..5].copy_from_slice(&epoch.to_be_bytes());
    }

    /// Reads what [`DepositOutcome::encode`] wrote; the rest of `field` must be zero.
    pub(crate) fn decode(field: &[u8]) -> Result<DepositOutcome, RouteError> {
        if field.len() < OUTCOME_LEN {
            return Err(RouteError::Malformed("deposit outcome"));
        }
        kdf::zeros("deposit outcome padding", &field[OUTCOME_LEN..])?;
        let epoch = kdf::u32_at(field, 1);
        let outcome = match field[0] {
            0 => DepositOutcome::None,
            1 => DepositOutcome::Stored,
            2 => DepositOutcome::Full,
            3 => return Ok(DepositOutcome::Retry { epoch }),
            4 => DepositOutcome::Unknown,
            _ => return Err(RouteError::Malformed("deposit outcome kind")),
        };
        if epoch != 0 {
            return Err(RouteError::Malformed("deposit outcome padding"));
        }
        Ok(outcome)
    }
}

/// What became of a slot's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestOutcome {
    /// No request, or a delete (whose outcome is not told).
    #[default]
    None,
    /// A catch-up page: whether an item was found (it is the reply item), the sequence to
    /// ask after next, and whether more items of that bucket and epoch follow.
    CatchUp {
        /// An item matched; it is in the reply item.
        found: bool,
        /// The `after` of the next page.
        next_after: u64,
        /// More stored items follow `next_after`.
        more: bool,
    },
}

/// What the relay says about a deposit: its own outcome (dummy and local deposits), or
/// the destination relay's sealed answer passed through (forwarded deposits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepositReply {
    /// The home relay's outcome.
    Outcome(DepositOutcome),
    /// The destination relay's answer, which only the client opens.
    Forwarded(InnerAnswer),
}

/// An opened answer, as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Answer {
    /// What became of the deposit.
    pub deposit: DepositOutcome,
    /// What became of the request.
    pub request: RequestOutcome,
}

/// Writes an answer's plaintext: `deposit field (24) || request kind || found ||
/// next_after || more || zero`.
pub(crate) fn encode_plain(deposit: &DepositReply, request: &RequestOutcome) -> [u8; 48] {
    let mut out = [0u8; ANSWER_PLAIN_LEN];
    match deposit {
        DepositReply::Outcome(o) => o.encode(&mut out[..DEPOSIT_FIELD_LEN]),
        DepositReply::Forwarded(a) => out[..DEPOSIT_FIELD_LEN].copy_from_slice(a.as_bytes()),
    }
    if let RequestOutcome::CatchUp {
        found,
        next_after,
        more,
    } = request
    {
        out[24] = 1;
        out[25] = u8::from(*found);
        out[26..34].copy_from_slice(&next_after.to_be_bytes());
        out[34] = u8::from(*more);
    }
    out
}

/// Reads an answer's request outcome (bytes 24..48 of the plaintext).
pub(crate) fn decode_request(plain: &[u8; 48]) -> Result<RequestOutcome, RouteError> {
    kdf::zeros("answer padding", &plain[35..])?;
    let flag = |b: u8| match b {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(RouteError::Malformed("answer flag")),
    };
    match plain[24] {
        0 => {
            kdf::zeros("answer padding", &plain[25..35])?;
            Ok(RequestOutcome::None)
        }
        1 => Ok(RequestOutcome::CatchUp {
            found: flag(plain[25])?,
            next_after: kdf::u64_at(plain, 26),
            more: flag(plain[34])?,
        }),
        _ => Err(RouteError::Malformed("answer request kind")),
    }
}
