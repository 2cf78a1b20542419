//! Sending: sealing application messages into the outbox, in one transaction with the
//! advanced key state, and batching receipts.

use super::*;

/// Splits an encoded message into parts, each wiped when dropped (control messages carry
/// sender keys).
fn plain_parts(
    msg_id: u64,
    bytes: &[u8],
    capacity: usize,
    pad: bool,
) -> Result<Vec<Zeroizing<Vec<u8>>>, EngineError> {
    let mut bytes = Zeroizing::new(bytes.to_vec());
    if pad {
        // Zeros after the message to fill 1, 4, 16 or a multiple of 16 parts: how many
        // deposits a message takes tells little of its length. The decoder stops at the
        // message's end.
        let parts = hum_shared::parts_needed(bytes.len(), capacity).map_err(EngineError::from)?;
        let padded = usize::from(hum_shared::route::session::padded_parts(parts));
        bytes.resize(padded * (capacity - hum_shared::PART_HEADER_LEN), 0);
    }
    Ok(split(msg_id, &bytes, capacity)
        .map_err(EngineError::from)?
        .into_iter()
        .map(Zeroizing::new)
        .collect())
}

/// A random wait, exponential with mean `mean`.
fn exponential(mean: Duration) -> Result<Duration, EngineError> {
    // In (0, 1]: never the logarithm of zero.
    let u = (random_u64()? >> 11) as f64 + 1.0;
    let u = u / (1u64 << 53) as f64;
    Ok(mean.mul_f64(-u.ln()))
}

impl Core {
    /// Seals `msg` for `dest` without committing anything.
    pub(super) fn seal_for(&self, dest: Dest, msg: &AppMessage) -> Result<Sealed, EngineError> {
        let bytes = enc(msg)?;
        let msg_id = random_u64()?;
        match dest {
            Dest::Contact(cid) => {
                let c = self
                    .contacts
                    .get(&cid)
                    .ok_or(EngineError::NoSuch(What::Contact))?;
                let mut s = self
                    .sessions
                    .get(&cid)
                    .cloned()
                    .ok_or(EngineError::NoSuch(What::Session))?;
                let parts = plain_parts(
                    msg_id,
                    &bytes,
                    Session::PLAINTEXT_CAPACITY,
                    self.route.is_some(),
                )?;
                let envelopes = parts
                    .iter()
                    .map(|p| s.seal(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(EngineError::from)?;
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
                let mut state = g.state.clone();
                let parts = plain_parts(
                    msg_id,
                    &bytes,
                    hum_shared::crypto::GroupSender::PLAINTEXT_CAPACITY,
                    self.route.is_some(),
                )?;
                let envelopes = parts
                    .iter()
                    .map(|p| state.seal(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(EngineError::from)?;
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
            .and_then(|r| r.group.as_ref())
            .ok_or(EngineError::NoSuch(What::Group))
    }

    /// The record of the group room whose state a [`Sealed`] advanced, with that state.
    pub(super) fn advanced_room(
        &self,
        s: &Sealed,
    ) -> Result<Option<(i64, RoomRecord)>, EngineError> {
        match &s.group {
            Some((rid, state)) => Ok(Some((*rid, self.room_with_state(*rid, state)?))),
            None => Ok(None),
        }
    }

    /// Group room `rid`'s record with `state` in place of its group state.
    pub(super) fn room_with_state(
        &self,
        rid: i64,
        state: &GroupState,
    ) -> Result<RoomRecord, EngineError> {
        let mut rec = self
            .rooms
            .get(&rid)
            .cloned()
            .ok_or(EngineError::NoSuch(What::Room))?;
        if let Some(g) = rec.group.as_mut() {
            g.state = state.clone();
        }
        Ok(rec)
    }

    /// Writes a sealed message's outbox rows and the advanced key state (the session, or
    /// the group room `room` from [`Core::advanced_room`]).
    pub(super) fn write_sealed(
        db: &Db<'_>,
        s: &Sealed,
        uid: Option<&Uid>,
        room: Option<&(i64, RoomRecord)>,
    ) -> Result<Vec<i64>, EngineError> {
        let head = OutboxHead {
            relay: s.relay.clone(),
            mailbox: *s.mailbox.as_bytes(),
            fanout: s.fanout,
            dest: s.dest(),
            uid: uid.copied(),
        };
        let ids = s
            .envelopes
            .iter()
            .map(|env| db.insert_outbox(&head, env.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::write_state(db, s.session.as_ref(), room)?;
        Ok(ids)
    }

    /// Writes advanced key state: a session, a room.
    pub(super) fn write_state(
        db: &Db<'_>,
        session: Option<&(i64, Session)>,
        room: Option<&(i64, RoomRecord)>,
    ) -> Result<(), EngineError> {
        if let Some((cid, s)) = session {
            db.put_session(*cid, s)?;
        }
        if let Some((rid, rec)) = room {
            db.put_room(*rid, rec)?;
        }
        Ok(())
    }

    /// After commit: keep the advanced key state and queue the rows.
    pub(super) fn after_sealed(&mut self, s: Sealed, ids: Vec<i64>) -> Result<(), EngineError> {
        if let Some((cid, sess)) = s.session {
            self.sessions.insert(cid, sess);
        }
        if let Some((rid, state)) = s.group
            && let Some(g) = self.rooms.get_mut(&rid).and_then(|r| r.group.as_mut())
        {
            g.state = state;
        }
        self.ensure_link(&s.relay);
        if let Some(l) = self.links.get_mut(&s.relay) {
            for id in ids {
                l.pump.push(id);
            }
        }
        self.emit_link(&s.relay);
        self.pump(&s.relay)
    }

    /// Seals and queues a message that has no history row (receipts, group control).
    pub(super) fn send_app(&mut self, dest: Dest, msg: &AppMessage) -> Result<(), EngineError> {
        let s = self.seal_for(dest, msg)?;
        let room = self.advanced_room(&s)?;
        let uid = msg.uid();
        let ids = self
            .store
            .tx(|db| Self::write_sealed(db, &s, uid.as_ref(), room.as_ref()))?;
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
        if let Dest::Contact(cid) = dest
            && self.route.is_some()
        {
            self.flush_receipts_of(cid)?;
        }
        let uid = random_uid()?;
        let sent_at = self.now.millis();
        let msg = AppMessage::Text {
            uid,
            sent_at,
            text: text.clone(),
        };
        let s = self.seal_for(dest, &msg)?;
        let room = self.advanced_room(&s)?;
        let needed = match dest {
            Dest::Contact(_) => 1,
            Dest::Group(rid) => u32::try_from(self.group(rid)?.members.len()).unwrap_or(u32::MAX),
        };
        let rec = MessageRecord {
            from_me: true,
            delivery: Some(DeliveryState::Queued),
            receipts_needed: needed,
            receipts: Vec::new(),
            body: StoredMessage {
                sender: self.my_name.clone(),
                text: text.clone(),
                sent_at,
                uid,
                event: false,
            },
        };
        let (mid, ids) = self.store.tx(|db| {
            let mid = db
                .insert_message(rid, &rec)?
                .ok_or(Inconsistency::MessageIdTwice)?;
            Ok((mid, Self::write_sealed(db, &s, Some(&uid), room.as_ref())?))
        })?;
        self.emit(Event::Message(MessageView {
            id: MessageId(mid),
            room: RoomId(rid),
            sender: self.my_name.clone(),
            from_me: true,
            text,
            sent_at,
            delivery: Some(Delivery::Queued),
            kind: MessageKind::Text,
        }));
        self.after_sealed(s, ids)
    }

    pub(super) fn dest_of(&self, rid: i64) -> Result<Dest, EngineError> {
        let room = self
            .rooms
            .get(&rid)
            .ok_or(EngineError::NoSuch(What::Room))?;
        if room.group.is_some() {
            return Ok(Dest::Group(rid));
        }
        self.contacts
            .in_room(rid)
            .map(|(cid, _)| Dest::Contact(cid))
            .ok_or(EngineError::NoSuch(What::Room))
    }

    /// Whether contact `cid`'s receipts leave now. With the hum/2 link they wait a random
    /// time after the first (exponential, mean `EngineOptions::receipt_delay`), so when
    /// a receipt leaves does not tell when its message arrived; `now` (quitting, a text to
    /// them) sends them at once.
    fn receipts_leave(&mut self, cid: i64, now: bool) -> Result<bool, EngineError> {
        if self.route.is_none() || now {
            self.receipts_due.remove(&cid);
            return Ok(true);
        }
        let at = match self.receipts_due.get(&cid) {
            Some(at) => *at,
            None => {
                let at = self.now.at + exponential(self.options.receipt_delay)?;
                self.receipts_due.insert(cid, at);
                at
            }
        };
        if self.now.at < at {
            return Ok(false);
        }
        self.receipts_due.remove(&cid);
        Ok(true)
    }

    /// Seals the receipts waiting in the store, in batches per room, into the outbox:
    /// those that are due, or `all` of them.
    pub(super) fn flush_receipts(&mut self, all: bool) -> Result<(), EngineError> {
        self.flush_receipts_where(|_| true, all)
    }

    /// Seals contact `cid`'s waiting receipts now (its next message carries them along).
    pub(super) fn flush_receipts_of(&mut self, cid: i64) -> Result<(), EngineError> {
        self.flush_receipts_where(|d| d == Dest::Contact(cid), true)
    }

    fn flush_receipts_where(
        &mut self,
        pick: impl Fn(Dest) -> bool,
        all: bool,
    ) -> Result<(), EngineError> {
        let rows = self.store.db().receipts_out(400)?;
        let mut by_dest: Vec<(Dest, Vec<(i64, Uid)>)> = Vec::new();
        for (id, ReceiptOut { dest, uid }) in rows {
            if !pick(dest) {
                continue;
            }
            if let Dest::Contact(cid) = dest
                && !by_dest.iter().any(|(d, _)| *d == dest)
                && !self.receipts_leave(cid, all)?
            {
                continue;
            }
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
                        self.store.tx(|db| {
                            for id in &ids {
                                db.delete_receipt_out(*id)?;
                            }
                            Ok(())
                        })?;
                        continue;
                    }
                };
                let room = self.advanced_room(&sealed)?;
                let out = self.store.tx(|db| {
                    for id in &ids {
                        db.delete_receipt_out(*id)?;
                    }
                    Self::write_sealed(db, &sealed, None, room.as_ref())
                })?;
                self.after_sealed(sealed, out)?;
            }
        }
        Ok(())
    }
}
