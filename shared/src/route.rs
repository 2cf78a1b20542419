//! hum/2's formats and cryptography: relay ids and slot keys, the delivery secret and its
//! derivations, cells, slots, items, answers, the directory, the replay guard and the
//! relay-link frames (docs/PROTOCOL.md, part "hum/2").
//!
//! Everything here is sans-IO: bytes in, bytes out, fixed sizes. The relay roles and the
//! client engine drive it.
//!
//! ```
//! use hum_shared::route::{
//!     Copy, Deposit, DeliverySecret, DepositOutcome, DepositReply, RelayId, Request,
//!     RequestOutcome, SlotDeposit, SlotKeyPair, SlotKeyring, TagKey, open_slot, seal_slot,
//! };
//! use hum_shared::crypto::Envelope;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The home relay's slot keys; the client verified the announcement of epoch 5.
//! let home_id = RelayId::from_bytes([1; 8]);
//! let entry_id = RelayId::from_bytes([2; 8]);
//! let mut keys = SlotKeyring::new();
//! keys.advance(5);
//! let home_key = keys.by_epoch(5).ok_or("no key")?.verified(home_id);
//!
//! // Alice deposits an envelope for Bob, homed at the same relay (64 buckets).
//! let bob = DeliverySecret::generate();
//! let attempt = TagKey::generate().secret(5, 0);
//! let seed = attempt.seed();
//! let bucket = bob.bucket(5, 64)?;
//! let flag = bob.detection_key(5).flag(&seed.copy_tag(bucket));
//! let envelope = Envelope::from_bytes(&[7; 896])?;
//! let payload = bob.wrap_key(5).wrap(&envelope);
//! let deposit = Deposit::new(5, &[Copy { bucket, flag }], seed.clone(), payload)?;
//! let (slot, reply_keys) =
//!     seal_slot(&home_key, entry_id, 100, SlotDeposit::Local(&deposit), &Request::None)?;
//!
//! // The home relay opens it, stores one item per bucket, and answers.
//! let opened = open_slot(&keys, entry_id, 100, &slot)?;
//! let reply = opened.replier.seal(
//!     &DepositReply::Outcome(DepositOutcome::Stored),
//!     &RequestOutcome::None,
//!     None,
//! );
//! assert_eq!(reply_keys.open_answer(&reply.answer)?.deposit, DepositOutcome::Stored);
//!
//! // Bob finds the item by its tag and unwraps the envelope.
//! let item = deposit.bucket_copies().remove(0).item;
//! assert_eq!(item.tag(), seed.copy_tag(bucket));
//! assert_eq!(bob.wrap_key(5).unwrap(&item.unwrap(&seed, bucket)?), envelope);
//! # Ok(())
//! # }
//! ```

mod answer;
mod cell;
mod delivery_secret;
mod deposit;
mod detection_key;
mod directory;
mod error;
mod hello;
mod inner;
mod item;
pub(crate) mod kdf;
mod link_frame;
mod link_hello;
mod relay_id;
mod replay_guard;
mod reply;
mod request;
pub mod session;
mod slot;
mod slot_key;
mod slot_key_pair;
mod tag_key;
mod tag_seed;
mod wrap_key;

pub use answer::{ANSWER_LEN, Answer, DepositOutcome, DepositReply, RequestOutcome};
pub use cell::{CELL_LEN, CELL_VERSION_2, DownCell, REFUSAL_VERSION, Refusal, UpCell};
pub use delivery_secret::DeliverySecret;
pub use deposit::{BucketCopy, Copy, DEPOSIT_LEN, Deposit, MAX_COPIES};
pub use detection_key::{DetectionKey, flag_mask, flag_matches};
pub use directory::{
    DIRECTORY_CHUNK_LEN, Directory, DirectoryChunk, DirectoryReassembler, MAX_CERTIFICATE_LEN,
    MAX_DIRECTORY_CHUNKS, MAX_DIRECTORY_LEN, MAX_RELAYS, RelayEntry,
};
pub use error::RouteError;
pub use hello::{ALPN_HUM2, HELLO_HEADER_LEN, HELLO_MAGIC, Hello};
pub use inner::{
    INNER_ANSWER_LEN, INNER_BLOB_LEN, InnerAnswer, InnerBlob, InnerReplier, OpenedInner, open_inner,
};
pub use item::{ITEM_LEN, Item};
pub use link_frame::{
    DIRECTORY_UPDATE_LEN, DirectoryUpdate, FRAME_HEADER_LEN, ForwardAnswers, ForwardBatch,
    FrameKind, LinkFrame, ReplyBatch, SlotBatch, StreamBatch, read_frame_header,
};
pub use link_hello::{
    ALPN_LINK, AgreedLink, LINK_HELLO_LEN, LINK_MAGIC, LinkConfig, LinkHello, LinkRole,
    MAX_LINK_CAPACITY,
};
pub use relay_id::{RELAY_ID_LEN, RelayId};
pub use replay_guard::ReplayGuard;
pub use reply::{Reply, ReplyKeys, SlotReplier};
pub use request::{CATCH_UP_PAGE, CatchUp, Delete, Request};
pub use slot::{
    OUTER_PLAIN_LEN, OpenedDeposit, OpenedSlot, SLOT_LEN, Slot, SlotDeposit, open_clear_slot,
    open_slot, seal_clear_slot, seal_slot,
};
pub use slot_key::{SLOT_KEY_LEN, SlotKey, VerifiedSlotKey, sign_slot_key};
pub use slot_key_pair::{SlotKeyPair, SlotKeyring};
pub use tag_key::{GroupTagKey, TagKey};
pub use tag_seed::{COPY_TAG_LEN, CopyTag, TagSecret, TagSeed};
pub use wrap_key::{WRAPPED_LEN, WrapKey, WrappedEnvelope};

/// The most buckets a mailbox relay may have (a deposit names buckets in one byte).
pub const MAX_BUCKETS: u16 = 256;

/// The digest curious logs name bytes by: the first 8 bytes of BLAKE2b-512, in hex
/// (docs/PROTOCOL.md, hum/2 §H8).
pub fn log_digest(bytes: &[u8]) -> String {
    match crate::crypto::kdf::blake2b_512(&[bytes]) {
        Ok(d) => crate::crypto::kdf::hex(&d[..8]),
        Err(_) => String::from("-"),
    }
}
