//! Sending: sealing application messages into the outbox, in one transaction with the
//! advanced key state, and batching receipts.

use super::*;

impl Core {
    /// Seals `msg` for `dest` without committing anything.
    pub(super) fn seal_for(&self, dest: Dest, msg: &AppMessage) -> Result<Sealed, EngineError> {
        let bytes = zeroize::Zeroizing::new(enc(msg)?);
        let msg_id = random_u64()?;
        match dest {
            Dest::Contact(cid) => {
                let c = self
                    .contacts
                    .get(&cid)
                    .ok_or(EngineError::Unknown("contact"))?;
                let mut s = self
                    .sessions
                    .get(&cid)
                    .cloned()
                    .ok_or(EngineError::Unknown("session"))?;
                let parts = split(msg_id, &bytes, Session::PLAINTEXT_CAPACITY)
                    .map_err(|e| EngineError::Crypto(e.to_string()))?;
                let envelopes = parts
                    .iter()
                    .map(|p| s.seal(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(crypto)?;
                Ok(Sealed {
                    relay: c.rec.relay.clone(),
                    mailbox: s.send_mailbox(self.epoch),
                    fanout: false,
                    envelopes,
                    session: Some((cid, s)),
                    group: None,
                })
            }
            Dest::Group(rid) => {
                let g = self.group(rid)?;
                if g.closed {
                    return Err(EngineError::Closed);
                }
                let mut state = GroupState::from_bytes(&g.state).map_err(crypto)?;
                let parts = split(
                    msg_id,
                    &bytes,
                    hum_shared::crypto::GroupSender::PLAINTEXT_CAPACITY,
                )
                .map_err(|e| EngineError::Crypto(e.to_string()))?;
                let envelopes = parts
                    .iter()
                    .map(|p| state.seal(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(crypto)?;
                Ok(Sealed {
                    relay: g.relay.clone(),
                    mailbox: state.mailbox(self.epoch),
                    fanout: true,
                    envelopes,
                    session: None,
                    group: Some((rid, state)),
                })
            }
        }
    }

    pub(super) fn group(&self, rid: i64) -> Result<&GroupRecord, EngineError> {
        self.rooms
            .get(&rid)
            .and_then(|r| r.rec.group.as_ref())
            .ok_or(EngineError::Unknown("group"))
    }

    /// The sealed rows a [`Sealed`] writes, prepared outside the transaction.
    pub(super) fn sealed_rows(&self, s: &Sealed) -> Result<StateRows, EngineError> {
        let session = match &s.session {
            Some((cid, sess)) => Some((
                *cid,
                seal(&self.key, &sess.to_bytes().map_err(crypto)?, "session")?,
            )),
            None => None,
        };
        let room = match &s.group {
            Some((rid, state)) => {
                let mut rec = self
                    .rooms
                    .get(rid)
                    .map(|r| r.rec.clone())
                    .ok_or(EngineError::Unknown("room"))?;
                if let Some(g) = rec.group.as_mut() {
                    g.state = state.to_bytes().map_err(crypto)?.to_vec();
                }
                Some((*rid, seal(&self.key, &enc(&rec)?, "room")?))
            }
            None => None,
        };
        Ok((session, room))
    }

    /// Writes a sealed message's outbox rows and the advanced key state in `tx`.
    pub(super) fn write_sealed(
        tx: &rusqlite::Transaction<'_>,
        s: &Sealed,
        uid: Option<&Uid>,
        rows: &StateRows,
    ) -> Result<Vec<i64>, EngineError> {
        let mut ids = Vec::with_capacity(s.envelopes.len());
        for env in &s.envelopes {
            exec(
                tx,
                "INSERT INTO outbox (uid, relay, mailbox, fanout, envelope, contact, room)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    uid.map(|u| u.to_vec()),
                    s.relay,
                    &s.mailbox.as_bytes()[..],
                    i64::from(s.fanout),
                    env.as_bytes().to_vec(),
                    s.session.as_ref().map(|(cid, _)| *cid),
                    s.group.as_ref().map(|(rid, _)| *rid),
                ],
            )?;
            ids.push(tx.last_insert_rowid());
        }
        Self::write_state(tx, rows)?;
        Ok(ids)
    }

    /// Writes advanced key state: a session row, a room row.
    pub(super) fn write_state(
        tx: &rusqlite::Transaction<'_>,
        rows: &StateRows,
    ) -> Result<(), EngineError> {
        if let Some((cid, blob)) = &rows.0 {
            exec(
                tx,
                "UPDATE sessions SET sealed = ?1 WHERE contact = ?2",
                params![blob, cid],
            )?;
        }
        if let Some((rid, blob)) = &rows.1 {
            exec(
                tx,
                "UPDATE rooms SET sealed = ?1 WHERE id = ?2",
                params![blob, rid],
            )?;
        }
        Ok(())
    }

    /// After commit: keep the advanced key state and queue the rows.
    pub(super) fn after_sealed(&mut self, s: Sealed, ids: Vec<i64>) -> Result<(), EngineError> {
        if let Some((cid, sess)) = s.session {
            self.sessions.insert(cid, sess);
        }
        if let Some((rid, state)) = s.group
            && let Some(g) = self.rooms.get_mut(&rid).and_then(|r| r.rec.group.as_mut())
        {
            g.state = state.to_bytes().map_err(crypto)?.to_vec();
        }
        self.ensure_link(&s.relay);
        if let Some(l) = self.links.get_mut(&s.relay) {
            l.pending.extend(ids);
        }
        self.emit_link(&s.relay);
        self.pump(&s.relay)
    }

    /// Seals and queues a message that has no history row (receipts, group control).
    pub(super) fn send_app(&mut self, dest: Dest, msg: &AppMessage) -> Result<(), EngineError> {
        let s = self.seal_for(dest, msg)?;
        let rows = self.sealed_rows(&s)?;
        let uid = msg.uid();
        let ids = self
            .store
            .tx(|tx| Self::write_sealed(tx, &s, uid.as_ref(), &rows))?;
        self.after_sealed(s, ids)
    }

    pub(super) fn send_text(&mut self, rid: i64, text: String) -> Result<(), EngineError> {
        if text.trim().is_empty() {
            return Err(EngineError::Empty);
        }
        if text.len() > MAX_TEXT {
            return Err(EngineError::TooLong(MAX_TEXT));
        }
        let dest = self.dest_of(rid)?;
        let uid = random_uid()?;
        let sent_at = now_millis();
        let msg = AppMessage::Text {
            uid,
            sent_at,
            text: text.clone(),
        };
        let s = self.seal_for(dest, &msg)?;
        let rows = self.sealed_rows(&s)?;
        let needed = match dest {
            Dest::Contact(_) => 1,
            Dest::Group(rid) => i64::try_from(self.group(rid)?.members.len()).unwrap_or(i64::MAX),
        };
        let body = seal(
            &self.key,
            &enc(&StoredMessage {
                sender: self.my_name.clone(),
                text: text.clone(),
                sent_at,
                uid,
            })?,
            "message",
        )?;
        let (mid, ids) = self.store.tx(|tx| {
            exec(
                tx,
                "INSERT INTO messages (room, uid, from_me, delivery, receipts_needed, sealed) VALUES (?1, ?2, 1, ?3, ?4, ?5)",
                params![rid, &uid[..], Delivery::Queued as i64, needed, body],
            )?;
            let mid = tx.last_insert_rowid();
            Ok((mid, Self::write_sealed(tx, &s, Some(&uid), &rows)?))
        })?;
        self.emit(Event::Message(MessageView {
            id: MessageId(mid),
            room: RoomId(rid),
            sender: self.my_name.clone(),
            from_me: true,
            text,
            sent_at,
            delivery: Some(Delivery::Queued),
        }));
        self.after_sealed(s, ids)
    }

    pub(super) fn dest_of(&self, rid: i64) -> Result<Dest, EngineError> {
        let room = self.rooms.get(&rid).ok_or(EngineError::Unknown("room"))?;
        if room.rec.group.is_some() {
            return Ok(Dest::Group(rid));
        }
        self.contacts
            .iter()
            .find(|(_, c)| c.room == rid)
            .map(|(&cid, _)| Dest::Contact(cid))
            .ok_or(EngineError::Unknown("room"))
    }

    /// Seals the receipts waiting in the store, in batches per room, into the outbox.
    pub(super) fn flush_receipts(&mut self) -> Result<(), EngineError> {
        let rows: Vec<ReceiptRow> = {
            let mut st = self
                .store
                .conn()
                .prepare_cached(
                    "SELECT id, contact, room, uid FROM receipts_out ORDER BY id LIMIT 400",
                )
                .map_err(|e| EngineError::Store(e.to_string()))?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(|e| EngineError::Store(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| EngineError::Store(e.to_string()))?
        };
        let mut by_dest: Vec<(Dest, Vec<(i64, Uid)>)> = Vec::new();
        for (id, contact, room, uid) in rows {
            let dest = match (contact, room) {
                (Some(c), _) => Dest::Contact(c),
                (None, Some(r)) => Dest::Group(r),
                (None, None) => continue,
            };
            let Ok(uid) = <Uid>::try_from(uid.as_slice()) else {
                continue;
            };
            match by_dest.iter_mut().find(|(d, _)| *d == dest) {
                Some((_, v)) => v.push((id, uid)),
                None => by_dest.push((dest, vec![(id, uid)])),
            }
        }
        for (dest, items) in by_dest {
            for chunk in items.chunks(RECEIPT_BATCH) {
                let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
                let msg = AppMessage::Receipt {
                    uids: chunk.iter().map(|(_, u)| *u).collect(),
                };
                let sealed = match self.seal_for(dest, &msg) {
                    Ok(s) => s,
                    Err(e) => {
                        // The contact or group is gone or closed: nobody to receipt.
                        tracing::debug!(cause = %e, "receipts dropped");
                        self.store.tx(|tx| {
                            for id in &ids {
                                exec(tx, "DELETE FROM receipts_out WHERE id = ?1", [id])?;
                            }
                            Ok(())
                        })?;
                        continue;
                    }
                };
                let rows = self.sealed_rows(&sealed)?;
                let out = self.store.tx(|tx| {
                    for id in &ids {
                        exec(tx, "DELETE FROM receipts_out WHERE id = ?1", [id])?;
                    }
                    Self::write_sealed(tx, &sealed, None, &rows)
                })?;
                self.after_sealed(sealed, out)?;
            }
        }
        Ok(())
    }
}
