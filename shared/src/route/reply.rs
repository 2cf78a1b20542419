//! Answers and reply items by position: the relay seals them with a slot's one-use
//! keys, the client opens them two ticks later (docs/PROTOCOL.md, hum/2 §H4.4).

use zeroize::Zeroizing;

use super::answer::{self, ANSWER_PLAIN_LEN, DEPOSIT_FIELD_LEN};
use super::inner::InnerAnswerKey;
use super::kdf::{self, L_ANSWER_AD};
use super::slot::DepositKind;
use super::{ANSWER_LEN, Answer, DepositOutcome, DepositReply, Item, RequestOutcome, RouteError};

/// The answer and reply item keys of one slot, or the clear form.
pub(crate) enum Layer {
    Sealed {
        answer: Zeroizing<[u8; 32]>,
        item: Zeroizing<[u8; 32]>,
    },
    Clear,
}

impl Layer {
    /// `K_answer` and `K_item`: bytes 32..64 and 64..96 of the slot keys.
    pub(crate) fn sealed(okm: &[u8; 96]) -> Layer {
        Layer::Sealed {
            answer: Zeroizing::new(kdf::take(okm, 32)),
            item: Zeroizing::new(kdf::take(okm, 64)),
        }
    }

    fn item(&self, item: &Item) -> Item {
        let mut out = item.clone();
        if let Layer::Sealed { item: key, .. } = self {
            kdf::xor_stream(key, &[0u8; 24], out.as_mut_bytes());
        }
        out
    }
}

/// What the client keeps of a slot it sealed, to open the answer and the reply item in
/// the down cell two ticks later. Zeroized on drop; `Debug` prints nothing.
pub struct ReplyKeys {
    layer: Layer,
    kind: DepositKind,
    inner: Option<InnerAnswerKey>,
}

impl ReplyKeys {
    pub(crate) fn new(layer: Layer, kind: DepositKind, inner: Option<InnerAnswerKey>) -> Self {
        ReplyKeys { layer, kind, inner }
    }

    /// Opens the answer. For a forwarded deposit the destination's answer inside is
    /// opened too; if that one does not open (the destination did not answer in time, or
    /// the home relay changed it) the deposit outcome is [`DepositOutcome::Unknown`],
    /// unless the home relay said `Full` itself (its forward batch was full).
    ///
    /// # Errors
    /// [`RouteError::DecryptFailed`] if the answer does not open (count it as
    /// `Unknown`); [`RouteError::Malformed`] for a plaintext that does not decode.
    pub fn open_answer(&self, sealed: &[u8; ANSWER_LEN]) -> Result<Answer, RouteError> {
        let mut plain = Zeroizing::new([0u8; ANSWER_PLAIN_LEN]);
        match &self.layer {
            Layer::Sealed { answer: key, .. } => {
                kdf::open_zero_nonce(key, sealed, L_ANSWER_AD, &mut plain[..])?;
            }
            Layer::Clear => {
                kdf::zeros("clear answer tail", &sealed[ANSWER_PLAIN_LEN..])?;
                plain.copy_from_slice(&sealed[..ANSWER_PLAIN_LEN]);
            }
        }
        let field = &plain[..DEPOSIT_FIELD_LEN];
        let deposit = match &self.inner {
            // The home relay's own `Full` (its forward batch to the destination was
            // full) is the one outcome it gives a forwarded deposit itself.
            Some(key) => key
                .open(field)
                .unwrap_or_else(|_| match DepositOutcome::decode(field) {
                    Ok(DepositOutcome::Full) => DepositOutcome::Full,
                    _ => DepositOutcome::Unknown,
                }),
            None => DepositOutcome::decode(field)?,
        };
        if self.kind == DepositKind::Dummy && deposit != DepositOutcome::None {
            return Err(RouteError::Malformed("outcome for a dummy deposit"));
        }
        Ok(Answer {
            deposit,
            request: answer::decode_request(&plain)?,
        })
    }

    /// Opens the reply item (a catch-up result). There is no check: an item the relay
    /// did not fill opens to random bytes whose tag is in nobody's table.
    pub fn open_item(&self, item: &Item) -> Item {
        self.layer.item(item)
    }
}

impl std::fmt::Debug for ReplyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyKeys(..)")
    }
}

/// The relay's one-use sealer for one slot's answer and reply item.
pub struct SlotReplier {
    layer: Layer,
    kind: DepositKind,
}

/// A slot's sealed answer and reply item, for the down cell of tick `t + 2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The sealed answer.
    pub answer: [u8; ANSWER_LEN],
    /// The sealed reply item (random bytes if there was none to send).
    pub item: Item,
}

impl SlotReplier {
    pub(crate) fn new(layer: Layer, kind: DepositKind) -> SlotReplier {
        SlotReplier { layer, kind }
    }

    /// Whether the slot held a deposit to forward, whose answer comes from the
    /// destination ([`DepositReply::Forwarded`]).
    pub fn is_forward(&self) -> bool {
        self.kind == DepositKind::Forward
    }

    /// Seals the answer and the reply item (`item`, or random bytes without one). Uses
    /// the keys once: the replier is consumed.
    pub fn seal(
        self,
        deposit: &DepositReply,
        request: &RequestOutcome,
        item: Option<&Item>,
    ) -> Reply {
        let plain = Zeroizing::new(answer::encode_plain(deposit, request));
        let mut out = [0u8; ANSWER_LEN];
        let item = match item {
            Some(i) => self.layer.item(i),
            None => Item::random(),
        };
        match &self.layer {
            Layer::Sealed { answer: key, .. } => {
                // 48 bytes under a 32-byte key cannot fail; random bytes read as Unknown.
                if kdf::seal_zero_nonce(key, &plain[..], L_ANSWER_AD, &mut out).is_err() {
                    out = kdf::random();
                }
            }
            Layer::Clear => out[..ANSWER_PLAIN_LEN].copy_from_slice(&plain[..]),
        }
        Reply { answer: out, item }
    }
}

impl std::fmt::Debug for SlotReplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlotReplier(..)")
    }
}
