//! Where people receive on hum/2: each contact's and group member's home relay and
//! delivery secret, learnt from an invite, a handshake hello or a group admin's member
//! list, kept in the store's `homes` table and in memory by identity fingerprint.

use std::collections::HashMap;

use hum_shared::RelayAddr;
use hum_shared::crypto::Fingerprint;
use hum_shared::route::DeliverySecret;
use zeroize::Zeroizing;

use super::Core;
use crate::engine::EngineError;
use crate::engine::records::HomeRecord;
use crate::engine::wire::{Member, MemberHome};

/// The homes known, by identity fingerprint.
#[derive(Default)]
pub(crate) struct Homes(HashMap<Fingerprint, HomeRecord>);

impl Homes {
    /// Where `person` receives, if known.
    pub(crate) fn get(&self, person: &Fingerprint) -> Option<&HomeRecord> {
        self.0.get(person)
    }

    /// Remembers where `person` receives (in memory only).
    pub(crate) fn insert(&mut self, person: Fingerprint, home: HomeRecord) {
        self.0.insert(person, home);
    }

    /// Forgets where `person` receives (in memory only).
    pub(crate) fn remove(&mut self, person: &Fingerprint) {
        self.0.remove(person);
    }
}

impl Core {
    /// Reads the homes of every contact and group member from the store.
    pub(super) fn load_homes(&mut self) -> Result<(), EngineError> {
        let mut people: Vec<Fingerprint> = self
            .contacts
            .values()
            .map(|c| c.public.fingerprint())
            .collect();
        for r in self.rooms.values() {
            if let Some(g) = &r.group {
                people.extend(g.members.iter().map(|m| m.fingerprint));
            }
        }
        let db = self.store.db();
        for fp in people {
            if let Some(home) = db.home(&fp)? {
                self.homes.insert(fp, home);
            }
        }
        Ok(())
    }

    /// Writes where `person` receives, in the store and in memory.
    pub(super) fn set_home(
        &mut self,
        person: Fingerprint,
        relay: RelayAddr,
        delivery: &DeliverySecret,
    ) -> Result<(), EngineError> {
        let home = HomeRecord::new(relay, delivery);
        if self.homes.get(&person) == Some(&home) {
            return Ok(());
        }
        self.store.tx(|db| db.put_home(&person, &home))?;
        self.homes.insert(person, home);
        Ok(())
    }

    /// Takes the homes a group admin's member list names, for the members who are not
    /// contacts (a contact says where it receives itself) and not this profile.
    pub(super) fn learn_homes(&mut self, members: &[Member]) -> Result<(), EngineError> {
        let me = self.my_fp();
        for m in members {
            let Some(home) = &m.home else { continue };
            let Ok(public) = hum_shared::crypto::PublicIdentity::from_bytes(&m.identity) else {
                continue;
            };
            let fp = public.fingerprint();
            if fp == me || self.contact_by_fp(&fp).is_some() {
                continue;
            }
            let Ok(relay) = home.relay.parse::<RelayAddr>() else {
                tracing::debug!("a member's home relay does not parse; kept as unknown");
                continue;
            };
            self.set_home(fp, relay, &DeliverySecret::from_bytes(*home.delivery))?;
        }
        Ok(())
    }

    /// Where `person` receives, as a member list tells it.
    pub(super) fn member_home(&self, person: &Fingerprint) -> Option<MemberHome> {
        self.homes.get(person).map(|h| MemberHome {
            relay: h.relay.to_string(),
            delivery: h.delivery.clone(),
        })
    }

    /// Where this profile receives, as a member list or a hello tells it.
    pub(super) fn my_home(&self) -> MemberHome {
        MemberHome {
            relay: self.home.to_string(),
            delivery: Zeroizing::new(*self.delivery.expose_secret()),
        }
    }
}
