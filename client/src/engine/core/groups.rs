//! Groups, run by their admin (docs/PROTOCOL.md §5.4).

use super::*;

//
// The admin (the group's creator) keeps the member list and adds and removes members. Sender
// keys travel over pairwise sessions: every member sends its own to the admin, who forwards
// it to the others. Removal re-keys: the admin rotates (fresh group secret, so a fresh
// mailbox and header key), and every remaining member answers with a fresh sender key.

impl Core {
    pub(super) fn my_fp(&self) -> Fingerprint {
        self.me.public().fingerprint()
    }

    /// Contact `cid`'s identity fingerprint.
    pub(super) fn contact_fp(&self, cid: i64) -> Result<Fingerprint, EngineError> {
        self.contacts
            .get(&cid)
            .map(|c| c.public.fingerprint())
            .ok_or(EngineError::NoSuch(What::Contact))
    }

    /// Writes an event into a room's history (a member added or gone, a rename) and shows
    /// it: `actor` made the change, `text` says it in full.
    pub(super) fn record_event(
        &mut self,
        rid: i64,
        actor: &str,
        text: String,
    ) -> Result<(), EngineError> {
        let uid = random_uid()?;
        let sent_at = self.now.millis();
        let rec = MessageRecord::received(StoredMessage {
            sender: actor.to_owned(),
            text: text.clone(),
            sent_at,
            uid,
            event: true,
        });
        let id = self.store.tx(|db| {
            db.insert_message(rid, &rec)?
                .ok_or(Inconsistency::MessageIdTwice.into())
        })?;
        self.emit(Event::Message(MessageView {
            id: MessageId(id),
            room: RoomId(rid),
            sender: actor.to_owned(),
            from_me: false,
            text,
            sent_at,
            delivery: None,
            kind: MessageKind::Event,
        }));
        Ok(())
    }

    /// Records an event, logging rather than failing: the change it describes is done.
    pub(super) fn note_event(&mut self, rid: i64, actor: &str, text: String) {
        if let Err(e) = self.record_event(rid, actor, text) {
            tracing::warn!(cause = %e, "a room event was not recorded");
        }
    }

    /// The name a member goes by here: the contact's nickname, else the admin's name.
    pub(super) fn member_name(&self, m: &MemberRecord) -> String {
        self.contact_name_of(&m.fingerprint)
            .unwrap_or_else(|| m.name.clone())
    }

    /// A room's members, this profile first, for `/members`.
    pub(super) fn members_of(&self, rid: i64) -> Result<Vec<MemberView>, EngineError> {
        let room = self
            .rooms
            .get(&rid)
            .ok_or(EngineError::NoSuch(What::Room))?;
        let me = self.me.public();
        let mut out = vec![MemberView {
            name: self.my_name.clone(),
            fingerprint: me.fingerprint().to_string(),
            contact: None,
            you: true,
            admin: room.group.as_ref().is_some_and(|g| g.admin == self.my_fp()),
        }];
        match &room.group {
            Some(g) => {
                for m in &g.members {
                    let fingerprint = PublicIdentity::from_bytes(&m.identity)
                        .map(|p| p.fingerprint().to_string())
                        .map_err(EngineError::from)?;
                    out.push(MemberView {
                        name: self.member_name(m),
                        fingerprint,
                        contact: self.contact_by_fp(&m.fingerprint).map(ContactId),
                        you: false,
                        admin: g.admin == m.fingerprint,
                    });
                }
            }
            None => {
                if let Some((cid, c)) = self.contacts.in_room(rid) {
                    out.push(MemberView {
                        name: c.rec.name.clone(),
                        fingerprint: c.public.fingerprint().to_string(),
                        contact: Some(ContactId(cid)),
                        you: false,
                        admin: false,
                    });
                }
            }
        }
        Ok(out)
    }

    pub(super) fn me_as_member(&self) -> Member {
        Member {
            identity: self.me.public().to_bytes().to_vec(),
            name: self.my_name.clone(),
            home: Some(self.my_home()),
        }
    }

    pub(super) fn room_of_group(&self, group: &GroupId) -> Option<i64> {
        self.rooms
            .iter()
            .find(|(_, r)| r.group.as_ref().is_some_and(|g| &g.id == group))
            .map(|(&id, _)| id)
    }

    pub(super) fn insert_group_room(&mut self, rec: RoomRecord) -> Result<i64, EngineError> {
        let rid = self.store.tx(|db| db.insert_room(&rec))?;
        self.rooms.insert(rid, rec);
        Ok(rid)
    }

    pub(super) fn save_room(&mut self, rid: i64) -> Result<(), EngineError> {
        let rec = self
            .rooms
            .get(&rid)
            .ok_or(EngineError::NoSuch(What::Room))?;
        self.store.tx(|db| db.put_room(rid, rec))
    }

    pub(super) fn room_name(&self, rid: i64) -> Result<String, EngineError> {
        self.rooms
            .get(&rid)
            .map(|r| r.name.clone())
            .ok_or(EngineError::NoSuch(What::Room))
    }

    pub(super) fn group_mut(&mut self, rid: i64) -> Result<&mut GroupRecord, EngineError> {
        self.rooms
            .get_mut(&rid)
            .and_then(|r| r.group.as_mut())
            .ok_or(EngineError::NoSuch(What::Group))
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
        except: Option<&Fingerprint>,
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
                    home: self.member_home(&m.fingerprint),
                });
            }
        }
        if g.admin != self.my_fp() {
            out.push(self.me_as_member());
        }
        Ok(out)
    }

    pub(super) fn member_contacts(&self, rid: i64) -> Result<Vec<(i64, Fingerprint)>, EngineError> {
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
        let name = DisplayName::new(&name)
            .ok_or(EngineError::Empty)?
            .into_string();
        let state = GroupState::create();
        let rec = RoomRecord {
            name: name.clone(),
            group: Some(GroupRecord {
                id: state.group_id(),
                state,
                relay: self.home.clone(),
                admin: self.my_fp(),
                members: Vec::new(),
                closed: false,
            }),
            contact: None,
            unread: 0,
            mentions: 0,
        };
        let rid = self.insert_group_room(rec)?;
        self.subscribe_group(rid)?;
        self.emit_room(rid);
        let me = self.my_name.clone();
        self.note_event(rid, &me, format!("you created the group {name}"));
        Ok(())
    }

    pub(super) fn group_add(&mut self, rid: i64, cid: i64) -> Result<(), EngineError> {
        self.require_admin(rid)?;
        let c = self
            .contacts
            .get(&cid)
            .ok_or(EngineError::NoSuch(What::Contact))?;
        let fp = c.public.fingerprint();
        let member = MemberRecord {
            identity: c.public.to_bytes().to_vec(),
            fingerprint: fp,
            name: c.rec.name.clone(),
            senders: Vec::new(),
        };
        let g = self.group(rid)?;
        if g.members.iter().any(|m| m.fingerprint == fp) {
            return Err(EngineError::AlreadyMember {
                name: member.name.clone(),
            });
        }
        // A newcomer starts on a new generation: with the old group secret it could
        // derive the mailboxes of the last week and read their headers.
        let mut state = g.state.clone();
        let dist = state.rotate().map_err(EngineError::from)?;
        let invite = AppMessage::GroupInvite {
            uid: random_uid()?,
            group: g.id,
            name: self.room_name(rid)?,
            relay: g.relay.to_string(),
            members: self.members_except(rid, None)?,
            dist: dist.to_bytes().map_err(EngineError::from)?,
        };
        let added = member.name.clone();
        self.change_group(rid, |core| {
            let g = core.group_mut(rid)?;
            for m in &mut g.members {
                m.senders.clear();
            }
            g.members.push(member);
            g.state = state;
            let mut msgs = vec![(Dest::Contact(cid), invite)];
            msgs.extend(core.updates(
                rid,
                Some(dist.to_bytes().map_err(EngineError::from)?),
                Some(&fp),
            )?);
            Ok(msgs)
        })?;
        self.subscribe_group(rid)?;
        self.emit_room(rid);
        let me = self.my_name.clone();
        self.note_event(rid, &me, format!("you added {added}"));
        Ok(())
    }

    /// The update telling every member (but `skip`) the current name and member list.
    pub(super) fn updates(
        &self,
        rid: i64,
        dist: Option<zeroize::Zeroizing<Vec<u8>>>,
        skip: Option<&Fingerprint>,
    ) -> Result<Vec<(Dest, AppMessage)>, EngineError> {
        let group = self.group(rid)?.id;
        let name = self.room_name(rid)?;
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
            .cloned()
            .ok_or(EngineError::NoSuch(What::Room))?;
        let sessions = self.sessions.clone();
        let result = change(self).and_then(|msgs| self.send_batch(rid, &msgs));
        if result.is_err() {
            self.rooms.insert(rid, before);
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
            let room = self.advanced_room(&s)?;
            sealed.push((s, room, msg.uid()));
        }
        let rec = self
            .rooms
            .get(&rid)
            .ok_or(EngineError::NoSuch(What::Room))?;
        let ids = self.store.tx(|db| {
            db.put_room(rid, rec)?;
            sealed
                .iter()
                .map(|(s, room, uid)| Self::write_sealed(db, s, uid.as_ref(), room.as_ref()))
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
        self.remove_member(rid, cid, false)
    }

    /// Removes a member as the admin: because they asked to leave (`left`), or not.
    pub(super) fn remove_member(
        &mut self,
        rid: i64,
        cid: i64,
        left: bool,
    ) -> Result<(), EngineError> {
        self.require_admin(rid)?;
        let fp = self.contact_fp(cid)?;
        let g = self.group(rid)?;
        if !g.members.iter().any(|m| m.fingerprint == fp) {
            return Err(EngineError::NoSuch(What::Member));
        }
        let group = g.id;
        let mut state = g.state.clone();
        let dist = state.rotate().map_err(EngineError::from)?;
        self.change_group(rid, |core| {
            let g = core.group_mut(rid)?;
            g.members.retain(|m| m.fingerprint != fp);
            for m in &mut g.members {
                m.senders.clear();
            }
            g.state = state;
            let mut msgs = vec![(
                Dest::Contact(cid),
                AppMessage::GroupRemoved {
                    uid: random_uid()?,
                    group,
                },
            )];
            msgs.extend(core.updates(
                rid,
                Some(dist.to_bytes().map_err(EngineError::from)?),
                None,
            )?);
            Ok(msgs)
        })?;
        self.forgive_receipts(rid, &fp)?;
        self.subscribe_group(rid)?;
        self.emit_room(rid);
        let name = self
            .contacts
            .get(&cid)
            .map(|c| c.rec.name.clone())
            .unwrap_or_default();
        let me = self.my_name.clone();
        if left {
            self.note_event(rid, &name, format!("{name} left"));
        } else {
            self.note_event(rid, &me, format!("you removed {name}"));
        }
        Ok(())
    }

    /// A removed member will not receipt what they had not yet: messages waiting for
    /// their receipt now wait for one fewer, and those complete become delivered. The
    /// messages still waiting are those with envelopes in the outbox.
    pub(super) fn forgive_receipts(
        &mut self,
        rid: i64,
        fp: &Fingerprint,
    ) -> Result<(), EngineError> {
        let mut waiting: Vec<Uid> = Vec::new();
        for (row, head) in self.store.db().outbox()? {
            if let (Some(Dest::Group(r)), Some(uid)) = (head.dest, head.uid)
                && r == rid
                && !self.resends.is_kept(row)
                && !waiting.contains(&uid)
            {
                waiting.push(uid);
            }
        }
        self.count_receipts(rid, &waiting, |_, _, found| {
            Ok(found
                .filter(|(_, rec)| {
                    rec.from_me
                        && rec.delivery != Some(DeliveryState::Delivered)
                        && !rec.receipts.contains(fp.as_bytes())
                        && rec.receipts_needed > 0
                })
                .map(|(id, mut rec)| {
                    rec.receipts_needed -= 1;
                    (id, rec)
                }))
        })
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
                .ok_or(EngineError::NoSuch(What::GroupAdmin))?;
            msgs.push((
                Dest::Contact(admin),
                AppMessage::GroupLeave {
                    uid: random_uid()?,
                    group,
                },
            ));
        }
        let admin = g.admin == self.my_fp();
        self.change_group(rid, |core| {
            core.group_mut(rid)?.closed = true;
            Ok(msgs)
        })?;
        self.emit_room(rid);
        let me = self.my_name.clone();
        let text = if admin {
            "you left and closed the group"
        } else {
            "you left the group"
        };
        self.note_event(rid, &me, text.to_owned());
        Ok(())
    }

    pub(super) fn group_rename(&mut self, rid: i64, name: String) -> Result<(), EngineError> {
        self.require_admin(rid)?;
        let name = DisplayName::new(&name)
            .ok_or(EngineError::Empty)?
            .into_string();
        let old = self
            .rooms
            .get(&rid)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let text = format!("you renamed the group from {old} to {name}");
        self.change_group(rid, |core| {
            if let Some(r) = core.rooms.get_mut(&rid) {
                r.name = name;
            }
            core.updates(rid, None, None)
        })?;
        self.emit_room(rid);
        let me = self.my_name.clone();
        self.note_event(rid, &me, text);
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
                let fingerprint = public.fingerprint();
                if fingerprint == me {
                    return None;
                }
                let senders = old
                    .iter()
                    .find(|o| o.fingerprint == fingerprint)
                    .map(|o| o.senders.clone())
                    .unwrap_or_default();
                let name = DisplayName::clean(&m.name);
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
        fp: &Fingerprint,
        dist: &SenderKeyDistribution,
    ) -> Result<(), EngineError> {
        let id = dist.member_id();
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
        origin: &Fingerprint,
        dist: &SenderKeyDistribution,
        may_rekey: bool,
    ) -> Result<Option<SenderKeyDistribution>, EngineError> {
        // A sender key already known as another member's is refused: a member must not
        // pass its messages off as someone else's.
        let id = dist.member_id();
        if self
            .group(rid)?
            .members
            .iter()
            .any(|m| &m.fingerprint != origin && m.senders.contains(&id))
        {
            return Err(EngineError::Refused(Refusal::ForeignSenderId));
        }
        let mut state = self.group(rid)?.state.clone();
        let rekeyed = match state.process_distribution(dist, origin) {
            Ok(r) => r,
            // A key of a generation already replaced (sent before the member learned of a
            // rotation): nothing to do, the member sends its new one.
            Err(hum_shared::crypto::CryptoError::StaleDistribution) => {
                tracing::debug!("a sender key of an older generation was ignored");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        // Only the admin starts a new generation; anyone else's attempt changes nothing.
        if rekeyed.is_some() && !may_rekey {
            return Err(EngineError::Refused(Refusal::RekeyByMember));
        }
        if rekeyed.is_some() {
            for m in &mut self.group_mut(rid)?.members {
                m.senders.clear();
            }
        }
        self.group_mut(rid)?.state = state;
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
        group: GroupId,
        dist: &SenderKeyDistribution,
        target: Option<Fingerprint>,
    ) -> Result<AppMessage, EngineError> {
        Ok(AppMessage::GroupKey {
            uid: random_uid()?,
            group,
            dist: dist.to_bytes().map_err(EngineError::from)?,
            origin: None,
            target: target.map(|t| *t.as_bytes()),
            endorsement: dist.endorse(&self.me).map_err(EngineError::from)?.to_vec(),
        })
    }

    /// Checks that the member `fp` of a group endorsed `dist`.
    pub(super) fn check_endorsed(
        &self,
        rid: i64,
        fp: &Fingerprint,
        dist: &SenderKeyDistribution,
        endorsement: &[u8],
    ) -> Result<(), EngineError> {
        let g = self.group(rid)?;
        let member = g
            .members
            .iter()
            .find(|m| &m.fingerprint == fp)
            .ok_or(EngineError::NoSuch(What::Member))?;
        let public = PublicIdentity::from_bytes(&member.identity).map_err(EngineError::from)?;
        dist.check_endorsement(&public, endorsement)
            .map_err(|_| EngineError::Refused(Refusal::UnendorsedSenderKey))
    }

    pub(super) fn group_control(&mut self, cid: i64, msg: AppMessage) -> Result<(), EngineError> {
        let from = self.contact_fp(cid)?;
        match msg {
            AppMessage::GroupInvite {
                group,
                name,
                relay,
                members,
                dist,
                ..
            } => {
                // A room we were removed from reopens when we are added again, by its
                // admin only: an ex-member must not take over its name and history.
                let existing = self.room_of_group(&group);
                if let Some(rid) = existing {
                    let g = self.group(rid)?;
                    if !g.closed {
                        return Ok(());
                    }
                    if g.admin != from {
                        let room = self.rooms.get(&rid).map(|r| r.name.clone());
                        let who = self.contacts.get(&cid).map(|c| c.rec.name.clone());
                        return Err(EngineError::Refused(Refusal::InviteBack {
                            who: who.unwrap_or_default(),
                            room: room.unwrap_or_default(),
                        }));
                    }
                }
                let relay: RelayAddr = relay
                    .parse()
                    .map_err(|_| EngineError::Refused(Refusal::GroupRelay))?;
                let dist = SenderKeyDistribution::from_bytes(&dist).map_err(EngineError::from)?;
                let state =
                    GroupState::from_distribution(&dist, &from).map_err(EngineError::from)?;
                if state.group_id() != group {
                    return Err(EngineError::Refused(Refusal::GroupKeyMismatch));
                }
                self.learn_homes(&members)?;
                let mut list = self.members_from(&members, &[]);
                if let Some(admin) = list.iter_mut().find(|m| m.fingerprint == from) {
                    admin.senders.push(dist.member_id());
                }
                let name = DisplayName::clean(&name);
                let mine = state.distribution();
                let rec = RoomRecord {
                    name: name.clone(),
                    group: Some(GroupRecord {
                        id: group,
                        state,
                        relay,
                        admin: from,
                        members: list,
                        closed: false,
                    }),
                    contact: None,
                    unread: 0,
                    mentions: 0,
                };
                let rid = match existing {
                    Some(rid) => {
                        if let Some(r) = self.rooms.get_mut(&rid) {
                            // The history and what is unread in it stay.
                            r.name = rec.name;
                            r.group = rec.group;
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
                self.note_event(rid, &inviter, format!("{inviter} added you"));
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
                self.learn_homes(&members)?;
                let old = self.group(rid)?.members.clone();
                let list = self.members_from(&members, &old);
                let newcomers: Vec<Fingerprint> = list
                    .iter()
                    .filter(|m| !old.iter().any(|o| o.fingerprint == m.fingerprint))
                    .map(|m| m.fingerprint)
                    .collect();
                let admin = self
                    .contacts
                    .get(&cid)
                    .map(|c| c.rec.name.clone())
                    .unwrap_or_default();
                let name = DisplayName::clean(&name);
                let mut events: Vec<String> = list
                    .iter()
                    .filter(|m| newcomers.contains(&m.fingerprint))
                    .map(|m| format!("{admin} added {}", self.member_name(m)))
                    .collect();
                events.extend(
                    old.iter()
                        .filter(|o| !list.iter().any(|m| m.fingerprint == o.fingerprint))
                        .map(|o| format!("{} is no longer in the group", self.member_name(o))),
                );
                if let Some(r) = self.rooms.get(&rid)
                    && r.name != name
                {
                    events.push(format!(
                        "{admin} renamed the group from {} to {name}",
                        r.name
                    ));
                }
                if let Some(r) = self.rooms.get_mut(&rid) {
                    r.name = name;
                }
                self.group_mut(rid)?.members = list;
                self.save_room(rid)?;
                if let Some(d) = dist {
                    let d = SenderKeyDistribution::from_bytes(&d).map_err(EngineError::from)?;
                    if let Some(mine) = self.apply_distribution(rid, &from, &d, true)? {
                        let msg = self.own_key(group, &mine, None)?;
                        self.send_app(Dest::Contact(cid), &msg)?;
                    }
                } else {
                    let state = self.group(rid)?.state.clone();
                    for n in newcomers {
                        let msg = self.own_key(group, &state.distribution(), Some(n))?;
                        self.send_app(Dest::Contact(cid), &msg)?;
                    }
                }
                self.emit_room(rid);
                for text in events {
                    self.note_event(rid, &admin, text);
                }
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
                let d = SenderKeyDistribution::from_bytes(&dist).map_err(EngineError::from)?;
                let current = self.group(rid)?.state.clone();
                if d.generation() < current.generation() {
                    // Sent before its owner learned of a rotation: neither taken nor
                    // forwarded; the owner sends its new key.
                    return Ok(());
                }
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
                        if fp == from || target.is_some_and(|t| t != *fp.as_bytes()) {
                            continue;
                        }
                        let msg = AppMessage::GroupKey {
                            uid: random_uid()?,
                            group,
                            dist: dist.clone(),
                            origin: Some(*from.as_bytes()),
                            target: None,
                            endorsement: endorsement.clone(),
                        };
                        self.send_app(Dest::Contact(mcid), &msg)?;
                    }
                } else if from == admin {
                    let Some(o) = origin.map(Fingerprint::from_bytes) else {
                        return Ok(());
                    };
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
                // Closed already (this profile left): the notice changes nothing.
                if self.group(rid)?.admin != from || self.group(rid)?.closed {
                    return Ok(());
                }
                self.group_mut(rid)?.closed = true;
                self.save_room(rid)?;
                self.emit_room(rid);
                let name = self
                    .rooms
                    .get(&rid)
                    .map(|r| r.name.clone())
                    .unwrap_or_default();
                self.emit(Event::Notice(format!(
                    "you are no longer in the group {name}"
                )));
                let admin = self
                    .contacts
                    .get(&cid)
                    .map(|c| c.rec.name.clone())
                    .unwrap_or_default();
                self.note_event(
                    rid,
                    &admin,
                    format!("{admin} removed you from the group, or closed it"),
                );
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
                    self.remove_member(rid, cid, true)?;
                }
                Ok(())
            }
            AppMessage::Text { .. } | AppMessage::Receipt { .. } | AppMessage::Home { .. } => {
                Ok(())
            }
        }
    }
}
