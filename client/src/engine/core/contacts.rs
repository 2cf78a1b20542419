//! The contacts: who each is (their public identity, checked at load), what this profile
//! calls them, and their 1:1 room.

use std::collections::HashMap;

use hum_shared::crypto::{Fingerprint, PublicIdentity};

use crate::api::DisplayName;
use crate::engine::records::ContactRecord;

/// One contact.
pub(super) struct Contact {
    /// As stored.
    pub(super) rec: ContactRecord,
    /// Their public identity, parsed from the record.
    pub(super) public: PublicIdentity,
    /// Their 1:1 room.
    pub(super) room: i64,
}

/// Every contact, by id.
#[derive(Default)]
pub(super) struct Contacts {
    by_id: HashMap<i64, Contact>,
}

impl Contacts {
    pub(super) fn get(&self, id: &i64) -> Option<&Contact> {
        self.by_id.get(id)
    }

    pub(super) fn get_mut(&mut self, id: &i64) -> Option<&mut Contact> {
        self.by_id.get_mut(id)
    }

    pub(super) fn insert(&mut self, id: i64, c: Contact) {
        self.by_id.insert(id, c);
    }

    pub(super) fn remove(&mut self, id: &i64) -> Option<Contact> {
        self.by_id.remove(id)
    }

    pub(super) fn contains_key(&self, id: &i64) -> bool {
        self.by_id.contains_key(id)
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&i64, &Contact)> {
        self.by_id.iter()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Contact> {
        self.by_id.values()
    }

    /// The contact whose identity has fingerprint `fp`.
    pub(super) fn by_fingerprint(&self, fp: &Fingerprint) -> Option<i64> {
        self.iter()
            .find(|(_, c)| c.public.fingerprint() == *fp)
            .map(|(&id, _)| id)
    }

    /// The contact whose 1:1 room is `room`.
    pub(super) fn in_room(&self, room: i64) -> Option<(i64, &Contact)> {
        self.iter()
            .find(|(_, c)| c.room == room)
            .map(|(&id, c)| (id, c))
    }

    /// A name for a new or renamed contact from `base` that no contact has and that is not
    /// `mine`: cleaned, spaces made underscores (a name is one word in commands), and
    /// numbered from 2 when taken.
    pub(super) fn unique_name(&self, base: &str, mine: &str) -> String {
        let base = DisplayName::new(base)
            .map_or_else(|| "contact".to_owned(), |n| n.as_str().replace(' ', "_"));
        let taken = |n: &str| self.values().any(|c| c.rec.name == n) || n == mine;
        if !taken(&base) {
            return base;
        }
        (2..)
            .map(|i| format!("{base}{i}"))
            .find(|n| !taken(n))
            .unwrap_or(base)
    }
}

#[cfg(test)]
mod tests {
    use hum_shared::crypto::Identity;

    use super::*;

    fn contact(name: &str, room: i64) -> (Contact, Fingerprint) {
        let id = Identity::generate();
        let public = id.public().clone();
        let fp = public.fingerprint();
        let c = Contact {
            rec: ContactRecord {
                name: name.into(),
                identity: public.to_bytes().to_vec(),
                relay: hum_shared::RelayAddr {
                    host: "relay.test".into(),
                    port: 1,
                    fingerprint: hum_shared::CertFingerprint([1; 32]),
                },
            },
            public,
            room,
        };
        (c, fp)
    }

    #[test]
    fn names_are_made_unique_one_word_and_never_the_profiles_own() {
        let mut cs = Contacts::default();
        let (bob, _) = contact("bob", 1);
        cs.insert(1, bob);
        assert_eq!(cs.unique_name("alice", "me"), "alice");
        assert_eq!(cs.unique_name("bob", "me"), "bob2");
        assert_eq!(cs.unique_name("me", "me"), "me2");
        assert_eq!(
            cs.unique_name("  ada  lovelace\u{7}", "me"),
            "ada__lovelace"
        );
        assert_eq!(cs.unique_name("\u{1b}", "me"), "contact");
        let (bob2, _) = contact("bob2", 2);
        cs.insert(2, bob2);
        assert_eq!(cs.unique_name("bob", "me"), "bob3");
    }

    #[test]
    fn contacts_are_found_by_fingerprint_and_by_room() {
        let mut cs = Contacts::default();
        let (bob, bob_fp) = contact("bob", 10);
        let (carol, carol_fp) = contact("carol", 11);
        cs.insert(1, bob);
        cs.insert(2, carol);
        assert_eq!(cs.by_fingerprint(&bob_fp), Some(1));
        assert_eq!(cs.by_fingerprint(&carol_fp), Some(2));
        assert_eq!(cs.by_fingerprint(&Fingerprint::from_bytes([0; 32])), None);
        assert_eq!(cs.in_room(11).map(|(id, _)| id), Some(2));
        assert!(cs.in_room(12).is_none());
        cs.remove(&1);
        assert_eq!(cs.by_fingerprint(&bob_fp), None);
        assert_eq!(cs.len(), 1);
    }
}
