//! Where people receive on hum/2: each contact's and group member's home relay and
//! delivery secret, learnt from an invite, a handshake hello or a group admin's member
//! list, kept in the store's `homes` table and in memory by identity fingerprint.

use std::collections::HashMap;

use hum_shared::RelayAddr;
use hum_shared::crypto::Fingerprint;
use hum_shared::route::DeliverySecret;
use hum_shared::route::session::{Card, DepositId, Outgoing, Unwrap};
use zeroize::Zeroizing;

use super::Core;
use crate::engine::EngineError;
use crate::engine::records::HomeRecord;
use crate::engine::route_link::RouteOp;
use crate::engine::wire::{AppMessage, Member, MemberHome};

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

    /// Takes the homes a group admin's member list names, for the members whose home is
    /// not known yet: never a contact's (a contact says where it receives itself, in its
    /// hello), never this profile's, and never one learnt before, from this group's list
    /// or another's (the admin of one group cannot move where a member of another
    /// receives).
    pub(super) fn learn_homes(&mut self, members: &[Member]) -> Result<(), EngineError> {
        let me = self.my_fp();
        for m in members {
            let Some(home) = &m.home else { continue };
            let Ok(public) = hum_shared::crypto::PublicIdentity::from_bytes(&m.identity) else {
                continue;
            };
            let fp = public.fingerprint();
            if fp == me || self.contact_by_fp(&fp).is_some() || self.homes.get(&fp).is_some() {
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

    /// Contact `cid`, whose home is not known, says where it receives: kept, and what
    /// waits for them goes through the hum/2 link from now on. A home known already (from
    /// the invite or the hello) is not replaced.
    pub(super) fn contact_home(
        &mut self,
        cid: i64,
        relay: &str,
        delivery: &[u8; 32],
    ) -> Result<(), EngineError> {
        let Some(person) = self.contacts.get(&cid).map(|c| c.public.fingerprint()) else {
            return Ok(());
        };
        if self.homes.get(&person).is_some() {
            return Ok(());
        }
        let Ok(relay) = relay.parse::<RelayAddr>() else {
            tracing::debug!("a contact's home relay does not parse; kept as unknown");
            return Ok(());
        };
        self.set_home(person, relay, &DeliverySecret::from_bytes(*delivery))?;
        // The groups this profile runs with them in: every member hears where they
        // receive (the member list carries homes), so their texts reach them over hum/2.
        let me = self.my_fp();
        let mine: Vec<i64> = self
            .rooms
            .iter()
            .filter_map(|(&rid, r)| r.group.as_ref().map(|g| (rid, g)))
            .filter(|(_, g)| {
                !g.closed && g.admin == me && g.members.iter().any(|m| m.fingerprint == person)
            })
            .map(|(rid, _)| rid)
            .collect();
        for rid in mine {
            self.change_group(rid, |c| c.updates(rid, None, None))?;
        }
        self.pump_all()
    }

    /// Tells every contact whose home is not known where this profile receives, unless
    /// something for them still waits in `outbox` (that may be the last telling). Run at
    /// the start, with the hum/2 link: once both sides know, hum/1 carries nothing more
    /// between them.
    pub(super) fn tell_homes(
        &mut self,
        outbox: &[(i64, super::OutboxHead)],
    ) -> Result<(), EngineError> {
        if self.route.is_none() {
            return Ok(());
        }
        let waiting: std::collections::HashSet<i64> = outbox
            .iter()
            .filter_map(|(_, h)| match h.dest {
                Some(super::Dest::Contact(cid)) => Some(cid),
                _ => None,
            })
            .collect();
        let unknown: Vec<i64> = self
            .contacts
            .iter()
            .filter(|(cid, c)| {
                !waiting.contains(cid) && self.homes.get(&c.public.fingerprint()).is_none()
            })
            .map(|(&cid, _)| cid)
            .collect();
        for cid in unknown {
            let home = self.my_home();
            let msg = AppMessage::Home {
                relay: home.relay,
                delivery: home.delivery,
            };
            self.send_app(super::Dest::Contact(cid), &msg)?;
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

/// Whom the core expects items from on hum/2, as the link names them
/// ([`Expected`](crate::engine::route_link::Expected)): the kind in the top byte, the row
/// id below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// A contact, by id.
    Contact(i64),
    /// The answer to one of our invites, by invite id.
    Invite(i64),
    /// A later answer to one of our invites that was used, by used invite id.
    UsedInvite(i64),
    /// A member of a group, by room id and the member's name on the link (kept while the
    /// member stays in the group).
    Member {
        /// The group's room.
        room: i64,
        /// The member's name on the link.
        index: u16,
    },
}

impl Sender {
    const CONTACT: u64 = 1 << 56;
    const INVITE: u64 = 2 << 56;
    const MEMBER: u64 = 3 << 56;
    const USED_INVITE: u64 = 4 << 56;
    const ID: u64 = (1 << 56) - 1;

    /// The link's name for it.
    pub(crate) fn expected(self) -> crate::engine::route_link::Expected {
        let (kind, id) = match self {
            Self::Contact(id) => (Self::CONTACT, id),
            Self::Invite(id) => (Self::INVITE, id),
            Self::UsedInvite(id) => (Self::USED_INVITE, id),
            Self::Member { room, index } => (
                Self::MEMBER,
                (room & 0xff_ffff_ffff) << 16 | i64::from(index),
            ),
        };
        crate::engine::route_link::Expected(kind | (u64::try_from(id).unwrap_or(0) & Self::ID))
    }

    /// The sender a link's name stands for.
    pub(crate) fn of(e: crate::engine::route_link::Expected) -> Option<Sender> {
        let id = i64::try_from(e.0 & Self::ID).ok()?;
        match e.0 & !Self::ID {
            Self::CONTACT => Some(Self::Contact(id)),
            Self::INVITE => Some(Self::Invite(id)),
            Self::USED_INVITE => Some(Self::UsedInvite(id)),
            Self::MEMBER => Some(Self::Member {
                room: id >> 16,
                index: u16::try_from(id & 0xffff).ok()?,
            }),
            _ => None,
        }
    }
}

impl Core {
    /// This profile as its contacts know it.
    pub(super) fn my_card(&self) -> Card {
        Card {
            secret: self.delivery.clone(),
            home: self.home.clone(),
        }
    }

    /// Where `person` receives, as a deposit names it.
    pub(super) fn card_of(&self, person: &Fingerprint) -> Option<Card> {
        self.homes.get(person).map(|h| Card {
            secret: DeliverySecret::from_bytes(*h.delivery),
            home: h.relay.clone(),
        })
    }

    /// What the hum/2 link must recognise: every contact's sending direction and every
    /// open invite's answer.
    pub(super) fn route_expectations(&self) -> Vec<RouteOp> {
        let mut ops: Vec<RouteOp> = self
            .sessions
            .iter()
            .map(|(&cid, s)| RouteOp::Expect {
                who: Sender::Contact(cid).expected(),
                key: s.receive_tag_key(),
                unwrap: Unwrap::Mine,
            })
            .collect();
        ops.extend(
            self.invites
                .iter()
                .map(|(&id, secret)| RouteOp::ExpectShared {
                    who: Sender::Invite(id).expected(),
                    key: secret.tag_key(),
                }),
        );
        ops.extend(
            self.used_invites
                .iter()
                .map(|(&id, u)| RouteOp::ExpectShared {
                    who: Sender::UsedInvite(id).expected(),
                    key: hum_shared::crypto::invite_tag_key(&u.capability),
                }),
        );
        ops
    }

    /// A deposit of `envelope` for contact `cid`, under this side's tag key of their
    /// session; `None` while it is not known where they receive.
    pub(super) fn outgoing_to_contact(
        &self,
        cid: i64,
        id: DepositId,
        envelope: hum_shared::crypto::Envelope,
    ) -> Option<Outgoing> {
        let contact = self.contacts.get(&cid)?;
        let card = self.card_of(&contact.public.fingerprint())?;
        let key = self.sessions.get(&cid)?.send_tag_key();
        Some(Outgoing {
            id,
            to: vec![card],
            key,
            group: None,
            envelope,
            shared: false,
        })
    }
}
