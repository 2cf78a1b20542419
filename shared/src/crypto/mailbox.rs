//! Mailbox identifiers, fetch capabilities and epochs.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;
use super::kdf::{self, L_MAILBOX_CAP, L_MAILBOX_ID};

/// Length of one mailbox epoch in seconds: session and group mailboxes rotate daily.
pub const EPOCH_SECS: u64 = 86_400;

/// The mailbox epoch that contains the unix time `unix_secs`.
pub fn epoch_at(unix_secs: u64) -> u64 {
    unix_secs / EPOCH_SECS
}

/// The secret that lets its holder fetch (and acknowledge) a mailbox.
///
/// The relay never stores it: it stores the [`MailboxId`], which is a hash of the
/// capability, and checks a fetch by hashing the capability presented
/// (docs/PROTOCOL.md, section 3.6).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Capability([u8; 32]);

impl Capability {
    /// Wraps capability bytes received from the wire or the store.
    pub fn from_bytes(bytes: [u8; 32]) -> Capability {
        Capability(bytes)
    }

    /// A fresh random capability (one-time invite mailboxes).
    pub fn generate() -> Capability {
        Capability(kdf::random())
    }

    /// The capability's secret bytes, to put in a fetch frame.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id of the mailbox this capability opens: BLAKE2b-256 keyed with
    /// `"hum/1 mailbox id"` over the capability.
    pub fn mailbox_id(&self) -> MailboxId {
        MailboxId(
            kdf::blake2b_256(L_MAILBOX_ID, &[&self.0])
                .expect("BLAKE2b with a 16-byte key and 32-byte output cannot fail"),
        )
    }

    /// Derives the capability of `epoch` from a long-lived mailbox secret.
    pub(crate) fn derive(secret: &[u8; 32], epoch: u64) -> Result<Capability, CryptoError> {
        kdf::blake2b_256(L_MAILBOX_CAP, &[secret, &epoch.to_be_bytes()]).map(Capability)
    }
}

impl std::fmt::Debug for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capability(..)")
    }
}

/// The public address of a mailbox: what senders deposit to and the relay stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MailboxId([u8; 32]);

impl MailboxId {
    /// Wraps id bytes received from the wire.
    pub fn from_bytes(bytes: [u8; 32]) -> MailboxId {
        MailboxId(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Short form only: ids are not secret, but they should not end up whole in logs.
        write!(f, "MailboxId({}..)", kdf::hex(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_hash_of_capability_and_epochs_differ() -> Result<(), CryptoError> {
        let secret = [7u8; 32];
        let a = Capability::derive(&secret, 1)?;
        let b = Capability::derive(&secret, 2)?;
        assert_ne!(a.mailbox_id(), b.mailbox_id());
        assert_eq!(
            a.mailbox_id(),
            Capability::from_bytes(*a.expose_secret()).mailbox_id()
        );
        assert_ne!(a.mailbox_id().as_bytes(), a.expose_secret());
        assert_eq!(epoch_at(EPOCH_SECS * 3 + 5), 3);
        Ok(())
    }
}
