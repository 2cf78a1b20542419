//! End-to-end cryptography: identities, invites, X3DH, Double Ratchet, group sender keys
//! and sealed envelopes. See docs/PROTOCOL.md, section "3. Cryptography".
//!
//! Everything here is bytes in, bytes out. The primitives all come from audited crates:
//! Ed25519 (ed25519-dalek), X25519 (x25519-dalek), XChaCha20-Poly1305, BLAKE2b,
//! HKDF-SHA512 and HMAC-SHA512 (orion), Argon2id (argon2). The protocols follow published
//! designs: X3DH for the handshake, the Double Ratchet with header encryption for 1:1
//! sessions, and Signal's sender keys for groups.
//!
//! ```
//! use hum_shared::crypto::{Identity, Session};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let alice = Identity::generate();
//! let bob = Identity::generate();
//! let now = 1_800_000_000;
//! // Alice makes an invite and keeps the secret half.
//! let (invite, invite_secret) = alice.create_invite("hum://relay.example:7447#ab12", 3600, now)?;
//! let code = invite.encode();
//! // Bob pastes the code and answers with a sealed first message.
//! let invite = hum_shared::crypto::Invite::decode(&code, now + 10)?;
//! let (mut bob_session, first) = Session::initiate(&bob, &invite, b"hello")?;
//! // Alice opens it from the invite's one-time mailbox.
//! let (mut alice_session, who, text) = Session::respond(&alice, &invite_secret, &first)?;
//! assert_eq!(who, bob.public());
//! assert_eq!(text, b"hello");
//! let reply = alice_session.seal(b"hi bob")?;
//! assert_eq!(bob_session.open(&reply)?, b"hi bob");
//! # Ok(())
//! # }
//! ```

mod envelope;
mod error;
mod group;
mod identity;
mod invite;
mod invite_used;
#[cfg(test)]
mod kat;
pub(crate) mod kdf;
mod mailbox;
#[cfg(test)]
mod protocol_vectors;
mod ratchet;
mod session;
mod store_key;
#[cfg(test)]
mod testdata;
#[cfg(test)]
mod wycheproof;
mod x3dh;

pub use envelope::Envelope;
pub use error::CryptoError;
pub use group::{GroupId, GroupSender, GroupState, MemberId, SenderKeyDistribution};

pub use identity::{Fingerprint, Identity, PublicIdentity, safety_number};
pub use invite::{Damage, Invite, InviteError, InviteHome, InviteSecret, invite_tag_key};
pub use mailbox::{Capability, EPOCH_SECS, MailboxId, epoch_at};
pub use ratchet::{MAX_SKIP, MAX_SKIPPED_TOTAL};
pub use session::Session;
pub use store_key::{KdfParams, KdfPolicy, StoreKey};

/// Size in bytes of every sealed envelope, whatever it carries.
///
/// A cell is 1024 bytes and carries one envelope plus its framing.
pub const ENVELOPE_LEN: usize = 896;
