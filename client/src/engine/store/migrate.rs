//! Migration of older stores, run once at unlock, in one transaction: a row that does not
//! open or decode stops it, and the store stays as it was.
//!
//! Schema 1 (hum before the store was sealed row by row) kept contact fingerprints,
//! relays, mailbox ids, rooms, directions, delivery states, receipts, part senders,
//! cursors and invite expiry in plaintext columns, and bound each sealed blob to its kind
//! only. Every row is opened with the old binding, sealed again as schema 2 writes it, and
//! the old tables are dropped (their pages overwritten with zeros by `secure_delete`).
//! The later schema 1 stores also have `used_invites` (with the expiry in clear) and
//! `invite_checks`, and history messages that carry an `event` flag; older ones have
//! neither, and their messages decode without the flag.

use hum_shared::crypto::{MemberId, StoreKey};
use rusqlite::{Connection, params};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Db, ROWS_SQL, SCHEMA, Table, db, dec, id_blobs, rows, set_meta};
use crate::engine::records::{
    ContactRecord, DeliveryState, Dest, GroupRecord, InboxRecord, InviteCheckRecord, MemberRecord,
    MessageRecord, Origin, OutboxHead, PartRecord, ReceiptOut, RoomRecord, UsedInviteRecord,
};
use crate::engine::wire::StoredMessage;
use crate::engine::{EngineError, StoreError};

/// Schema 1's tables, children first.
const V1_TABLES: [&str; 11] = [
    "receipts",
    "messages",
    "outbox",
    "parts",
    "receipts_out",
    "inbox",
    "cursors",
    "sessions",
    "rooms",
    "invites",
    "contacts",
];

/// The tables later schema 1 stores have (used invites, invites watched), children first.
const V1_LATER_TABLES: [&str; 2] = ["invite_checks", "used_invites"];

/// Schema 1's used invite record (its expiry was a clear column).
#[derive(Deserialize)]
struct UsedInviteV1 {
    capability: Zeroizing<[u8; 32]>,
    answer_key: [u8; 32],
}

/// Schema 1's group state record.
#[derive(Deserialize)]
struct GroupV1 {
    id: hum_shared::crypto::GroupId,
    #[serde(with = "crate::engine::records::group_state_bytes")]
    state: hum_shared::crypto::GroupState,
    #[serde(with = "crate::engine::records::relay_text")]
    relay: hum_shared::RelayAddr,
    #[serde(with = "crate::engine::records::fingerprint_bytes")]
    admin: hum_shared::crypto::Fingerprint,
    members: Vec<MemberRecord>,
    closed: bool,
}

/// Schema 1's room record.
#[derive(Deserialize)]
struct RoomV1 {
    name: String,
    group: Option<GroupV1>,
}

impl RoomV1 {
    /// The room as schema 2 keeps it, with what schema 1 kept in clear columns.
    fn into_record(self, contact: Option<i64>, unread: i64, mentions: i64) -> RoomRecord {
        RoomRecord {
            name: self.name,
            group: self.group.map(|g| GroupRecord {
                id: g.id,
                state: g.state,
                relay: g.relay,
                admin: g.admin,
                members: g.members,
                closed: g.closed,
            }),
            contact,
            unread: u32::try_from(unread).unwrap_or(u32::MAX),
            mentions: u32::try_from(mentions).unwrap_or(u32::MAX),
        }
    }
}

/// What the migration makes of an opened schema 1 row, decoded as each kind of record it
/// reads as its own (rooms, used invites, history messages of either layout), for fuzz
/// targets.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_v1_rows(
    bytes: &[u8],
) -> (
    Option<RoomRecord>,
    Option<UsedInviteRecord>,
    Option<StoredMessage>,
) {
    let room = dec::<RoomV1>(bytes, Table::Rooms)
        .ok()
        .map(|old| old.into_record(None, 0, 0));
    let used = dec::<UsedInviteV1>(bytes, Table::UsedInvites)
        .ok()
        .map(|old| UsedInviteRecord {
            capability: *old.capability,
            answer_key: old.answer_key,
            expires_at: 0,
        });
    (room, used, StoredMessage::decode(bytes))
}

fn open_v1(
    key: &StoreKey,
    sealed: &[u8],
    kind: &'static str,
) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    key.open(sealed, kind.as_bytes())
        .map_err(|_| StoreError::OldRow(kind).into())
}

fn array<const N: usize>(b: &[u8], what: &'static str) -> Result<[u8; N], EngineError> {
    <[u8; N]>::try_from(b).map_err(|_| StoreError::OldRow(what).into())
}

/// Whether the store has table `name`.
fn has_table(c: &Connection, name: &str) -> Result<bool, EngineError> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
    .map_err(db)
}

/// Rewrites a schema 1 store as schema 2.
pub(super) fn from_v1(conn: &mut Connection, key: &StoreKey) -> Result<(), EngineError> {
    let tx = conn.transaction().map_err(db)?;
    tx.execute_batch("DROP INDEX IF EXISTS messages_by_room")
        .map_err(db)?;
    let mut tables: Vec<&str> = Vec::with_capacity(V1_LATER_TABLES.len() + V1_TABLES.len());
    for t in V1_LATER_TABLES {
        if has_table(&tx, t)? {
            tables.push(t);
        }
    }
    let later = !tables.is_empty();
    tables.extend(V1_TABLES);
    for t in &tables {
        tx.execute_batch(&format!("ALTER TABLE {t} RENAME TO v1_{t}"))
            .map_err(db)?;
    }
    tx.execute_batch(ROWS_SQL).map_err(db)?;
    let d = Db { conn: &tx, key };
    contacts(&d)?;
    rooms(&d)?;
    messages(&d)?;
    outbox(&d)?;
    rest(&d)?;
    if later {
        invite_state(&d)?;
    }
    for t in &tables {
        tx.execute_batch(&format!("DROP TABLE v1_{t}"))
            .map_err(db)?;
    }
    set_meta(&tx, "schema", &SCHEMA.to_be_bytes())?;
    tx.commit().map_err(db)?;
    Ok(())
}

fn contacts(d: &Db<'_>) -> Result<(), EngineError> {
    for (id, s) in id_blobs(d.conn, "SELECT id, sealed FROM v1_contacts", [])? {
        let rec: ContactRecord = dec(&open_v1(d.key, &s, "contact")?, Table::Contacts)?;
        let sealed = d.seal_record(Table::Contacts, id, &[], &rec)?;
        d.conn
            .execute(
                "INSERT INTO contacts (id, sealed) VALUES (?1, ?2)",
                params![id, sealed],
            )
            .map_err(db)?;
    }
    for (cid, s) in id_blobs(d.conn, "SELECT contact, sealed FROM v1_sessions", [])? {
        let plain = open_v1(d.key, &s, "session")?;
        let sealed = d.seal(Table::Sessions, &cid.to_be_bytes(), &[], &plain)?;
        d.conn
            .execute(
                "INSERT INTO sessions (contact, sealed) VALUES (?1, ?2)",
                params![cid, sealed],
            )
            .map_err(db)?;
    }
    for (id, s) in id_blobs(d.conn, "SELECT id, sealed FROM v1_invites", [])? {
        let plain = open_v1(d.key, &s, "invite")?;
        let sealed = d.seal(Table::Invites, &id.to_be_bytes(), &[], &plain)?;
        d.conn
            .execute(
                "INSERT INTO invites (id, sealed) VALUES (?1, ?2)",
                params![id, sealed],
            )
            .map_err(db)?;
    }
    Ok(())
}

fn rooms(d: &Db<'_>) -> Result<(), EngineError> {
    /// A schema 1 room row.
    struct Row {
        id: i64,
        contact: Option<i64>,
        sealed: Vec<u8>,
        unread: i64,
        mentions: i64,
    }
    let rows = rows(
        d.conn,
        "SELECT id, contact, sealed, unread, mentions FROM v1_rooms",
        [],
        |r| {
            Ok(Row {
                id: r.get(0)?,
                contact: r.get(1)?,
                sealed: r.get(2)?,
                unread: r.get(3)?,
                mentions: r.get(4)?,
            })
        },
    )?;
    for Row {
        id,
        contact,
        sealed: s,
        unread,
        mentions,
    } in rows
    {
        let old: RoomV1 = dec(&open_v1(d.key, &s, "room")?, Table::Rooms)?;
        let rec = old.into_record(contact, unread, mentions);
        let sealed = d.seal_record(Table::Rooms, id, &[], &rec)?;
        d.conn
            .execute(
                "INSERT INTO rooms (id, sealed) VALUES (?1, ?2)",
                params![id, sealed],
            )
            .map_err(db)?;
    }
    Ok(())
}

fn messages(d: &Db<'_>) -> Result<(), EngineError> {
    /// A schema 1 message row.
    struct Row {
        id: i64,
        room: i64,
        from_me: bool,
        delivery: Option<i64>,
        needed: i64,
        sealed: Vec<u8>,
    }
    let rows: Vec<Row> = rows(
        d.conn,
        "SELECT id, room, from_me, delivery, receipts_needed, sealed FROM v1_messages
             ORDER BY id",
        [],
        |r| {
            Ok(Row {
                id: r.get(0)?,
                room: r.get(1)?,
                from_me: r.get::<_, i64>(2)? != 0,
                delivery: r.get(3)?,
                needed: r.get(4)?,
                sealed: r.get(5)?,
            })
        },
    )?;
    for Row {
        id,
        room,
        from_me,
        delivery,
        needed,
        sealed: s,
    } in rows
    {
        // Of either layout: with the event flag, or from before events were kept.
        let body = StoredMessage::decode(&open_v1(d.key, &s, "message")?)
            .ok_or(StoreError::OldRow("message"))?;
        let receipts = id_blobs(
            d.conn,
            "SELECT message, member FROM v1_receipts WHERE message = ?1",
            [id],
        )?
        .into_iter()
        .map(|(_, m)| array::<32>(&m, "receipt member"))
        .collect::<Result<Vec<_>, _>>()?;
        let rec = MessageRecord {
            from_me,
            delivery: delivery.map(|v| match v {
                0 => DeliveryState::Queued,
                1 => DeliveryState::Sent,
                _ => DeliveryState::Delivered,
            }),
            receipts_needed: u32::try_from(needed).unwrap_or(0),
            receipts,
            body,
        };
        let room_tag = d.room_tag(room)?;
        let uid_tag = d.message_uid_tag(room, &rec.body.uid)?;
        let sealed = d.seal_record(Table::Messages, id, &room.to_be_bytes(), &rec)?;
        d.conn
            .execute(
                "INSERT INTO messages (id, room, uid, sealed) VALUES (?1, ?2, ?3, ?4)",
                params![id, &room_tag[..], &uid_tag[..], sealed],
            )
            .map_err(db)?;
    }
    Ok(())
}

fn outbox(d: &Db<'_>) -> Result<(), EngineError> {
    /// A schema 1 outbox row.
    struct Row {
        id: i64,
        uid: Option<Vec<u8>>,
        relay: String,
        mailbox: Vec<u8>,
        fanout: bool,
        envelope: Vec<u8>,
        contact: Option<i64>,
        room: Option<i64>,
    }
    let rows: Vec<Row> = rows(
        d.conn,
        "SELECT id, uid, relay, mailbox, fanout, envelope, contact, room FROM v1_outbox
             ORDER BY id",
        [],
        |r| {
            Ok(Row {
                id: r.get(0)?,
                uid: r.get(1)?,
                relay: r.get(2)?,
                mailbox: r.get(3)?,
                fanout: r.get::<_, i64>(4)? != 0,
                envelope: r.get(5)?,
                contact: r.get(6)?,
                room: r.get(7)?,
            })
        },
    )?;
    for Row {
        id,
        uid,
        relay,
        mailbox,
        fanout,
        envelope,
        contact,
        room,
    } in rows
    {
        let uid = uid.map(|u| array::<16>(&u, "message id")).transpose()?;
        let head = OutboxHead {
            relay: relay.parse().map_err(|_| StoreError::OldRow("relay"))?,
            mailbox: array::<32>(&mailbox, "mailbox")?,
            fanout,
            dest: match (contact, room) {
                (Some(c), _) => Some(Dest::Contact(c)),
                (None, Some(r)) => Some(Dest::Group(r)),
                (None, None) => None,
            },
            uid,
        };
        let uid_tag = uid.as_ref().map(|u| d.outbox_uid_tag(u)).transpose()?;
        let sealed_head = d.seal_record(Table::OutboxHead, id, &[], &head)?;
        let sealed_env = d.seal(Table::OutboxEnvelope, &id.to_be_bytes(), &[], &envelope)?;
        d.conn
            .execute(
                "INSERT INTO outbox (id, uid, head, envelope) VALUES (?1, ?2, ?3, ?4)",
                params![
                    id,
                    uid_tag.as_ref().map(|u| &u[..]),
                    sealed_head,
                    sealed_env
                ],
            )
            .map_err(db)?;
    }
    Ok(())
}

/// Parts, receipts to send, the inbox and the cursors: rows with no id anything refers to.
fn rest(d: &Db<'_>) -> Result<(), EngineError> {
    /// A schema 1 part row.
    struct Part {
        room: i64,
        sender: Vec<u8>,
        msg_id: i64,
        idx: i64,
        sealed: Vec<u8>,
    }
    let parts: Vec<Part> = rows(
        d.conn,
        "SELECT room, sender, msg_id, idx, sealed FROM v1_parts ORDER BY rowid",
        [],
        |r| {
            Ok(Part {
                room: r.get(0)?,
                sender: r.get(1)?,
                msg_id: r.get(2)?,
                idx: r.get(3)?,
                sealed: r.get(4)?,
            })
        },
    )?;
    for Part {
        room,
        sender,
        msg_id,
        idx,
        sealed: s,
    } in parts
    {
        d.insert_part(&PartRecord {
            room,
            sender,
            msg_id: u64::from_be_bytes(msg_id.to_be_bytes()),
            idx: u16::try_from(idx).map_err(|_| StoreError::OldRow("part index"))?,
            part: open_v1(d.key, &s, "part")?,
        })?;
    }

    type Receipt = (Option<i64>, Option<i64>, Vec<u8>);
    let receipts: Vec<Receipt> = rows(
        d.conn,
        "SELECT contact, room, uid FROM v1_receipts_out ORDER BY id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (contact, room, uid) in receipts {
        let dest = match (contact, room) {
            (Some(c), _) => Dest::Contact(c),
            (None, Some(r)) => Dest::Group(r),
            (None, None) => continue,
        };
        d.insert_receipt_out(&ReceiptOut {
            dest,
            uid: array::<16>(&uid, "message id")?,
        })?;
    }

    /// A schema 1 inbox row.
    struct Inbox {
        contact: Option<i64>,
        room: Option<i64>,
        member: Option<Vec<u8>>,
        sealed: Vec<u8>,
    }
    let inbox: Vec<Inbox> = rows(
        d.conn,
        "SELECT contact, room, member, sealed FROM v1_inbox ORDER BY id",
        [],
        |r| {
            Ok(Inbox {
                contact: r.get(0)?,
                room: r.get(1)?,
                member: r.get(2)?,
                sealed: r.get(3)?,
            })
        },
    )?;
    for Inbox {
        contact,
        room,
        member,
        sealed: s,
    } in inbox
    {
        let origin = match (contact, room, member) {
            (Some(c), _, _) => Origin::Contact(c),
            (None, Some(room), Some(m)) => Origin::Group {
                room,
                member: MemberId::from_bytes(array::<32>(&m, "member")?),
            },
            _ => continue,
        };
        d.insert_inbox(&InboxRecord {
            origin,
            payload: open_v1(d.key, &s, "inbox")?,
        })?;
    }

    let cursors: Vec<(Vec<u8>, i64)> =
        rows(d.conn, "SELECT mailbox, seq FROM v1_cursors", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    for (mailbox, seq) in cursors {
        d.set_cursor(
            &array::<32>(&mailbox, "mailbox")?,
            u64::try_from(seq).unwrap_or(0),
        )?;
    }
    Ok(())
}

/// Used invites and the invites watched (stores written by a later schema 1 hum only).
fn invite_state(d: &Db<'_>) -> Result<(), EngineError> {
    let used: Vec<(i64, i64, Vec<u8>)> = rows(
        d.conn,
        "SELECT id, expires_at, sealed FROM v1_used_invites ORDER BY id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (id, expires_at, s) in used {
        let old: UsedInviteV1 = dec(&open_v1(d.key, &s, "used invite")?, Table::UsedInvites)?;
        let rec = UsedInviteRecord {
            capability: *old.capability,
            answer_key: old.answer_key,
            expires_at: u64::try_from(expires_at).unwrap_or(0),
        };
        let sealed = d.seal_record(Table::UsedInvites, id, &[], &rec)?;
        d.conn
            .execute(
                "INSERT INTO used_invites (id, sealed) VALUES (?1, ?2)",
                params![id, sealed],
            )
            .map_err(db)?;
    }
    for (cid, s) in id_blobs(
        d.conn,
        "SELECT contact, sealed FROM v1_invite_checks ORDER BY contact",
        [],
    )? {
        let rec: InviteCheckRecord =
            dec(&open_v1(d.key, &s, "invite check")?, Table::InviteChecks)?;
        d.put_invite_check(cid, &rec)?;
    }
    Ok(())
}
