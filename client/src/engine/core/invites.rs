//! One-time invites that say so (docs/PROTOCOL.md §3.4.1). The inviter, when an invite is
//! used, leaves a notice naming the answer that used it and keeps reading the invite's
//! answer mailbox until it expires; an acceptor reads the notice mailbox of the invite it
//! answered. A second acceptor learns that the code was used, and its client takes back
//! the contact it made; the inviter learns that someone else tried the code.

use super::super::records::{InviteCheckRecord, UsedInviteRecord};
use super::*;

/// How long after an invite's expiry an acceptor still reads its used notice: as long as
/// a relay keeps one.
const NOTICE_KEPT_SECS: u64 = 7 * 86_400;

/// One of our invites that was used.
pub(super) struct UsedInvite {
    pub(super) capability: Capability,
    /// The ephemeral key of the answer that used it.
    answer_key: [u8; 32],
    /// When the invite expires (unix seconds).
    expires_at: u64,
}

/// An invite we accepted, watched until its inviter says which answer used it.
pub(super) struct Check {
    pub(super) invite: Invite,
    pub(super) answer: Envelope,
}

/// What using up an invite writes, prepared outside the transaction.
pub(super) struct Used {
    rec: UsedInviteRecord,
    capability: Capability,
    /// The notice's outbox head: it belongs to no conversation (no receipt id) and leaves
    /// once the relay stores it.
    notice_head: OutboxHead,
    notice: Envelope,
}

impl Used {
    /// Writes the used invite and queues its notice; returns their ids.
    pub(super) fn write(&self, db: &Db<'_>) -> Result<(i64, i64), EngineError> {
        let id = db.insert_used_invite(&self.rec)?;
        let row = db.insert_outbox(&self.notice_head, self.notice.as_bytes())?;
        Ok((id, row))
    }
}

fn answer_key(env: &Envelope) -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(&env.as_bytes()[..32]);
    k
}

impl Core {
    /// Loads the used invites and the invites we watch; the expired ones go.
    pub(super) fn load_invite_state(&mut self) -> Result<(), EngineError> {
        let now = self.now.secs();
        let db = self.store.db();
        let mut expired = Vec::new();
        for (id, rec) in db.used_invites()? {
            if rec.expires_at <= now {
                expired.push(id);
                continue;
            }
            self.used_invites.insert(
                id,
                UsedInvite {
                    capability: Capability::from_bytes(rec.capability),
                    answer_key: rec.answer_key,
                    expires_at: rec.expires_at,
                },
            );
        }
        let mut stale = Vec::new();
        for (cid, rec) in db.invite_checks()? {
            let check = Invite::decode(&rec.code, rec.accepted_at)
                .ok()
                .zip(Envelope::from_bytes(&rec.answer).ok());
            match check {
                Some((invite, answer))
                    if self.contacts.contains_key(&cid)
                        && now < invite.expires_at().saturating_add(NOTICE_KEPT_SECS) =>
                {
                    self.checks.insert(cid, Check { invite, answer });
                }
                _ => stale.push(cid),
            }
        }
        if expired.is_empty() && stale.is_empty() {
            return Ok(());
        }
        self.store.tx(|db| {
            for id in &expired {
                db.delete_used_invite(*id)?;
            }
            for cid in &stale {
                db.delete_invite_check(*cid)?;
            }
            Ok(())
        })
    }

    /// Subscribes the mailboxes of used invites and of the invites we watch.
    pub(super) fn subscribe_invite_state(&mut self) -> Result<(), EngineError> {
        let home = self.home.clone();
        let used: Vec<(i64, Capability)> = self
            .used_invites
            .iter()
            .map(|(&id, u)| (id, u.capability.clone()))
            .collect();
        for (id, cap) in used {
            self.subscribe(&home, cap, RouteKind::UsedInvite(id), false, None)?;
        }
        let checks: Vec<(i64, RelayAddr, Capability)> = self
            .checks
            .iter()
            .filter_map(|(&cid, c)| {
                let cap = c.invite.used_capability().ok()?;
                // Checked when the invite was accepted.
                let relay = c.invite.relay().parse::<RelayAddr>().ok()?;
                Some((cid, relay, cap))
            })
            .collect();
        for (cid, relay, cap) in checks {
            self.subscribe(&relay, cap, RouteKind::InviteCheck(cid), true, None)?;
        }
        Ok(())
    }

    /// The record of an invite we accept now with `answer`.
    pub(super) fn check_record(code: &str, answer: &Envelope, now: u64) -> InviteCheckRecord {
        InviteCheckRecord {
            code: code.chars().filter(|c| !c.is_whitespace()).collect(),
            accepted_at: now,
            answer: answer.as_bytes().to_vec(),
        }
    }

    /// Starts reading the used notice of an invite accepted for `cid`.
    pub(super) fn watch_invite(
        &mut self,
        cid: i64,
        invite: Invite,
        relay: &RelayAddr,
        answer: Envelope,
    ) -> Result<(), EngineError> {
        let cap = invite.used_capability().map_err(EngineError::from)?;
        self.checks.insert(cid, Check { invite, answer });
        self.subscribe(relay, cap, RouteKind::InviteCheck(cid), true, None)
    }

    /// Prepares what using up invite `id` with the answer `env` writes.
    pub(super) fn prepare_used(&self, id: i64, env: &Envelope) -> Result<Used, EngineError> {
        let secret = self
            .invites
            .get(&id)
            .ok_or(EngineError::NoSuch(What::Invite))?;
        let notice = self
            .me
            .invite_used_notice(secret, env)
            .map_err(EngineError::from)?;
        let notice_mailbox = secret
            .used_capability()
            .map_err(EngineError::from)?
            .mailbox_id();
        Ok(Used {
            rec: UsedInviteRecord {
                capability: *secret.capability().expose_secret(),
                answer_key: answer_key(env),
                expires_at: secret.expires_at(),
            },
            capability: secret.capability().clone(),
            notice_head: OutboxHead {
                relay: self.home.clone(),
                mailbox: *notice_mailbox.as_bytes(),
                fanout: true,
                dest: None,
                uid: None,
            },
            notice,
        })
    }

    /// After invite `id` was used (committed as `used_id`): its answer mailbox is read as a
    /// used invite's, and the notice goes out.
    pub(super) fn invite_used(
        &mut self,
        id: i64,
        used_id: i64,
        used: Used,
        notice_row: i64,
    ) -> Result<(), EngineError> {
        self.routes
            .rekind(RouteKind::Invite(id), RouteKind::UsedInvite(used_id));
        // Later answers still come under the invite's tag key: they are told apart, as
        // a used invite's.
        self.route_op(RouteOp::Forget(homes::Sender::Invite(id).expected()));
        self.route_op(RouteOp::ExpectShared {
            who: homes::Sender::UsedInvite(used_id).expected(),
            key: hum_shared::crypto::invite_tag_key(&used.capability),
        });
        self.used_invites.insert(
            used_id,
            UsedInvite {
                capability: used.capability,
                answer_key: used.rec.answer_key,
                expires_at: used.rec.expires_at,
            },
        );
        let relay = used.notice_head.relay.clone();
        self.ensure_link(&relay);
        if let Some(l) = self.links.get_mut(&relay) {
            l.pump.push(notice_row);
        }
        self.pump(&relay)
    }

    /// Forgets the used invites that expired: nobody can answer them any more, so their
    /// mailboxes are no longer read and their records go.
    pub(super) fn expire_used_invites(&mut self) -> Result<(), EngineError> {
        let now = self.now.secs();
        let expired: Vec<i64> = self
            .used_invites
            .iter()
            .filter(|(_, u)| u.expires_at <= now)
            .map(|(&id, _)| id)
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        self.store.tx(|db| {
            for id in &expired {
                db.delete_used_invite(*id)?;
            }
            Ok(())
        })?;
        for id in expired {
            self.route_op(RouteOp::Forget(homes::Sender::UsedInvite(id).expected()));
            self.used_invites.remove(&id);
            self.unsubscribe_kind(RouteKind::UsedInvite(id));
        }
        Ok(())
    }

    /// Someone answered an invite of ours that was used already.
    pub(super) fn used_invite_answered(&mut self, id: i64, env: &Envelope) {
        let Some(u) = self.used_invites.get(&id) else {
            return;
        };
        // A copy of the answer that used it (deposited again after a relay restart).
        if u.answer_key == answer_key(env) {
            return;
        }
        self.emit(Event::Notice(
            "someone answered an invite code of yours that was already used: they were not added, and are told to ask you for a new code".into(),
        ));
    }

    /// Stops reading every mailbox routed to `kind`.
    fn unsubscribe_kind(&mut self, kind: RouteKind) {
        for r in self.routes.remove_kind(kind) {
            self.unsubscribe(&r);
        }
    }

    fn stop_watching(&mut self, cid: i64) {
        self.checks.remove(&cid);
        self.unsubscribe_kind(RouteKind::InviteCheck(cid));
    }

    /// A used notice for the invite accepted for `cid`.
    pub(super) fn invite_notice(&mut self, cid: i64, env: &Envelope) -> Result<(), EngineError> {
        let Some(check) = self.checks.get(&cid) else {
            return Ok(());
        };
        match check.invite.used_by(env, &check.answer) {
            Ok(true) => {
                self.store.tx(|db| db.delete_invite_check(cid))?;
                self.stop_watching(cid);
                Ok(())
            }
            Ok(false) => self.invite_taken(cid),
            Err(_) => {
                tracing::debug!("an envelope in an invite's notice mailbox does not read");
                Ok(())
            }
        }
    }

    /// The invite accepted for `cid` was used by someone else first: the contact does not
    /// exist on the other side. It goes; its room stays, closed, with what was written.
    fn invite_taken(&mut self, cid: i64) -> Result<(), EngineError> {
        let Some(c) = self.contacts.get(&cid) else {
            return Ok(());
        };
        let (name, room) = (c.rec.name.clone(), c.room);
        // The room stays, closed, with its history: it no longer names the contact.
        let mut room_rec = self
            .rooms
            .get(&room)
            .cloned()
            .ok_or(Inconsistency::RoomMissing)?;
        room_rec.contact = None;
        // Where they receive goes too: they never became a contact, nor a member anywhere.
        let person = c.public.fingerprint();
        self.store.tx(|db| {
            db.forget_contact(cid)?;
            db.delete_home(&person)?;
            db.put_room(room, &room_rec)
        })?;
        self.homes.remove(&person);
        self.rooms.insert(room, room_rec);
        self.stop_watching(cid);
        self.contacts.remove(&cid);
        self.sessions.remove(&cid);
        self.unsubscribe_kind(RouteKind::Direct(cid));
        self.emit(Event::ContactRemoved {
            id: ContactId(cid),
            name: name.clone(),
        });
        self.emit_room(room);
        self.note_event(
            room,
            &name,
            format!("the invite code had already been used by someone else: {name} never got your request"),
        );
        self.error(&EngineError::InviteUsed { name });
        Ok(())
    }
}
