//! Groups, run by their admin (docs/PROTOCOL.md §5.4).

use super::receive::set_delivered;
use super::*;

//
// The admin (the group's creator) keeps the member list and adds and removes members. Sender
// keys travel over pairwise sessions: every member sends its own to the admin, who forwards
// it to the others. Removal re-keys: the admin rotates (fresh group secret, so a fresh
// mailbox and header key), and every remaining member answers with a fresh sender key.

impl Core {
    pub(super) fn my_fp(&self) -> [u8; 32] {
        *self.me.public().fingerprint().as_bytes()
    }

    pub(super) fn me_as_member(&self) -> Member {
        Member {
            identity: self.me.public().to_bytes().to_vec(),
            name: self.my_name.clone(),
        }
    }

    pub(super) fn room_of_group(&self, group: &[u8; 16]) -> Option<i64> {
        self.rooms
            .iter()
            .find(|(_, r)| r.rec.group.as_ref().is_some_and(|g| &g.id == group))
            .map(|(&id, _)| id)
    }

    pub(super) fn insert_group_room(&mut self, rec: RoomRecord) -> Result<i64, EngineError> {
        let sealed = seal(&self.key, &enc(&rec)?, "room")?;
        let rid = self.store.tx(|tx| {
            exec(
                tx,
                "INSERT INTO rooms (contact, sealed) VALUES (NULL, ?1)",
                [sealed],
            )?;
            Ok(tx.last_insert_rowid())
        })?;
        self.rooms.insert(
            rid,
            Room {
                rec,
                unread: 0,
                mentions: 0,
            },
        );
        Ok(rid)
    }

    pub(super) fn save_room(&mut self, rid: i64) -> Result<(), EngineError> {
        let rec = self
            .rooms
            .get(&rid)
            .map(|r| r.rec.clone())
            .ok_or(EngineError::Unknown("room"))?;
        let sealed = seal(&self.key, &enc(&rec)?, "room")?;
        self.store.tx(|tx| {
            exec(
                tx,
                "UPDATE rooms SET sealed = ?1 WHERE id = ?2",
                params![sealed, rid],
            )
            .map(drop)
        })
    }

    pub(super) fn group_mut(&mut self, rid: i64) -> Result<&mut GroupRecord, EngineError> {
        self.rooms
            .get_mut(&rid)
            .and_then(|r| r.rec.group.as_mut())
            .ok_or(EngineError::Unknown("group"))
    }

    pub(super) fn require_admin(&self, rid: i64) -> Result<(), EngineError> {
        let g = self.group(rid)?;
        if g.closed {
            return Err(EngineError::Closed);
        }
        if g.admin != self.my_fp() {
            return Err(EngineError::NotAdmin);
        }
        Ok(())
    }

    pub(super) fn members_except(
        &self,
        rid: i64,
        except: Option<&[u8; 32]>,
    ) -> Result<Vec<Member>, EngineError> {
        let g = self.group(rid)?;
        let mut out = vec![];
        if g.admin == self.my_fp() {
            out.push(self.me_as_member());
        }
        for m in &g.members {
            if Some(&m.fingerprint) != except {
                out.push(Member {
                    identity: m.identity.clone(),
                    name: m.name.clone(),
                });
            }
        }
        if g.admin != self.my_fp() {
            out.push(self.me_as_member());
        }
        Ok(out)
    }

    pub(super) fn member_contacts(&self, rid: i64) -> Result<Vec<(i64, [u8; 32])>, EngineError> {
        Ok(self
            .group(rid)?
            .members
            .iter()
            .filter_map(|m| {
                self.contact_by_fp(&m.fingerprint)
                    .map(|c| (c, m.fingerprint))
            })
            .collect())
    }

    pub(super) fn create_group(&mut self, name: String) -> Result<(), EngineError> {
        let name: String = name
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        if name.is_empty() {
            return Err(EngineError::Empty);
        }
        let state = GroupState::create();
        let rec = RoomRecord {
            name: name.clone(),
            group: Some(GroupRecord {
                id: *state.group_id().as_bytes(),
                state: state.to_bytes().map_err(crypto)?.to_vec(),
                relay: self.home.clone(),
                admin: self.my_fp(),
                members: Vec::new(),
                closed: false,
            }),
        };
        let rid = self.insert_group_room(rec)?;
        self.subscribe_group(rid)?;
        self.emit_room(rid);
        Ok(())
    }

    pub(super) fn group_add(&mut self, rid: i64, cid: i64) -> Result<(), EngineError> {
        self.require_admin(rid)?;
        let c = self
            .contacts
            .get(&cid)
            .ok_or(EngineError::Unknown("contact"))?;
        let fp = *c.public.fingerprint().as_bytes();
        let member = MemberRecord {
            identity: c.public.to_bytes().to_vec(),
            fingerprint: fp,
            name: c.rec.name.clone(),
            senders: Vec::new(),
        };
        let g = self.group(rid)?;
        if g.members.iter().any(|m| m.fingerprint == fp) {
            return Err(EngineError::Invite(format!(
                "{} is already a member",
                member.name
            )));
        }
        let state = GroupState::from_bytes(&g.state).map_err(crypto)?;
        let invite = AppMessage::GroupInvite {
            uid: random_uid()?,
            group: g.id,
            name: self
                .rooms
                .get(&rid)
                .map(|r| r.rec.name.clone())
                .unwrap_or_default(),
            relay: g.relay.clone(),
            members: self.members_except(rid, None)?,
            dist: state.distribution().to_bytes().map_err(crypto)?,
        };
        self.change_group(rid, |core| {
            core.group_mut(rid)?.members.push(member);
            let mut msgs = vec![(Dest::Contact(cid), invite)];
            msgs.extend(core.updates(rid, None, Some(&fp))?);
            Ok(msgs)
        })?;
        self.emit_room(rid);
        Ok(())
    }

    /// The update telling every member (but `skip`) the current name and member list.
    pub(super) fn updates(
        &self,
        rid: i64,
        dist: Option<zeroize::Zeroizing<Vec<u8>>>,
        skip: Option<&[u8; 32]>,
    ) -> Result<Vec<(Dest, AppMessage)>, EngineError> {
        let group = self.group(rid)?.id;
        let name = self
            .rooms
            .get(&rid)
            .map(|r| r.rec.name.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for (cid, fp) in self.member_contacts(rid)? {
            if Some(&fp) == skip {
                continue;
            }
            let msg = AppMessage::GroupUpdate {
                uid: random_uid()?,
                group,
                name: name.clone(),
                members: self.members_except(rid, Some(&fp))?,
                dist: dist.clone(),
            };
            out.push((Dest::Contact(cid), msg));
        }
        Ok(out)
    }

    /// Changes a group as its admin: `change` edits the room in memory and returns the
    /// messages that tell the members. The new room record and every one of those
    /// envelopes are written in one transaction, so a crash leaves the group either as it
    /// was or changed and announced; on failure the room in memory is restored.
    pub(super) fn change_group(
        &mut self,
        rid: i64,
        change: impl FnOnce(&mut Self) -> Result<Vec<(Dest, AppMessage)>, EngineError>,
    ) -> Result<(), EngineError> {
        let before = self
            .rooms
            .get(&rid)
            .map(|r| r.rec.clone())
            .ok_or(EngineError::Unknown("room"))?;
        let sessions = self.sessions.clone();
        let result = change(self).and_then(|msgs| self.send_batch(rid, &msgs));
        if result.is_err() {
            if let Some(r) = self.rooms.get_mut(&rid) {
                r.rec = before;
            }
            self.sessions = sessions;
        }
        result
    }

    /// Seals `msgs` and writes them with room `rid`'s record in one transaction.
    pub(super) fn send_batch(
        &mut self,
        rid: i64,
        msgs: &[(Dest, AppMessage)],
    ) -> Result<(), EngineError> {
        let mut sealed = Vec::with_capacity(msgs.len());
        for (dest, msg) in msgs {
            let s = self.seal_for(*dest, msg)?;
            // A second message to the same contact seals with the advanced session.
            if let Some((cid, sess)) = &s.session {
                self.sessions.insert(*cid, sess.clone());
            }
            let rows = self.sealed_rows(&s)?;
            sealed.push((s, rows, msg.uid()));
        }
        let rec = self
            .rooms
            .get(&rid)
            .map(|r| r.rec.clone())
            .ok_or(EngineError::Unknown("room"))?;
        let room = seal(&self.key, &enc(&rec)?, "room")?;
        let ids = self.store.tx(|tx| {
            exec(
                tx,
                "UPDATE rooms SET sealed = ?1 WHERE id = ?2",
                params![room, rid],
            )?;
            sealed
                .iter()
                .map(|(s, rows, uid)| Self::write_sealed(tx, s, uid.as_ref(), rows))
                .collect::<Result<Vec<_>, _>>()
        })?;
        // Committed: from here on nothing may roll the room or sessions back.
        for ((s, _, _), ids) in sealed.into_iter().zip(ids) {
            if let Err(e) = self.after_sealed(s, ids) {
                tracing::warn!(cause = %e, "queued group messages wait for the next pump");
            }
        }
        Ok(())
    }

    pub(super) fn group_remove(&mut self, rid: i64, cid: i64) -> Result<(), EngineError> {
        self.require_admin(rid)?;
        let fp = *self
            .contacts
            .get(&cid)
            .ok_or(EngineError::Unknown("contact"))?
            .public
            .fingerprint()
            .as_bytes();
        let g = self.group(rid)?;
        if !g.members.iter().any(|m| m.fingerprint == fp) {
            return Err(EngineError::Unknown("member"));
        }
        let group = g.id;
        let mut state = GroupState::from_bytes(&g.state).map_err(crypto)?;
        let dist = state.rotate().map_err(crypto)?;
        self.change_group(rid, |core| {
            let g = core.group_mut(rid)?;
            g.members.retain(|m| m.fingerprint != fp);
            for m in &mut g.members {
                m.senders.clear();
            }
            g.state = state.to_bytes().map_err(crypto)?.to_vec();
            let mut msgs = vec![(
                Dest::Contact(cid),
                AppMessage::GroupRemoved {
                    uid: random_uid()?,
                    group,
                },
            )];
            msgs.extend(core.updates(rid, Some(dist.to_bytes().map_err(crypto)?), None)?);
            Ok(msgs)
        })?;
        self.forgive_receipts(rid, &fp)?;
        self.subscribe_group(rid)?;
        self.emit_room(rid);
        Ok(())
    }

    /// A removed member will not receipt what they had not yet: messages waiting for
    /// their receipt now wait for one fewer, and those complete become delivered.
    pub(super) fn forgive_receipts(&mut self, rid: i64, fp: &[u8; 32]) -> Result<(), EngineError> {
        let delivered: Vec<(i64, Vec<u8>)> = self.store.tx(|tx| {
            exec(
                tx,
                "UPDATE messages SET receipts_needed = receipts_needed - 1
                 WHERE room = ?1 AND from_me = 1 AND delivery < ?2 AND receipts_needed > 0
                 AND NOT EXISTS (SELECT 1 FROM receipts WHERE message = messages.id AND member = ?3)",
                params![rid, Delivery::Delivered as i64, &fp[..]],
            )?;
            let mut st = tx
                .prepare(
                    "SELECT id, uid FROM messages WHERE room = ?1 AND from_me = 1 AND delivery < ?2
                     AND (SELECT COUNT(*) FROM receipts WHERE message = messages.id) >= receipts_needed",
                )
                .map_err(|e| EngineError::Store(e.to_string()))?;
            let done = st
                .query_map(params![rid, Delivery::Delivered as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| EngineError::Store(e.to_string()))?
                .collect::<Result<Vec<(i64, Vec<u8>)>, _>>()
                .map_err(|e| EngineError::Store(e.to_string()))?;
            drop(st);
            for (id, uid) in &done {
                set_delivered(tx, *id, uid)?;
            }
            Ok(done)
        })?;
        for (id, _) in delivered {
            self.emit(Event::Delivery {
                room: RoomId(rid),
                id: MessageId(id),
                state: Delivery::Delivered,
            });
        }
        Ok(())
    }

    pub(super) fn group_leave(&mut self, rid: i64) -> Result<(), EngineError> {
        let g = self.group(rid)?;
        if g.closed {
            return Err(EngineError::Closed);
        }
        let group = g.id;
        let mut msgs = Vec::new();
        if g.admin == self.my_fp() {
            for (cid, _) in self.member_contacts(rid)? {
                msgs.push((
                    Dest::Contact(cid),
                    AppMessage::GroupRemoved {
                        uid: random_uid()?,
                        group,
                    },
                ));
            }
        } else {
            let admin = self
                .contact_by_fp(&g.admin)
                .ok_or(EngineError::Unknown("group admin"))?;
            msgs.push((
                Dest::Contact(admin),
                AppMessage::GroupLeave {
                    uid: random_uid()?,
                    group,
                },
            ));
        }
        self.change_group(rid, |core| {
            core.group_mut(rid)?.closed = true;
            Ok(msgs)
        })?;
        self.emit_room(rid);
        Ok(())
    }

    pub(super) fn group_rename(&mut self, rid: i64, name: String) -> Result<(), EngineError> {
        self.require_admin(rid)?;
        let name: String = name
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        if name.is_empty() {
            return Err(EngineError::Empty);
        }
        self.change_group(rid, |core| {
            if let Some(r) = core.rooms.get_mut(&rid) {
                r.rec.name = name;
            }
            core.updates(rid, None, None)
        })?;
        self.emit_room(rid);
        Ok(())
    }

    pub(super) fn members_from(
        &self,
        members: &[Member],
        old: &[MemberRecord],
    ) -> Vec<MemberRecord> {
        let me = self.my_fp();
        members
            .iter()
            .filter_map(|m| {
                let public = PublicIdentity::from_bytes(&m.identity).ok()?;
                let fingerprint = *public.fingerprint().as_bytes();
                if fingerprint == me {
                    return None;
                }
                let senders = old
                    .iter()
                    .find(|o| o.fingerprint == fingerprint)
                    .map(|o| o.senders.clone())
                    .unwrap_or_default();
                let name: String = m
                    .name
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(32)
                    .collect();
                Some(MemberRecord {
                    identity: m.identity.clone(),
                    fingerprint,
                    name,
                    senders,
                })
            })
            .collect()
    }

    pub(super) fn record_sender(
        &mut self,
        rid: i64,
        fp: &[u8; 32],
        dist: &SenderKeyDistribution,
    ) -> Result<(), EngineError> {
        let id = *dist.member_id().as_bytes();
        if let Some(m) = self
            .group_mut(rid)?
            .members
            .iter_mut()
            .find(|m| &m.fingerprint == fp)
            && !m.senders.contains(&id)
        {
            m.senders.push(id);
        }
        Ok(())
    }

    /// Applies a distribution to a group's state, persisting both; returns our new
    /// distribution when the group was re-keyed.
    pub(super) fn apply_distribution(
        &mut self,
        rid: i64,
        origin: &[u8; 32],
        dist: &SenderKeyDistribution,
        may_rekey: bool,
    ) -> Result<Option<SenderKeyDistribution>, EngineError> {
        // A sender key already known as another member's is refused: a member must not
        // pass its messages off as someone else's.
        let id = *dist.member_id().as_bytes();
        if self
            .group(rid)?
            .members
            .iter()
            .any(|m| &m.fingerprint != origin && m.senders.contains(&id))
        {
            return Err(EngineError::Crypto(
                "a sender key claims another member's id".into(),
            ));
        }
        let mut state = GroupState::from_bytes(&self.group(rid)?.state).map_err(crypto)?;
        let owner = hum_shared::crypto::Fingerprint::from_bytes(*origin);
        let rekeyed = state.process_distribution(dist, &owner).map_err(crypto)?;
        // Only the admin starts a new generation; anyone else's attempt changes nothing.
        if rekeyed.is_some() && !may_rekey {
            return Err(EngineError::Crypto(
                "a member tried to re-key the group".into(),
            ));
        }
        if rekeyed.is_some() {
            for m in &mut self.group_mut(rid)?.members {
                m.senders.clear();
            }
        }
        self.group_mut(rid)?.state = state.to_bytes().map_err(crypto)?.to_vec();
        self.record_sender(rid, origin, dist)?;
        self.save_room(rid)?;
        if rekeyed.is_some() {
            self.subscribe_group(rid)?;
        }
        self.retry_stash(rid)?;
        Ok(rekeyed)
    }

    /// Our own sender key for a group, endorsed with our identity key.
    pub(super) fn own_key(
        &self,
        group: [u8; 16],
        dist: &SenderKeyDistribution,
        target: Option<[u8; 32]>,
    ) -> Result<AppMessage, EngineError> {
        Ok(AppMessage::GroupKey {
            uid: random_uid()?,
            group,
            dist: dist.to_bytes().map_err(crypto)?,
            origin: None,
            target,
            endorsement: dist.endorse(&self.me).map_err(crypto)?.to_vec(),
        })
    }

    /// Checks that the member `fp` of a group endorsed `dist`.
    pub(super) fn check_endorsed(
        &self,
        rid: i64,
        fp: &[u8; 32],
        dist: &SenderKeyDistribution,
        endorsement: &[u8],
    ) -> Result<(), EngineError> {
        let g = self.group(rid)?;
        let member = g
            .members
            .iter()
            .find(|m| &m.fingerprint == fp)
            .ok_or(EngineError::Unknown("member"))?;
        let public = PublicIdentity::from_bytes(&member.identity).map_err(crypto)?;
        dist.check_endorsement(&public, endorsement).map_err(|_| {
            EngineError::Crypto("a sender key is not endorsed by the member it names".into())
        })
    }

    pub(super) fn group_control(&mut self, cid: i64, msg: AppMessage) -> Result<(), EngineError> {
        let from = *self
            .contacts
            .get(&cid)
            .ok_or(EngineError::Unknown("contact"))?
            .public
            .fingerprint()
            .as_bytes();
        match msg {
            AppMessage::GroupInvite {
                group,
                name,
                relay,
                members,
                dist,
                ..
            } => {
                // A room we were removed from reopens when we are added again.
                let existing = self.room_of_group(&group);
                if existing.is_some_and(|rid| self.group(rid).is_ok_and(|g| !g.closed)) {
                    return Ok(());
                }
                if relay.parse::<hum_shared::RelayAddr>().is_err() {
                    return Err(EngineError::Invite(
                        "a group invite names an invalid relay".into(),
                    ));
                }
                let dist = SenderKeyDistribution::from_bytes(&dist).map_err(crypto)?;
                let admin = hum_shared::crypto::Fingerprint::from_bytes(from);
                let state = GroupState::from_distribution(&dist, &admin).map_err(crypto)?;
                if state.group_id().as_bytes() != &group {
                    return Err(EngineError::Crypto(
                        "a group invite does not match its key".into(),
                    ));
                }
                let mut list = self.members_from(&members, &[]);
                if let Some(admin) = list.iter_mut().find(|m| m.fingerprint == from) {
                    admin.senders.push(*dist.member_id().as_bytes());
                }
                let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
                let rec = RoomRecord {
                    name: name.clone(),
                    group: Some(GroupRecord {
                        id: group,
                        state: state.to_bytes().map_err(crypto)?.to_vec(),
                        relay,
                        admin: from,
                        members: list,
                        closed: false,
                    }),
                };
                let mine = state.distribution();
                let rid = match existing {
                    Some(rid) => {
                        if let Some(r) = self.rooms.get_mut(&rid) {
                            r.rec = rec;
                        }
                        self.save_room(rid)?;
                        rid
                    }
                    None => self.insert_group_room(rec)?,
                };
                self.subscribe_group(rid)?;
                self.send_app(Dest::Contact(cid), &self.own_key(group, &mine, None)?)?;
                self.emit_room(rid);
                let inviter = self
                    .contacts
                    .get(&cid)
                    .map(|c| c.rec.name.clone())
                    .unwrap_or_default();
                self.emit(Event::Notice(format!(
                    "{inviter} added you to the group {name}"
                )));
                Ok(())
            }
            AppMessage::GroupUpdate {
                group,
                name,
                members,
                dist,
                ..
            } => {
                let Some(rid) = self.room_of_group(&group) else {
                    return Ok(());
                };
                if self.group(rid)?.admin != from || self.group(rid)?.closed {
                    return Ok(());
                }
                let old = self.group(rid)?.members.clone();
                let list = self.members_from(&members, &old);
                let newcomers: Vec<[u8; 32]> = list
                    .iter()
                    .filter(|m| !old.iter().any(|o| o.fingerprint == m.fingerprint))
                    .map(|m| m.fingerprint)
                    .collect();
                if let Some(r) = self.rooms.get_mut(&rid) {
                    r.rec.name = name.chars().filter(|c| !c.is_control()).take(64).collect();
                }
                self.group_mut(rid)?.members = list;
                self.save_room(rid)?;
                if let Some(d) = dist {
                    let d = SenderKeyDistribution::from_bytes(&d).map_err(crypto)?;
                    if let Some(mine) = self.apply_distribution(rid, &from, &d, true)? {
                        let msg = self.own_key(group, &mine, None)?;
                        self.send_app(Dest::Contact(cid), &msg)?;
                    }
                } else {
                    let state = GroupState::from_bytes(&self.group(rid)?.state).map_err(crypto)?;
                    for n in newcomers {
                        let msg = self.own_key(group, &state.distribution(), Some(n))?;
                        self.send_app(Dest::Contact(cid), &msg)?;
                    }
                }
                self.emit_room(rid);
                Ok(())
            }
            AppMessage::GroupKey {
                group,
                dist,
                origin,
                target,
                endorsement,
                ..
            } => {
                let Some(rid) = self.room_of_group(&group) else {
                    return Ok(());
                };
                let admin = self.group(rid)?.admin;
                let d = SenderKeyDistribution::from_bytes(&dist).map_err(crypto)?;
                if admin == self.my_fp() && origin.is_none() {
                    // A member's own key: take it, then forward it.
                    if !self
                        .group(rid)?
                        .members
                        .iter()
                        .any(|m| m.fingerprint == from)
                    {
                        return Ok(());
                    }
                    self.check_endorsed(rid, &from, &d, &endorsement)?;
                    let _ = self.apply_distribution(rid, &from, &d, false)?;
                    for (mcid, fp) in self.member_contacts(rid)? {
                        if fp == from || target.is_some_and(|t| t != fp) {
                            continue;
                        }
                        let msg = AppMessage::GroupKey {
                            uid: random_uid()?,
                            group,
                            dist: dist.clone(),
                            origin: Some(from),
                            target: None,
                            endorsement: endorsement.clone(),
                        };
                        self.send_app(Dest::Contact(mcid), &msg)?;
                    }
                } else if from == admin {
                    let Some(o) = origin else { return Ok(()) };
                    self.check_endorsed(rid, &o, &d, &endorsement)?;
                    if let Some(mine) = self.apply_distribution(rid, &o, &d, false)? {
                        let msg = self.own_key(group, &mine, None)?;
                        self.send_app(Dest::Contact(cid), &msg)?;
                    }
                }
                Ok(())
            }
            AppMessage::GroupRemoved { group, .. } => {
                let Some(rid) = self.room_of_group(&group) else {
                    return Ok(());
                };
                if self.group(rid)?.admin != from {
                    return Ok(());
                }
                self.group_mut(rid)?.closed = true;
                self.save_room(rid)?;
                self.emit_room(rid);
                let name = self
                    .rooms
                    .get(&rid)
                    .map(|r| r.rec.name.clone())
                    .unwrap_or_default();
                self.emit(Event::Notice(format!(
                    "you are no longer in the group {name}"
                )));
                Ok(())
            }
            AppMessage::GroupLeave { group, .. } => {
                let Some(rid) = self.room_of_group(&group) else {
                    return Ok(());
                };
                if self.group(rid)?.admin == self.my_fp()
                    && self
                        .group(rid)?
                        .members
                        .iter()
                        .any(|m| m.fingerprint == from)
                {
                    self.group_remove(rid, cid)?;
                }
                Ok(())
            }
            AppMessage::Text { .. } | AppMessage::Receipt { .. } => Ok(()),
        }
    }
}
