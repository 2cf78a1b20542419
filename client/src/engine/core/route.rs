//! The core's side of the hum/2 link: opening it from the stored route state, telling it
//! whom to expect, and keeping what it reports. What it receives is opened and applied
//! as what hum/1 delivers (`receive.rs`).

use std::collections::HashMap;

use hum_shared::crypto::{Envelope, Fingerprint};
use hum_shared::route::session::{Card, Outgoing, Session, Unwrap};
use hum_shared::route::{GroupTagKey, RelayId, TagKey};

use super::homes::Sender;
use super::subscriptions::RouteKind;
use super::{Core, Dest, Effect, Event, OutboxHead, RouteView};
use crate::api::{LinkState, RouteStatus};
use crate::engine::EngineError;
use crate::engine::route_link::{Expected, RouteOp, RouteReport, RouteSetup};

/// What a face is told when the entry relay is a single relay.
pub(super) const SINGLE_RELAY: &str = "single relay: it can see who you talk to";

impl Core {
    /// Opens the hum/2 link to the entry relay, its session starting from the state the
    /// last one left, and tells it every sender to expect.
    pub(super) fn open_route(&mut self) -> Result<(), EngineError> {
        if self.route.is_some() {
            return Ok(());
        }
        let state = self.store.db().route_state()?;
        let setup = RouteSetup {
            relays: crate::engine::Relays {
                entry: self.entry.clone(),
                home: self.home.clone(),
            },
            me: self.my_card(),
            behaviour: self.options.route_pace.behaviour(),
            state,
        };
        self.out
            .borrow_mut()
            .push(Effect::OpenRoute(Box::new(setup)));
        self.route = Some(RouteView::default());
        for op in self.route_expectations() {
            self.route_op(op);
        }
        self.sync_group_routes();
        self.emit_route();
        Ok(())
    }

    /// Tells the hum/2 link `op`, when it runs.
    pub(super) fn route_op(&self, op: RouteOp) {
        if self.route.is_some() {
            self.out.borrow_mut().push(Effect::Route(op));
        }
    }

    /// Expects contact `cid`'s items on the hum/2 link.
    pub(super) fn expect_contact(&self, cid: i64) {
        if let Some(s) = self.sessions.get(&cid) {
            self.route_op(RouteOp::Expect {
                who: Sender::Contact(cid).expected(),
                key: s.receive_tag_key(),
                unwrap: Unwrap::Mine,
            });
        }
    }

    /// Expects the answer to invite `id` on the hum/2 link.
    pub(super) fn expect_invite(&self, id: i64) {
        if let Some(secret) = self.invites.get(&id) {
            self.route_op(RouteOp::ExpectShared {
                who: Sender::Invite(id).expected(),
                key: secret.tag_key(),
            });
        }
    }

    /// Takes a report of the hum/2 link.
    pub(super) fn on_route(&mut self, report: RouteReport) -> Result<(), EngineError> {
        let Some(route) = self.route.as_mut() else {
            return Ok(());
        };
        match report {
            RouteReport::Up { single, .. } => {
                route.down = false;
                route.state = Some(LinkState::Up);
                let told = route.single;
                route.single = single;
                if single && !told {
                    // Said once: a single relay sees both ends of every conversation.
                    self.emit(Event::Notice(SINGLE_RELAY.into()));
                }
            }
            RouteReport::Down { retry_in_ms, .. } => {
                route.down = true;
                route.state = Some(LinkState::Down { retry_in_ms });
                route.rate = 0;
            }
            RouteReport::Status { status, rate } => {
                route.status = Some(status);
                route.rate = rate;
            }
            // Saved as it comes: a session started from it never reuses a counter.
            RouteReport::State(state) => self.store.tx(|db| db.put_route_state(&state))?,
            RouteReport::Received { who, envelope, .. } => {
                let kind = match Sender::of(who) {
                    Some(Sender::Contact(cid)) => RouteKind::Direct(cid),
                    Some(Sender::Invite(id)) => RouteKind::Invite(id),
                    Some(Sender::UsedInvite(id)) => RouteKind::UsedInvite(id),
                    Some(Sender::Member { room, .. }) => RouteKind::Group(room),
                    None => return Ok(()),
                };
                self.open_and_apply(kind, envelope)?;
            }
            RouteReport::Stored(id) => {
                if let Some(row) = self.route_pump.done(id) {
                    self.mark_stored(row)?;
                }
                self.pump_route()?;
            }
            RouteReport::Unsendable { id, why } => {
                // Its relay is not in the directory now: it waits for the re-send.
                if let Some(row) = self.route_pump.done(id) {
                    tracing::info!(%why, "a deposit cannot be sent now");
                    self.resends
                        .stored(row, self.now.at, self.options.resend_after);
                }
                self.pump_route()?;
            }
            RouteReport::Restarted(relay) => {
                // What the relay stored and nobody read yet is gone: what went to someone
                // homed there and is not yet receipted goes out again, in its original
                // order (the receivers drop duplicates). Rows in flight now are answered
                // by the relay as it is.
                let rows = self.rows_homed_at(relay)?;
                for row in &rows {
                    // A group text kept after every relay stored it goes to this one only;
                    // so does one whose round of deposits is still out (this relay may
                    // have stored its copy before it restarted).
                    if self.resends.is_kept(*row) || self.route_pump.has(*row) {
                        self.route_pump.resend_to(*row, relay);
                    }
                }
                self.resends.unstore(&rows);
                self.pump_route()?;
            }
            // The session sends it again by itself.
            RouteReport::Again(_) | RouteReport::Deposited { .. } | RouteReport::CaughtUp(_) => {}
        }
        self.emit_route();
        Ok(())
    }

    /// The outbox rows the hum/2 link deposits at `relay`: to a contact homed there (an
    /// invite's answer among them), or to a group with a member homed there.
    fn rows_homed_at(&self, relay: RelayId) -> Result<Vec<i64>, EngineError> {
        let at = |person: &Fingerprint| {
            self.homes
                .get(person)
                .is_some_and(|h| RelayId::of_fingerprint(&h.relay.fingerprint) == relay)
        };
        let contact_at = |cid: i64| {
            self.contacts
                .get(&cid)
                .is_some_and(|c| at(&c.public.fingerprint()))
        };
        let mut rows = Vec::new();
        for (row, head) in self.store.db().outbox()? {
            let there = match head.dest {
                Some(Dest::Contact(cid)) => contact_at(cid),
                Some(Dest::Group(rid)) => self
                    .rooms
                    .get(&rid)
                    .and_then(|r| r.group.as_ref())
                    .is_some_and(|g| g.members.iter().any(|m| at(&m.fingerprint))),
                None => match self.store.db().outbox_entry(row)? {
                    Some((_, bytes)) => self.answer_to(&bytes).is_some_and(contact_at),
                    None => false,
                },
            };
            if there {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// Tells the faces the hum/2 link's state when it changed.
    pub(super) fn emit_route(&mut self) {
        let entry = self.entry.host_port();
        let Some(route) = self.route.as_mut() else {
            return;
        };
        let status = RouteStatus {
            relay: entry,
            state: route.state.unwrap_or(LinkState::Connecting),
            single: route.single,
            clients: route.status.as_ref().and_then(|s| s.clients),
            cells_per_sec: route.rate,
            queued: route
                .status
                .as_ref()
                .map_or(0, |s| u32::try_from(s.outbox).unwrap_or(u32::MAX)),
        };
        if route.shown.as_ref() != Some(&status) {
            route.shown = Some(status.clone());
            self.emit(Event::Route(status));
        }
    }

    /// Whether the hum/2 link deposits this outbox row rather than hum/1's links: a
    /// contact's or a group's message, or the answer to an invite this profile accepted.
    ///
    /// A contact whose home is not known (one made before homes were kept, by a profile
    /// of store schema 1, that has not said where it receives since) is still written to
    /// through hum/1's links alone, which let the relay see who writes to whom. A group
    /// with a member whose home is not known is written to through both: the hum/2 link
    /// reaches the members whose homes are known, hum/1's the others (and only where
    /// hum/1 may go at all, [`Core::hum1_allowed`]).
    pub(super) fn routed(&self, head: &OutboxHead, envelope: &[u8]) -> bool {
        if self.route.is_none() {
            return false;
        }
        match head.dest {
            Some(Dest::Contact(cid)) => self
                .contacts
                .get(&cid)
                .is_some_and(|c| self.card_of(&c.public.fingerprint()).is_some()),
            Some(Dest::Group(rid)) => self.group_all_homed(rid),
            None => self.answer_to(envelope).is_some(),
        }
    }

    /// The contact whose invite `envelope` answers (our handshake to them), while we watch
    /// that invite.
    fn answer_to(&self, envelope: &[u8]) -> Option<i64> {
        self.checks
            .iter()
            .find(|(_, c)| c.answer.as_bytes()[..] == *envelope)
            .map(|(&cid, _)| cid)
    }

    /// Hands the hum/2 link the next outbox row of every contact and group with nothing
    /// in flight, oldest first: a fresh attempt each time (the session makes its tag and
    /// wrap). A row already stored goes again only when its re-send is due. A handshake
    /// counts as its contact's, so it leaves before the first message to them.
    pub(super) fn pump_route(&mut self) -> Result<(), EngineError> {
        if self.route.is_none() {
            return Ok(());
        }
        for (row, head) in self.store.db().outbox()? {
            if self.route_pump.has(row)
                || head.dest.is_some_and(|d| self.route_pump.busy(d))
                || (self.resends.is_stored(row)
                    && !self.route_pump.is_due_again(row)
                    && self.route_pump.only(row).is_none())
            {
                continue;
            }
            let Some((_, bytes)) = self.store.db().outbox_entry(row)? else {
                continue;
            };
            let (dest, answer) = match head.dest {
                Some(d) => (d, None),
                None => match self.answer_to(&bytes) {
                    Some(cid) => (Dest::Contact(cid), Some(cid)),
                    // Not ours to deposit (an invite's notice): hum/1's.
                    None => continue,
                },
            };
            if self.route_pump.busy(dest) {
                continue;
            }
            let Ok(envelope) = Envelope::from_bytes(&bytes) else {
                continue;
            };
            match (dest, answer) {
                (Dest::Contact(cid), Some(_)) => {
                    let Some(out) = self.invite_answer(cid, envelope) else {
                        continue;
                    };
                    let id = self.route_pump.sent(row, dest);
                    self.route_op(RouteOp::Queue(Outgoing { id, ..out }));
                }
                (Dest::Contact(cid), None) => {
                    let id = self.route_pump.sent(row, dest);
                    match self.outgoing_to_contact(cid, id, envelope) {
                        Some(out) => self.route_op(RouteOp::Queue(out)),
                        // Where they receive is not known (yet): nothing leaves for them.
                        None => {
                            self.route_pump.done(id);
                        }
                    }
                }
                (Dest::Group(rid), _) => {
                    let Some((key, group, cards)) = self.group_deposit(rid) else {
                        continue;
                    };
                    if cards.is_empty() {
                        // Nobody else in the group: nothing to deposit.
                        self.mark_stored(row)?;
                        continue;
                    }
                    // One deposit per destination relay, in a random order (HUM2 4.3):
                    // the order of the member list says nothing on the wire.
                    let mut by_relay = Session::split_by_relay(&cards);
                    if let Some(only) = self.route_pump.only(row) {
                        by_relay.retain(|to| {
                            to.first().is_some_and(|c| {
                                only.contains(&RelayId::of_fingerprint(&c.home.fingerprint))
                            })
                        });
                        if by_relay.is_empty() {
                            // Nobody is homed there now: it stays as it was.
                            self.route_pump.forget_only(row);
                            self.mark_stored(row)?;
                            continue;
                        }
                    }
                    shuffle(&mut by_relay)?;
                    for to in by_relay {
                        let id = self.route_pump.sent(row, dest);
                        self.route_op(RouteOp::Queue(Outgoing {
                            id,
                            to,
                            key: key.clone(),
                            group: Some(group.clone()),
                            envelope: envelope.clone(),
                            shared: false,
                        }));
                    }
                }
            }
        }
        Ok(())
    }

    /// The handshake to contact `cid` as a deposit: to the inviter's home, under the tag
    /// key its invite carried (its id is set by the caller). Whoever else was handed the
    /// code tags an answer with that key too: the deposit says so.
    fn invite_answer(&self, cid: i64, envelope: Envelope) -> Option<Outgoing> {
        let check = self.checks.get(&cid)?;
        let contact = self.contacts.get(&cid)?;
        let card = self.card_of(&contact.public.fingerprint())?;
        Some(Outgoing {
            id: hum_shared::route::session::DepositId(0),
            to: vec![card],
            key: check.invite.tag_key().clone(),
            group: None,
            envelope,
            shared: true,
        })
    }

    /// What a deposit into group `rid` is made with: this member's speaker tag key, the
    /// group's tag key, and where each other member whose home is known receives.
    fn group_deposit(&self, rid: i64) -> Option<(TagKey, GroupTagKey, Vec<Card>)> {
        let g = self.rooms.get(&rid)?.group.as_ref()?;
        let group = g.state.tag_key().ok()?;
        let key = group.speaker(self.me.public().fingerprint().as_bytes());
        let cards = g
            .members
            .iter()
            .filter_map(|m| self.card_of(&m.fingerprint))
            .collect();
        Some((key, group, cards))
    }

    /// Whether every other member of group `rid` has a known home, so its deposits reach
    /// them all (a member without one is left out until it is learnt).
    pub(super) fn group_all_homed(&self, rid: i64) -> bool {
        let me = self.me.public().fingerprint();
        self.rooms
            .get(&rid)
            .and_then(|r| r.group.as_ref())
            .is_some_and(|g| {
                g.members
                    .iter()
                    .filter(|m| m.fingerprint != me)
                    .all(|m| self.card_of(&m.fingerprint).is_some())
            })
    }

    /// Tells the hum/2 link each open group's members (from the member list) to expect
    /// under their speaker tag keys of the current generation. Each member keeps its name
    /// on the link while it stays in the group: a change of members forgets only those
    /// removed and expects only those added, so the session keeps how far it saw the
    /// others (a member whose counter ran past the first window would not be recognised
    /// again from scratch). A new generation changes every key: all are told afresh. A
    /// group closed or gone is forgotten.
    pub(super) fn sync_group_routes(&mut self) {
        if self.route.is_none() {
            return;
        }
        let mut want: HashMap<i64, (u32, Vec<Fingerprint>)> = HashMap::new();
        for (&rid, room) in &self.rooms {
            if let Some(g) = &room.group
                && !g.closed
            {
                let members = g.members.iter().map(|m| m.fingerprint).collect();
                want.insert(rid, (g.state.generation(), members));
            }
        }
        let gone: Vec<i64> = self
            .group_routes
            .keys()
            .filter(|rid| !want.contains_key(rid))
            .copied()
            .collect();
        for rid in gone {
            if let Some(had) = self.group_routes.remove(&rid) {
                for (_, index) in had.members {
                    self.route_op(RouteOp::Forget(member_name(rid, index)));
                }
            }
        }
        for (rid, (generation, members)) in want {
            let mut had = self.group_routes.remove(&rid).unwrap_or(GroupRoute {
                generation,
                members: Vec::new(),
            });
            if had.generation == generation
                && had.members.len() == members.len()
                && had.members.iter().all(|(fp, _)| members.contains(fp))
            {
                self.group_routes.insert(rid, had);
                continue;
            }
            let Some(group) = self
                .rooms
                .get(&rid)
                .and_then(|r| r.group.as_ref())
                .and_then(|g| g.state.tag_key().ok())
            else {
                // Kept as it was: its members stay expected under the names the link knows.
                self.group_routes.insert(rid, had);
                continue;
            };
            let fresh = had.generation != generation;
            let (stay, left): (Vec<_>, Vec<_>) = had
                .members
                .drain(..)
                .partition(|(fp, _)| !fresh && members.contains(fp));
            for (_, index) in left {
                self.route_op(RouteOp::Forget(member_name(rid, index)));
            }
            let mut told = stay;
            for m in members {
                if told.iter().any(|(fp, _)| *fp == m) {
                    continue;
                }
                // The lowest name no member holds.
                let index = (0..=u16::MAX)
                    .find(|i| told.iter().all(|(_, t)| t != i))
                    .unwrap_or(u16::MAX);
                self.route_op(RouteOp::Expect {
                    who: member_name(rid, index),
                    key: group.speaker(m.as_bytes()),
                    unwrap: Unwrap::Group(group.clone()),
                });
                told.push((m, index));
            }
            self.group_routes.insert(
                rid,
                GroupRoute {
                    generation,
                    members: told,
                },
            );
        }
    }
}

/// What the hum/2 link was told of one group: the generation whose keys it expects, and
/// each member with its name on the link.
#[derive(Debug)]
pub(super) struct GroupRoute {
    generation: u32,
    members: Vec<(Fingerprint, u16)>,
}

/// The link's name for the member of group `rid` told as `index`.
fn member_name(rid: i64, index: u16) -> Expected {
    Sender::Member { room: rid, index }.expected()
}

/// Shuffles `items` (Fisher-Yates) with the system's CSPRNG.
fn shuffle<T>(items: &mut [T]) -> Result<(), EngineError> {
    for i in (1..items.len()).rev() {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).map_err(|_| EngineError::Random)?;
        let j = (u64::from_le_bytes(b) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    Ok(())
}

#[cfg(test)]
mod shuffle_tests {
    use super::shuffle;

    /// Each shuffle is a permutation, and the destination relays of a group do not keep
    /// their member-list order: over 200 shuffles of 8, every one comes first at times.
    #[test]
    fn group_deposits_leave_in_a_random_order() -> Result<(), crate::engine::EngineError> {
        let mut first = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut v: Vec<u8> = (0..8).collect();
            shuffle(&mut v)?;
            let mut sorted = v.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..8).collect::<Vec<u8>>());
            first.insert(v[0]);
        }
        assert_eq!(first.len(), 8);
        Ok(())
    }
}
