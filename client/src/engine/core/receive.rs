//! Receiving: opening envelopes, reassembling parts, history, receipts and the inbox.

use super::*;

/// Marks a message of ours delivered: its envelopes need no more resending.
pub(super) fn set_delivered(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    uid: &[u8],
) -> Result<(), EngineError> {
    exec(
        tx,
        "UPDATE messages SET delivery = ?1 WHERE id = ?2",
        params![Delivery::Delivered as i64, id],
    )?;
    exec(tx, "DELETE FROM outbox WHERE uid = ?1", [uid])?;
    Ok(())
}

/// Who sent a part: a contact, or a group member (by sender-key id).
#[derive(Debug, Clone)]
pub(super) enum Origin {
    Contact(i64),
    Group { room: i64, member: [u8; 32] },
}

impl Origin {
    /// As the inbox table stores it: contact, room, member.
    pub(super) fn columns(&self) -> (Option<i64>, Option<i64>, Option<Vec<u8>>) {
        match self {
            Origin::Contact(c) => (Some(*c), None, None),
            Origin::Group { room, member } => (None, Some(*room), Some(member.to_vec())),
        }
    }
}

/// An inbox row: id, contact, room, member, sealed message.
pub(super) type InboxRow = (i64, Option<i64>, Option<i64>, Option<Vec<u8>>, Vec<u8>);

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
        match kind {
            RouteKind::Invite(id) => self.invite_answered(id, &env),
            RouteKind::Direct(cid) => {
                let Some(mut s) = self.sessions.get(&cid).cloned() else {
                    return Ok(());
                };
                match s.open(&env) {
                    Ok(part) => self.on_part(Origin::Contact(cid), &part, Some((cid, s)), None),
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
                let mut state = GroupState::from_bytes(&g.state).map_err(crypto)?;
                match state.open(&env) {
                    Ok((member, part)) => self.on_part(
                        Origin::Group {
                            room: rid,
                            member: *member.as_bytes(),
                        },
                        &part,
                        None,
                        Some((rid, state)),
                    ),
                    // Our own messages come back through the fan-out.
                    Err(hum_shared::crypto::CryptoError::OwnMessage) => Ok(()),
                    Err(_) => {
                        // Perhaps from a member whose sender key is still on its way
                        // through the admin: keep it a while and try again when a key
                        // arrives. Duplicates end up here too and age out.
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
            let mut state = GroupState::from_bytes(&g.state).map_err(crypto)?;
            match state.open(&env) {
                Ok((member, part)) => {
                    let origin = Origin::Group {
                        room: rid,
                        member: *member.as_bytes(),
                    };
                    self.on_part(origin, &part, None, Some((rid, state)))?;
                }
                Err(_) => self.stash.push_back((rid, env)),
            }
        }
        Ok(())
    }

    pub(super) fn invite_answered(&mut self, id: i64, env: &Envelope) -> Result<(), EngineError> {
        let Some(secret) = self.invites.get(&id) else {
            return Ok(());
        };
        let Ok((session, who, first)) = Session::respond(&self.me, secret, env) else {
            tracing::debug!("an invite answer did not open");
            return Ok(());
        };
        let Ok(hello) = postcard::from_bytes::<Hello>(&first) else {
            return Ok(());
        };
        if hello.relay.parse::<hum_shared::RelayAddr>().is_err() {
            self.error("a contact answered an invite with an invalid relay address; ignored");
            return Ok(());
        }
        let fp = *who.fingerprint().as_bytes();
        if self
            .contacts
            .values()
            .any(|c| *c.public.fingerprint().as_bytes() == fp)
        {
            return Ok(());
        }
        let name = self.unique_name(hello.name);
        self.add_contact(who, name.clone(), hello.relay, session, |tx| {
            // One-time: the invite is used up.
            exec(tx, "DELETE FROM invites WHERE id = ?1", [id]).map(drop)
        })?;
        self.invites.remove(&id);
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
                self.contacts.get(cid).map(|c| c.room).unwrap_or(0),
                cid.to_be_bytes().to_vec(),
            ),
            Origin::Group { room, member } => (*room, member.to_vec()),
        };
        let sealed_state = self.sealed_rows(&Sealed {
            relay: String::new(),
            mailbox: MailboxId::from_bytes([0; 32]),
            fanout: false,
            envelopes: Vec::new(),
            session: session.clone(),
            group: group.clone(),
        })?;
        let commit_state = |tx: &rusqlite::Transaction<'_>| Self::write_state(tx, &sealed_state);
        let reassembler = self
            .reassembly
            .entry((room, sender.clone()))
            .or_insert_with(|| new_reassembler(part.len()));
        let mut first = reassembler.insert(part);
        if matches!(first, Err(hum_shared::SplitError::Full(_))) {
            // Too many unfinished messages from this sender: the oldest is given up (its
            // missing parts are not coming), making room for the new one.
            if let Some(old) = reassembler.evict_oldest() {
                let old = i64::from_be_bytes(old.to_be_bytes());
                self.store.tx(|tx| {
                    exec(
                        tx,
                        "DELETE FROM parts WHERE room = ?1 AND sender = ?2 AND msg_id = ?3",
                        params![room, sender, old],
                    )
                    .map(drop)
                })?;
            }
            first = self
                .reassembly
                .get_mut(&(room, sender.clone()))
                .map_or(Err(hum_shared::SplitError::Full(0)), |r| r.insert(part));
        }
        let done = match first {
            Ok(done) => done,
            Err(e) => {
                tracing::debug!(cause = %e, "a part was refused");
                self.store.tx(|tx| commit_state(tx))?;
                self.keep_state(session, group)?;
                return Ok(());
            }
        };
        let Some((msg_id, payload)) = done else {
            let blob = seal(&self.key, part, "part")?;
            let mid = i64::from_be_bytes(part_msg_id(part).unwrap_or(0).to_be_bytes());
            let idx = i64::from(u16::from_be_bytes([
                part.get(8).copied().unwrap_or(0),
                part.get(9).copied().unwrap_or(0),
            ]));
            self.store.tx(|tx| {
                commit_state(tx)?;
                exec(
                    tx,
                    "INSERT OR IGNORE INTO parts (room, sender, msg_id, idx, sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![room, sender, mid, idx, blob],
                )
                .map(drop)
            })?;
            self.keep_state(session, group)?;
            return Ok(());
        };
        let mid = i64::from_be_bytes(msg_id.to_be_bytes());
        let msg: Option<AppMessage> = postcard::from_bytes(&payload).ok();
        let Some(msg) = msg else {
            self.store.tx(|tx| {
                commit_state(tx)?;
                exec(
                    tx,
                    "DELETE FROM parts WHERE room = ?1 AND sender = ?2 AND msg_id = ?3",
                    params![room, sender, mid],
                )
                .map(drop)
            })?;
            self.keep_state(session, group)?;
            return Ok(());
        };
        // Everything with an id is receipted, duplicates too (our first receipt may have
        // been lost). The receipt to send is recorded in the same transaction as the key
        // state, so a crash cannot lose it.
        let (to_contact, to_room) = match &origin {
            Origin::Contact(cid) => (Some(*cid), None),
            Origin::Group { room, .. } => (None, Some(*room)),
        };
        let receipt = msg.uid();
        let finish = |tx: &rusqlite::Transaction<'_>| -> Result<(), EngineError> {
            commit_state(tx)?;
            exec(
                tx,
                "DELETE FROM parts WHERE room = ?1 AND sender = ?2 AND msg_id = ?3",
                params![room, sender, mid],
            )?;
            if let Some(uid) = &receipt {
                exec(
                    tx,
                    "INSERT INTO receipts_out (contact, room, uid) VALUES (?1, ?2, ?3)",
                    params![to_contact, to_room, &uid[..]],
                )?;
            }
            Ok(())
        };
        // Text goes into history in the same transaction as the key state.
        let mut new_message = None;
        let mut inbox = None;
        if let AppMessage::Text { uid, sent_at, text } = &msg {
            let sender_name = self.sender_name(&origin);
            let body = seal(
                &self.key,
                &enc(&StoredMessage {
                    sender: sender_name.clone(),
                    text: text.clone(),
                    sent_at: *sent_at,
                    uid: *uid,
                })?,
                "message",
            )?;
            let mention = text.to_lowercase().contains(&self.my_name.to_lowercase());
            let inserted = self.store.tx(|tx| {
                finish(tx)?;
                let n = exec(
                    tx,
                    "INSERT OR IGNORE INTO messages (room, uid, from_me, delivery, sealed) VALUES (?1, ?2, 0, NULL, ?3)",
                    params![room, &uid[..], body],
                )?;
                if n == 0 {
                    return Ok(None);
                }
                let id = tx.last_insert_rowid();
                exec(
                    tx,
                    "UPDATE rooms SET unread = unread + 1, mentions = mentions + ?1 WHERE id = ?2",
                    params![i64::from(mention), room],
                )?;
                Ok(Some(id))
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
                });
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.unread += 1;
                    r.mentions += u32::from(mention);
                }
            }
        } else {
            // What the message does (receipts, group changes) is applied after this
            // transaction; until it has been, the message waits in the inbox, so a crash in
            // between does not lose it.
            let payload = seal(&self.key, &payload, "inbox")?;
            let (c, r, m) = origin.columns();
            inbox = Some(self.store.tx(|tx| {
                finish(tx)?;
                exec(
                    tx,
                    "INSERT INTO inbox (contact, room, member, sealed) VALUES (?1, ?2, ?3, ?4)",
                    params![c, r, m, payload],
                )?;
                Ok(tx.last_insert_rowid())
            })?);
        }
        self.keep_state(session, group)?;
        if let Some(v) = new_message {
            self.emit(Event::Message(v));
            self.emit_room(room);
        }
        if let Err(e) = self.app_effects(&origin, msg) {
            self.error(e.to_string());
        }
        if let Some(id) = inbox {
            self.store
                .tx(|tx| exec(tx, "DELETE FROM inbox WHERE id = ?1", [id]).map(drop))?;
        }
        Ok(())
    }

    /// Applies what a crash left in the inbox (received, committed, not yet applied).
    pub(super) fn replay_inbox(&mut self) -> Result<(), EngineError> {
        let rows: Vec<InboxRow> = {
            let mut st = self
                .store
                .conn()
                .prepare("SELECT id, contact, room, member, sealed FROM inbox ORDER BY id")
                .map_err(|e| EngineError::Store(e.to_string()))?;
            st.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(|e| EngineError::Store(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Store(e.to_string()))?
        };
        for (id, contact, room, member, sealed) in rows {
            let origin = match (contact, room, member) {
                (Some(c), _, _) => Some(Origin::Contact(c)),
                (None, Some(r), Some(m)) => <[u8; 32]>::try_from(m.as_slice())
                    .ok()
                    .map(|member| Origin::Group { room: r, member }),
                _ => None,
            };
            let msg = open(&self.key, &sealed, "inbox")
                .ok()
                .and_then(|p| postcard::from_bytes::<AppMessage>(&p).ok());
            if let (Some(origin), Some(msg)) = (origin, msg)
                && let Err(e) = self.app_effects(&origin, msg)
            {
                self.error(e.to_string());
            }
            self.store
                .tx(|tx| exec(tx, "DELETE FROM inbox WHERE id = ?1", [id]).map(drop))?;
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
            && let Some(g) = self.rooms.get_mut(&rid).and_then(|r| r.rec.group.as_mut())
        {
            g.state = state.to_bytes().map_err(crypto)?.to_vec();
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

    pub(super) fn contact_name_of(&self, fp: &[u8; 32]) -> Option<String> {
        self.contacts
            .values()
            .find(|c| c.public.fingerprint().as_bytes() == fp)
            .map(|c| c.rec.name.clone())
    }

    pub(super) fn contact_by_fp(&self, fp: &[u8; 32]) -> Option<i64> {
        self.contacts
            .iter()
            .find(|(_, c)| c.public.fingerprint().as_bytes() == fp)
            .map(|(&id, _)| id)
    }

    pub(super) fn receipt_member(&self, origin: &Origin) -> Vec<u8> {
        match origin {
            Origin::Contact(cid) => self
                .contacts
                .get(cid)
                .map(|c| c.public.fingerprint().as_bytes().to_vec())
                .unwrap_or_default(),
            Origin::Group { room, member } => self
                .group(*room)
                .ok()
                .and_then(|g| g.members.iter().find(|m| m.senders.contains(member)))
                .map(|m| m.fingerprint.to_vec())
                .unwrap_or_else(|| member.to_vec()),
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
            other => match origin {
                Origin::Contact(cid) => self.group_control(*cid, other),
                Origin::Group { .. } => Ok(()),
            },
        }
    }

    pub(super) fn on_receipts(&mut self, origin: &Origin, uids: &[Uid]) -> Result<(), EngineError> {
        let member = self.receipt_member(origin);
        let mut delivered = Vec::new();
        self.store.tx(|tx| {
            for uid in uids {
                let msg: Option<(i64, i64, i64, Option<i64>)> = tx
                    .query_row(
                        "SELECT id, room, receipts_needed, delivery FROM messages WHERE uid = ?1 AND from_me = 1",
                        [&uid[..]],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .ok();
                let Some((id, room, needed, delivery)) = msg else {
                    // Control messages have no history row: their receipt ends their resends.
                    exec(tx, "DELETE FROM outbox WHERE uid = ?1", [&uid[..]])?;
                    continue;
                };
                exec(tx, "INSERT OR IGNORE INTO receipts (message, member) VALUES (?1, ?2)", params![id, member])?;
                let got: i64 = tx
                    .query_row("SELECT COUNT(*) FROM receipts WHERE message = ?1", [id], |r| r.get(0))
                    .map_err(|e| EngineError::Store(e.to_string()))?;
                if got >= needed && delivery != Some(Delivery::Delivered as i64) {
                    set_delivered(tx, id, &uid[..])?;
                    delivered.push((id, room));
                }
            }
            Ok(())
        })?;
        for (id, room) in delivered {
            self.emit(Event::Delivery {
                room: RoomId(room),
                id: MessageId(id),
                state: Delivery::Delivered,
            });
        }
        Ok(())
    }
}
