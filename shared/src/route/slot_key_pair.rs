//! A mailbox relay's X25519 slot key for one epoch, and the keyring that rotates them.

use std::fmt;

use x25519_dalek::{PublicKey, StaticSecret};

use super::kdf;
use super::{RelayId, RouteError, SlotKey, VerifiedSlotKey, sign_slot_key};

/// A mailbox relay's X25519 slot key of one epoch (docs/PROTOCOL.md, hum/2 §H3.2).
///
/// Clients seal the outer layer of their slots (home role) and the inner layer of
/// forwarded deposits (destination role) to it. The secret is zeroized when the pair is
/// dropped; its `Debug` prints the epoch only.
pub struct SlotKeyPair {
    epoch: u32,
    secret: StaticSecret,
    public: PublicKey,
}

impl SlotKeyPair {
    /// A fresh random key for `epoch`.
    pub fn generate(epoch: u32) -> SlotKeyPair {
        SlotKeyPair::from_secret(epoch, StaticSecret::random_from_rng(&mut kdf::rng()))
    }

    /// The key with the given secret scalar (known-answer tests and benchmarks; a relay
    /// uses [`SlotKeyPair::generate`]).
    pub fn from_secret_bytes(epoch: u32, secret: [u8; 32]) -> SlotKeyPair {
        SlotKeyPair::from_secret(epoch, StaticSecret::from(secret))
    }

    fn from_secret(epoch: u32, secret: StaticSecret) -> SlotKeyPair {
        let public = PublicKey::from(&secret);
        SlotKeyPair {
            epoch,
            secret,
            public,
        }
    }

    /// The key's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The announcement of this key, signed with the relay's TLS certificate key (PKCS#8
    /// DER).
    ///
    /// # Errors
    /// [`RouteError::SigningKey`] if the key is unusable.
    pub fn announce(&self, relay: RelayId, pkcs8: &[u8]) -> Result<SlotKey, RouteError> {
        sign_slot_key(pkcs8, relay, self.epoch, self.public.as_bytes())
    }

    /// This key as a verified key of `relay`, for the relay's own use (its entry role
    /// sealing dummy slots to its own mailbox role, tests).
    pub fn verified(&self, relay: RelayId) -> VerifiedSlotKey {
        VerifiedSlotKey::own(relay, self.epoch, self.public)
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }
}

impl fmt::Debug for SlotKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotKeyPair")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// The slot keys a mailbox relay holds: at most those of the previous, current and next
/// epochs. [`SlotKeyring::advance`] makes the current and next ones and erases (zeroizes)
/// a key one epoch after its own epoch ended.
#[derive(Debug, Default)]
pub struct SlotKeyring {
    keys: Vec<SlotKeyPair>,
}

impl SlotKeyring {
    /// An empty keyring.
    pub fn new() -> SlotKeyring {
        SlotKeyring::default()
    }

    /// Brings the keyring to epoch `current`: generates the keys of `current` and
    /// `current + 1` if missing and drops every key older than `current - 1`. Returns
    /// whether anything changed (then the announcements are due again).
    pub fn advance(&mut self, current: u32) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| {
            k.epoch.saturating_add(1) >= current && k.epoch <= current.saturating_add(1)
        });
        let mut changed = self.keys.len() != before;
        for epoch in [current, current.saturating_add(1)] {
            if self.by_epoch(epoch).is_none() {
                self.keys.push(SlotKeyPair::generate(epoch));
                changed = true;
            }
        }
        self.keys.sort_by_key(|k| k.epoch);
        changed
    }

    /// Adds a key, replacing any held key with the same selector byte (epoch mod 256).
    pub fn insert(&mut self, pair: SlotKeyPair) {
        self.keys
            .retain(|k| selector(k.epoch) != selector(pair.epoch));
        self.keys.push(pair);
        self.keys.sort_by_key(|k| k.epoch);
    }

    /// The key of `epoch`, if held.
    pub fn by_epoch(&self, epoch: u32) -> Option<&SlotKeyPair> {
        self.keys.iter().find(|k| k.epoch == epoch)
    }

    /// The key a slot's first byte names (its epoch mod 256), if held.
    pub fn by_selector(&self, byte: u8) -> Option<&SlotKeyPair> {
        self.keys.iter().find(|k| selector(k.epoch) == byte)
    }

    /// The keys held, oldest first.
    pub fn keys(&self) -> &[SlotKeyPair] {
        &self.keys
    }
}

/// The byte naming a slot key inside a slot: its epoch mod 256.
pub(crate) fn selector(epoch: u32) -> u8 {
    epoch.to_be_bytes()[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_keeps_previous_current_next_only() {
        let mut ring = SlotKeyring::new();
        assert!(ring.advance(10));
        let epochs = |r: &SlotKeyring| r.keys().iter().map(|k| k.epoch()).collect::<Vec<_>>();
        assert_eq!(epochs(&ring), vec![10, 11]);
        assert!(!ring.advance(10));
        let eleven = *ring
            .by_epoch(11)
            .map(|k| k.public().as_bytes())
            .unwrap_or(&[0; 32]);
        assert!(ring.advance(11));
        assert_eq!(epochs(&ring), vec![10, 11, 12]);
        // The announced next key is the one that becomes current.
        assert_eq!(
            ring.by_epoch(11).map(|k| *k.public().as_bytes()),
            Some(eleven)
        );
        assert!(ring.advance(12));
        assert_eq!(epochs(&ring), vec![11, 12, 13]);
        assert!(ring.advance(20));
        assert_eq!(epochs(&ring), vec![20, 21]);
        assert_eq!(ring.by_selector(21).map(SlotKeyPair::epoch), Some(21));
        assert!(ring.by_selector(12).is_none());
    }

    #[test]
    fn the_last_epoch_does_not_overflow() {
        let mut ring = SlotKeyring::new();
        assert!(ring.advance(u32::MAX));
        assert!(!ring.advance(u32::MAX));
        assert_eq!(ring.keys().len(), 1);
    }

    #[test]
    fn insert_replaces_a_key_with_the_same_selector() {
        let mut ring = SlotKeyring::new();
        ring.insert(SlotKeyPair::from_secret_bytes(1, [1; 32]));
        ring.insert(SlotKeyPair::from_secret_bytes(257, [2; 32]));
        assert_eq!(ring.keys().len(), 1);
        assert_eq!(ring.by_selector(1).map(SlotKeyPair::epoch), Some(257));
        assert_eq!(
            format!("{:?}", ring.keys()[0]),
            "SlotKeyPair { epoch: 257, .. }"
        );
    }
}
