//! Receiving: opening envelopes, reassembling parts, history, receipts and the inbox.

use super::*;

/// Marks a message of ours delivered: its envelopes need no more resending.
pub(super) fn set_delivered(
    db: &Db<'_>,
    room: i64,
    id: i64,
    rec: &mut MessageRecord,
) -> Result<(), EngineError> {
    rec.delivery = Some(DeliveryState::Delivered);
    db.put_message(id, room, rec)?;
    db.delete_outbox_of(&rec.body.uid)
}

/// Writes an own message whose receipts changed; it becomes delivered once it has every
/// receipt it waits for. Returns whether it did.
pub(super) fn settle_receipts(
    db: &Db<'_>,
    room: i64,
    id: i64,
    rec: &mut MessageRecord,
) -> Result<bool, EngineError> {
    if rec.receipts.len() >= usize::try_from(rec.receipts_needed).unwrap_or(usize::MAX) {
        set_delivered(db, room, id, rec)?;
        Ok(true)
    } else {
        db.put_message(id, room, rec)?;
        Ok(false)
    }
}

impl Core {
    pub(super) fn deliver(
        &mut self,
        mailbox: MailboxId,
        envelope: &[u8],
    ) -> Result<(), EngineError> {
        let Some(kind) = self.routes.get(&mailbox).map(|r| r.kind) else {
            return Ok(());
        };
        let Ok(env) = Envelope::from_bytes(envelope) else {
            return Ok(());
        };
        self.open_and_apply(kind, env)
    }

    /// Opens an envelope that came for `kind` (an invite's answer, a contact's session, a
    /// group) and applies what it holds. One that does not open changes nothing: a
    /// duplicate (its message key is spent) or not for us.
    pub(super) fn open_and_apply(
        &mut self,
        kind: RouteKind,
        env: Envelope,
    ) -> Result<(), EngineError> {
        match kind {
            RouteKind::Invite(id) => self.invite_answered(id, &env),
            RouteKind::UsedInvite(id) => {
                self.used_invite_answered(id, &env);
                Ok(())
            }
            RouteKind::InviteCheck(cid) => self.invite_notice(cid, &env),
            RouteKind::Direct(cid) => {
                let Some(mut s) = self.sessions.get(&cid).cloned() else {
                    return Ok(());
                };
                match s.open(&env) {
                    Ok(part) => self.on_part(
                        Origin::Contact(cid),
                        &Zeroizing::new(part),
                        Some((cid, s)),
                        None,
                    ),
                    Err(_) => {
                        tracing::debug!("an envelope did not open (a duplicate, or not for us)");
                        Ok(())
                    }
                }
            }
            RouteKind::Group(rid) => {
                let Ok(g) = self.group(rid) else {
                    return Ok(());
                };
                let mut state = g.state.clone();
                match state.open(&env) {
                    Ok((member, part)) => self.on_part(
                        Origin::Group { room: rid, member },
                        &Zeroizing::new(part),
                        None,
                        Some((rid, state)),
                    ),
                    // Our own messages come back through the fan-out.
                    Err(hum_shared::crypto::CryptoError::OwnMessage) => Ok(()),
                    // A duplicate (a copy deposited again after a relay restarted): no
                    // key to come opens it, and it must not push a waiting one out of
                    // the stash.
                    Err(hum_shared::crypto::CryptoError::Replayed) => {
                        tracing::debug!("a group envelope read already");
                        Ok(())
                    }
                    Err(_) => {
                        // Perhaps from a member whose sender key is still on its way
                        // through the admin: keep it a while and try again when a key
                        // arrives.
                        tracing::debug!("a group envelope did not open yet");
                        if self.stash.len() >= STASH_MAX {
                            self.stash.pop_front();
                        }
                        self.stash.push_back((rid, env));
                        Ok(())
                    }
                }
            }
        }
    }

    /// Retries the stashed envelopes of a group after it learned a sender key.
    pub(super) fn retry_stash(&mut self, rid: i64) -> Result<(), EngineError> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.stash.drain(..).partition(|(r, _)| *r == rid);
        self.stash = rest.into_iter().collect();
        for (_, env) in mine {
            let Ok(g) = self.group(rid) else {
                return Ok(());
            };
            let mut state = g.state.clone();
            match state.open(&env) {
                Ok((member, part)) => {
                    let origin = Origin::Group { room: rid, member };
                    self.on_part(origin, &Zeroizing::new(part), None, Some((rid, state)))?;
                }
                // Read meanwhile through another copy, or our own: it goes.
                Err(
                    hum_shared::crypto::CryptoError::Replayed
                    | hum_shared::crypto::CryptoError::OwnMessage,
                ) => {}
                Err(_) => self.stash.push_back((rid, env)),
            }
        }
        Ok(())
    }

    pub(super) fn invite_answered(&mut self, id: i64, env: &Envelope) -> Result<(), EngineError> {
        let Some(secret) = self.invites.get(&id) else {
            return Ok(());
        };
        if secret.expires_at() <= self.now.secs() {
            // Too late: whoever answers now may have found the code after its time.
            self.forget_invite(id)?;
            self.emit(Event::Notice(
                "an invite was answered after it expired and was ignored: make a new one".into(),
            ));
            return Ok(());
        }
        let Ok((session, who, first)) = Session::respond(&self.me, secret, env) else {
            tracing::debug!("an invite answer did not open");
            return Ok(());
        };
        let Ok(hello) = postcard::from_bytes::<ContactHello>(&first) else {
            return Ok(());
        };
        let Ok(relay) = hello.relay.parse::<RelayAddr>() else {
            self.error(&EngineError::Refused(Refusal::AnswerRelay));
            return Ok(());
        };
        let fp = *who.fingerprint().as_bytes();
        if self
            .contacts
            .values()
            .any(|c| *c.public.fingerprint().as_bytes() == fp)
        {
            return Ok(());
        }
        let name = self.unique_name(hello.name);
        // One-time: the invite is used up. Its prekey goes; a notice naming this answer
        // goes to whoever else answers the same code, and its mailbox is still read (as a
        // used invite's) until the invite expires.
        let used = self.prepare_used(id, env)?;
        let person = who.fingerprint();
        let home = HomeRecord::new(relay.clone(), &DeliverySecret::from_bytes(*hello.delivery));
        let (_, (used_id, notice_row)) =
            self.add_contact(who, name.clone(), relay, session, |db, _| {
                db.delete_invite(id)?;
                db.put_home(&person, &home)?;
                used.write(db)
            })?;
        self.homes.insert(person, home);
        self.invites.remove(&id);
        self.invite_used(id, used_id, used, notice_row)?;
        self.emit(Event::Notice(format!("{name} accepted your invite")));
        Ok(())
    }

    /// One opened part: reassemble, and commit the advanced key state with either the
    /// part (message incomplete) or the message's effects.
    pub(super) fn on_part(
        &mut self,
        origin: Origin,
        part: &[u8],
        session: Option<(i64, Session)>,
        group: Option<(i64, GroupState)>,
    ) -> Result<(), EngineError> {
        let (room, sender): (i64, Vec<u8>) = match &origin {
            Origin::Contact(cid) => (
                self.contacts
                    .get(cid)
                    .map(|c| c.room)
                    .ok_or(Inconsistency::ContactMissing)?,
                cid.to_be_bytes().to_vec(),
            ),
            Origin::Group { room, member } => (*room, member.as_bytes().to_vec()),
        };
        // The advanced key state: the session, or the group room with its new state.
        let state_room = match &group {
            Some((rid, state)) => Some((*rid, self.room_with_state(*rid, state)?)),
            None => None,
        };
        let write_state =
            |db: &Db<'_>| Self::write_state(db, session.as_ref(), state_room.as_ref());
        let reassembler = self
            .reassembly
            .entry((room, sender.clone(), part.len()))
            .or_insert_with(|| new_reassembler(part.len()));
        let mut first = reassembler.insert(part);
        if matches!(first, Err(hum_shared::SplitError::Full(_))) {
            // Too many unfinished messages from this sender: the oldest is given up (its
            // missing parts are not coming), making room for the new one.
            if let Some(old) = reassembler.evict_oldest() {
                self.store.tx(|db| db.delete_parts(room, &sender, old))?;
            }
            first = self
                .reassembly
                .get_mut(&(room, sender.clone(), part.len()))
                .map_or(Err(hum_shared::SplitError::Full(0)), |r| r.insert(part));
        }
        let done = match first {
            Ok(done) => done,
            Err(e) => {
                tracing::debug!(cause = %e, "a part was refused");
                self.store.tx(|db| write_state(db))?;
                self.keep_state(session, group)?;
                return Ok(());
            }
        };
        let Some((msg_id, payload)) = done else {
            let rec = PartRecord {
                room,
                sender: sender.clone(),
                msg_id: part_msg_id(part).map_err(|_| Inconsistency::BadPart)?,
                idx: u16::from_be_bytes([
                    part.get(8).copied().unwrap_or(0),
                    part.get(9).copied().unwrap_or(0),
                ]),
                part: Zeroizing::new(part.to_vec()),
            };
            self.store.tx(|db| {
                write_state(db)?;
                db.insert_part(&rec)
            })?;
            self.keep_state(session, group)?;
            return Ok(());
        };
        let payload = Zeroizing::new(payload);
        let msg: Option<AppMessage> = postcard::from_bytes(&payload).ok();
        let Some(msg) = msg else {
            self.store.tx(|db| {
                write_state(db)?;
                db.delete_parts(room, &sender, msg_id)
            })?;
            self.keep_state(session, group)?;
            return Ok(());
        };
        // Everything with an id is receipted, duplicates too (our first receipt may have
        // been lost). The receipt to send is recorded in the same transaction as the key
        // state, so a crash cannot lose it. On hum/2 a group message is not receipted: a
        // receipt from every member right after each text is what tells a mailbox relay
        // which buckets are one group's and who spoke (its sender's text is sent once
        // every member's relay stored it).
        let receipt = msg.uid().and_then(|uid| {
            let dest = match &origin {
                Origin::Contact(cid) => Dest::Contact(*cid),
                Origin::Group { .. } if self.route.is_some() => return None,
                Origin::Group { room, .. } => Dest::Group(*room),
            };
            Some(ReceiptOut { dest, uid })
        });
        let finish = |db: &Db<'_>| -> Result<(), EngineError> {
            Self::write_state(db, session.as_ref(), None)?;
            db.delete_parts(room, &sender, msg_id)?;
            if let Some(r) = &receipt {
                db.insert_receipt_out(r)?;
            }
            Ok(())
        };
        // Text goes into history in the same transaction as the key state, and the room's
        // unread count with it.
        let mut new_message = None;
        let mut inbox = None;
        if let AppMessage::Text { uid, sent_at, text } = &msg {
            let sender_name = self.sender_name(&origin);
            let rec = MessageRecord::received(StoredMessage {
                sender: sender_name.clone(),
                text: text.clone(),
                sent_at: *sent_at,
                uid: *uid,
                event: false,
            });
            let mention = text.to_lowercase().contains(&self.my_name.to_lowercase());
            let mut room_rec = match &state_room {
                Some((_, r)) => r.clone(),
                None => self
                    .rooms
                    .get(&room)
                    .cloned()
                    .ok_or(Inconsistency::RoomMissing)?,
            };
            let inserted = self.store.tx(|db| {
                finish(db)?;
                let id = db.insert_message(room, &rec)?;
                if id.is_some() {
                    room_rec.unread = room_rec.unread.saturating_add(1);
                    room_rec.mentions = room_rec.mentions.saturating_add(u32::from(mention));
                }
                if id.is_some() || state_room.is_some() {
                    db.put_room(room, &room_rec)?;
                }
                Ok(id)
            })?;
            if let Some(id) = inserted {
                new_message = Some(MessageView {
                    id: MessageId(id),
                    room: RoomId(room),
                    sender: sender_name,
                    from_me: false,
                    text: text.clone(),
                    sent_at: *sent_at,
                    delivery: None,
                    kind: MessageKind::Text,
                });
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.unread = room_rec.unread;
                    r.mentions = room_rec.mentions;
                }
            }
        } else {
            // What the message does (receipts, group changes) is applied after this
            // transaction; until it has been, the message waits in the inbox, so a crash in
            // between does not lose it.
            let rec = InboxRecord {
                origin: origin.clone(),
                payload,
            };
            inbox = Some(self.store.tx(|db| {
                finish(db)?;
                if let Some((rid, r)) = &state_room {
                    db.put_room(*rid, r)?;
                }
                db.insert_inbox(&rec)
            })?);
        }
        self.keep_state(session, group)?;
        if let Some(v) = new_message {
            self.emit(Event::Message(v));
            self.emit_room(room);
        }
        if let Err(e) = self.app_effects(&origin, msg) {
            self.error(&e);
        }
        if let Some(id) = inbox {
            self.store.tx(|db| db.delete_inbox(id))?;
        }
        Ok(())
    }

    /// Applies what a crash left in the inbox (received, committed, not yet applied).
    pub(super) fn replay_inbox(&mut self) -> Result<(), EngineError> {
        for (id, rec) in self.store.db().inbox()? {
            let msg = postcard::from_bytes::<AppMessage>(&rec.payload).ok();
            if let Some(msg) = msg
                && let Err(e) = self.app_effects(&rec.origin, msg)
            {
                self.error(&e);
            }
            self.store.tx(|db| db.delete_inbox(id))?;
        }
        Ok(())
    }

    pub(super) fn keep_state(
        &mut self,
        session: Option<(i64, Session)>,
        group: Option<(i64, GroupState)>,
    ) -> Result<(), EngineError> {
        if let Some((cid, s)) = session {
            self.sessions.insert(cid, s);
        }
        if let Some((rid, state)) = group
            && let Some(g) = self.rooms.get_mut(&rid).and_then(|r| r.group.as_mut())
        {
            g.state = state;
        }
        Ok(())
    }

    pub(super) fn sender_name(&self, origin: &Origin) -> String {
        match origin {
            Origin::Contact(cid) => self
                .contacts
                .get(cid)
                .map(|c| c.rec.name.clone())
                .unwrap_or_else(|| "?".into()),
            Origin::Group { room, member } => self
                .group(*room)
                .ok()
                .and_then(|g| g.members.iter().find(|m| m.senders.contains(member)))
                .map(|m| {
                    self.contact_name_of(&m.fingerprint)
                        .unwrap_or_else(|| m.name.clone())
                })
                .unwrap_or_else(|| "unknown member".into()),
        }
    }

    pub(super) fn contact_name_of(&self, fp: &Fingerprint) -> Option<String> {
        let id = self.contacts.by_fingerprint(fp)?;
        self.contacts.get(&id).map(|c| c.rec.name.clone())
    }

    pub(super) fn contact_by_fp(&self, fp: &Fingerprint) -> Option<i64> {
        self.contacts.by_fingerprint(fp)
    }

    /// Who a receipt counts for: the contact's fingerprint, or the group member's (by
    /// sender-key id while the member is not known yet).
    pub(super) fn receipt_member(&self, origin: &Origin) -> Option<[u8; 32]> {
        match origin {
            Origin::Contact(cid) => self
                .contacts
                .get(cid)
                .map(|c| *c.public.fingerprint().as_bytes()),
            Origin::Group { room, member } => Some(
                self.group(*room)
                    .ok()
                    .and_then(|g| g.members.iter().find(|m| m.senders.contains(member)))
                    .map_or(*member.as_bytes(), |m| *m.fingerprint.as_bytes()),
            ),
        }
    }

    /// The room a message from `origin` belongs to.
    pub(super) fn room_of_origin(&self, origin: &Origin) -> Option<i64> {
        match origin {
            Origin::Contact(cid) => self.contacts.get(cid).map(|c| c.room),
            Origin::Group { room, .. } => Some(*room),
        }
    }

    /// What a received message does beyond history.
    pub(super) fn app_effects(
        &mut self,
        origin: &Origin,
        msg: AppMessage,
    ) -> Result<(), EngineError> {
        match msg {
            AppMessage::Text { .. } => Ok(()),
            AppMessage::Receipt { uids } => self.on_receipts(origin, &uids),
            AppMessage::Home { relay, delivery } => match origin {
                Origin::Contact(cid) => self.contact_home(*cid, &relay, &delivery),
                Origin::Group { .. } => Ok(()),
            },
            other => match origin {
                Origin::Contact(cid) => self.group_control(*cid, other),
                Origin::Group { .. } => Ok(()),
            },
        }
    }

    pub(super) fn on_receipts(&mut self, origin: &Origin, uids: &[Uid]) -> Result<(), EngineError> {
        let (Some(member), Some(room)) = (self.receipt_member(origin), self.room_of_origin(origin))
        else {
            return Ok(());
        };
        self.count_receipts(room, uids, |db, uid, found| {
            let Some((id, mut rec)) = found.filter(|(_, m)| m.from_me) else {
                // Control messages have no history row: their receipt ends their resends.
                db.delete_outbox_of(uid)?;
                return Ok(None);
            };
            if rec.delivery == Some(DeliveryState::Delivered) || rec.receipts.contains(&member) {
                return Ok(None);
            }
            rec.receipts.push(member);
            Ok(Some((id, rec)))
        })
    }

    /// Counts receipts for this profile's messages `uids` in `room`, in one transaction:
    /// `count` is given each message's row (when there is one) and returns the record to
    /// write, or `None` when nothing changes. A message with every receipt it waits for
    /// becomes delivered, and the faces are told.
    pub(super) fn count_receipts(
        &mut self,
        room: i64,
        uids: &[Uid],
        mut count: impl FnMut(
            &Db<'_>,
            &Uid,
            Option<(i64, MessageRecord)>,
        ) -> Result<Option<(i64, MessageRecord)>, EngineError>,
    ) -> Result<(), EngineError> {
        let delivered = self.store.tx(|db| {
            let mut delivered = Vec::new();
            for uid in uids {
                let found = db.message_by_uid(room, uid)?;
                let Some((id, mut rec)) = count(db, uid, found)? else {
                    continue;
                };
                if settle_receipts(db, room, id, &mut rec)? {
                    delivered.push(id);
                }
            }
            Ok(delivered)
        })?;
        self.emit_delivered(room, &delivered);
        Ok(())
    }

    /// Tells the faces that messages of `room` were delivered.
    pub(super) fn emit_delivered(&self, room: i64, ids: &[i64]) {
        for &id in ids {
            self.emit(Event::Delivery {
                room: RoomId(room),
                id: MessageId(id),
                state: Delivery::Delivered,
            });
        }
    }
}
