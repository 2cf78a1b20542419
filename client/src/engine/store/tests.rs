//! The store's rows: bound where they are, nothing in clear, and schema 1 migrated.

use hum_shared::crypto::{Identity, Invite, KdfParams, Session};
use serde::Serialize;

use super::*;
use crate::engine::records::{
    DeliveryState, Dest, GroupRecord, InviteCheckRecord, MemberRecord, Origin, UsedInviteRecord,
};
use crate::engine::scratch::Scratch;
use crate::engine::wire::StoredMessage;
use hum_shared::crypto::Fingerprint;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The same store key on every call (a store made before key slots derived it this way).
fn key() -> Result<StoreKey, EngineError> {
    StoreKey::derive_legacy_argon2i(b"pw", &[7; 16], &KdfParams::INSECURE_FAST)
        .map_err(EngineError::from)
}

fn open_store(dir: &Scratch) -> Result<ProfileStore, EngineError> {
    let lock = ProfileLock::acquire(&dir.0, "t")?;
    StoreFile::open(&dir.0.join("store.db"), lock)?.unlock(key()?)
}

/// A real session between two fresh identities, and the peer's identity.
fn session() -> Result<(Session, Identity), Box<dyn std::error::Error>> {
    let me = Identity::generate();
    let peer = Identity::generate();
    let (invite, _) = peer.create_invite(&relay().to_string(), 3600, 1_800_000_000)?;
    let invite = Invite::decode(&invite.encode(), 1_800_000_000)?;
    let (s, _) = Session::initiate(&me, &invite, b"hello")?;
    Ok((s, peer))
}

fn relay() -> hum_shared::RelayAddr {
    hum_shared::RelayAddr {
        host: "relay.example.net".into(),
        port: 7447,
        fingerprint: hum_shared::CertFingerprint([0xab; 32]),
    }
}

fn contact(name: &str, peer: &Identity) -> ContactRecord {
    ContactRecord {
        name: name.into(),
        identity: peer.public().to_bytes().to_vec(),
        relay: relay(),
    }
}

fn room(name: &str, contact: Option<i64>) -> RoomRecord {
    RoomRecord {
        name: name.into(),
        group: None,
        contact,
        unread: 0,
        mentions: 0,
    }
}

fn text(uid: u8, from_me: bool, text: &str) -> MessageRecord {
    MessageRecord {
        from_me,
        delivery: from_me.then_some(DeliveryState::Queued),
        receipts_needed: u32::from(from_me),
        receipts: Vec::new(),
        body: StoredMessage {
            sender: if from_me { "me" } else { "them" }.into(),
            text: text.into(),
            sent_at: 1_800_000_000_000,
            uid: [uid; 16],
            event: false,
        },
    }
}

/// The tables of schema 2 and their columns: row ids, keyed tags and sealed blobs only.
const SCHEMA_2: &[(&str, &[&str])] = &[
    ("contacts", &["id", "sealed"]),
    ("sessions", &["contact", "sealed"]),
    ("rooms", &["id", "sealed"]),
    ("invites", &["id", "sealed"]),
    ("messages", &["id", "room", "uid", "sealed"]),
    ("outbox", &["id", "uid", "head", "envelope"]),
    ("parts", &["id", "msg", "part", "sealed"]),
    ("receipts_out", &["id", "sealed"]),
    ("inbox", &["id", "sealed"]),
    ("cursors", &["mailbox", "sealed"]),
    ("used_invites", &["id", "sealed"]),
    ("invite_checks", &["contact", "sealed"]),
    ("homes", &["person", "sealed"]),
    ("outbox_kept", &["id", "sealed"]),
    ("meta", &["key", "value"]),
];

/// Checks that `conn` has exactly the tables of [`SCHEMA_2`], each with exactly its
/// columns.
fn assert_schema_2(conn: &Connection) -> TestResult {
    let tables: Vec<String> = {
        let mut st = conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             ORDER BY name",
        )?;
        st.query_map([], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut want: Vec<&str> = SCHEMA_2.iter().map(|(t, _)| *t).collect();
    want.sort_unstable();
    assert_eq!(tables, want);
    for (table, columns) in SCHEMA_2 {
        let mut st = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let got: Vec<String> = st
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        assert_eq!(&got, columns, "columns of {table}");
    }
    Ok(())
}

#[test]
fn every_column_is_a_row_id_a_keyed_tag_or_sealed() -> TestResult {
    let dir = Scratch::new("columns");
    let store = open_store(&dir)?;
    assert_schema_2(&store.conn)
}

#[test]
fn a_row_moved_or_swapped_with_raw_sql_does_not_open() -> TestResult {
    let dir = Scratch::new("swap");
    let mut store = open_store(&dir)?;
    let (bob_session, bob) = session()?;
    let (carol_session, carol) = session()?;
    let (b, c, rb, rc) = store.tx(|db| {
        let b = db.insert_contact(&contact("bob", &bob))?;
        let c = db.insert_contact(&contact("carol", &carol))?;
        db.put_session(b, &bob_session)?;
        db.put_session(c, &carol_session)?;
        let rb = db.insert_room(&room("bob", Some(b)))?;
        let rc = db.insert_room(&room("carol", Some(c)))?;
        db.insert_message(rb, &text(1, true, "for bob"))?;
        db.insert_message(rb, &text(2, false, "from bob"))?;
        db.insert_message(rc, &text(3, false, "from carol"))?;
        Ok((b, c, rb, rc))
    })?;
    assert_eq!(store.db().sessions()?.len(), 2);
    let raw = Connection::open(dir.0.join("store.db"))?;
    // Swaps the sealed blobs of two rows.
    let swap = |table: &str, key: &str, a: i64, b: i64| -> rusqlite::Result<()> {
        let get = |id: i64| -> rusqlite::Result<Vec<u8>> {
            raw.query_row(
                &format!("SELECT sealed FROM {table} WHERE {key} = ?1"),
                [id],
                |r| r.get(0),
            )
        };
        let (sa, sb) = (get(a)?, get(b)?);
        let put = format!("UPDATE {table} SET sealed = ?1 WHERE {key} = ?2");
        raw.execute(&put, params![sb, a])?;
        raw.execute(&put, params![sa, b])?;
        Ok(())
    };

    // Sessions swapped: texts meant for Carol would be sealed for Bob. Refused.
    swap("sessions", "contact", b, c)?;
    let err = store
        .db()
        .sessions()
        .err()
        .ok_or("swapped sessions opened")?;
    assert!(
        err.to_string().contains("sessions row does not open"),
        "{err}"
    );
    swap("sessions", "contact", b, c)?;
    assert_eq!(store.db().sessions()?.len(), 2);

    // Contacts swapped: Bob's name on Carol's keys. Refused.
    swap("contacts", "id", b, c)?;
    assert!(store.db().contacts().is_err());
    swap("contacts", "id", b, c)?;
    assert_eq!(store.db().contacts()?.len(), 2);

    // A message moved into Carol's room: it does not open there, and is gone from Bob's.
    raw.execute(
        "UPDATE messages SET room = (SELECT room FROM messages WHERE id = 3) WHERE id = 2",
        [],
    )?;
    let page = store.db().page(rc, None, 10)?;
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].1.body.text, "from carol");
    assert_eq!(page.damaged, 1);
    let page = store.db().page(rb, None, 10)?;
    assert_eq!(page.messages.len(), 1);
    assert!(page.messages[0].1.from_me);

    // Two messages of one room swapped (their order, or a direction): refused.
    raw.execute(
        "UPDATE messages SET room = (SELECT room FROM messages WHERE id = 1) WHERE id = 2",
        [],
    )?;
    swap("messages", "id", 1, 2)?;
    let page = store.db().page(rb, None, 10)?;
    assert_eq!((page.messages.len(), page.damaged), (0, 2));
    Ok(())
}

#[test]
fn what_the_rows_hold_is_nowhere_in_clear() -> TestResult {
    let dir = Scratch::new("clear");
    let (bob_session, bob) = session()?;
    let fingerprint = *bob.public().fingerprint().as_bytes();
    let mailbox = [0x5a; 32];
    let (invite, _) =
        Identity::generate().create_invite(&relay().to_string(), 3600, 1_800_000_000)?;
    let code = invite.encode();
    let expires_at = 4_012_345_678_u64;
    {
        let mut store = open_store(&dir)?;
        store.tx(|db| {
            let b = db.insert_contact(&contact("bob", &bob))?;
            db.put_session(b, &bob_session)?;
            db.insert_used_invite(&UsedInviteRecord {
                capability: [0x66; 32],
                answer_key: [0x67; 32],
                expires_at,
            })?;
            db.put_invite_check(
                b,
                &InviteCheckRecord {
                    code: code.clone(),
                    accepted_at: 1_800_000_000,
                    answer: vec![0x88; 80],
                },
            )?;
            let r = db.insert_room(&room("bob", Some(b)))?;
            let mut m = text(1, true, "hi");
            m.receipts.push(fingerprint);
            db.insert_message(r, &m)?;
            db.insert_outbox(
                &OutboxHead {
                    relay: relay(),
                    mailbox,
                    fanout: true,
                    dest: Some(Dest::Contact(b)),
                    uid: Some([1; 16]),
                },
                &[0x33; 64],
            )?;
            db.insert_part(&PartRecord {
                room: r,
                sender: fingerprint.to_vec(),
                msg_id: 9,
                idx: 0,
                part: Zeroizing::new(vec![0x44; 40]),
            })?;
            db.insert_inbox(&InboxRecord {
                origin: Origin::Group {
                    room: r,
                    member: hum_shared::crypto::MemberId::from_bytes(fingerprint),
                },
                payload: Zeroizing::new(vec![0x55; 40]),
            })?;
            db.insert_receipt_out(&ReceiptOut {
                dest: Dest::Contact(b),
                uid: [1; 16],
            })?;
            db.set_cursor(&mailbox, 1_700_000_000_123_456)
        })?;
        assert_eq!(store.db().cursor(&mailbox)?, 1_700_000_000_123_456);
        let used = store.db().used_invites()?;
        assert_eq!(used.len(), 1);
        assert_eq!(
            (used[0].1.capability, used[0].1.expires_at),
            ([0x66; 32], expires_at)
        );
        let checks = store.db().invite_checks()?;
        assert_eq!(checks.len(), 1);
        assert_eq!((checks[0].0, checks[0].1.code.as_str()), (1, code.as_str()));
    }
    for needle in [
        &fingerprint[..],
        &fingerprint[..8],
        b"relay.example.net",
        &mailbox[..],
        &1_700_000_000_123_456_u64.to_be_bytes(),
        &[0x33; 64],
        &[0x66; 32],
        &[0x67; 32],
        &[0x88; 80],
        &code.as_bytes()[..24],
        // The expiry as a clear integer column would hold it (six bytes, big-endian).
        &expires_at.to_be_bytes()[2..],
    ] {
        assert!(
            !dir.files_hold("store.db", needle),
            "the store holds {needle:02x?} in clear"
        );
    }
    Ok(())
}

#[test]
fn forgetting_a_contact_takes_its_rows_and_only_its() -> TestResult {
    let dir = Scratch::new("forget-contact");
    let mut store = open_store(&dir)?;
    let (bob_session, bob) = session()?;
    let (carol_session, carol) = session()?;
    let head = |dest: Option<Dest>| OutboxHead {
        relay: relay(),
        mailbox: [1; 32],
        fanout: false,
        dest,
        uid: None,
    };
    let check = InviteCheckRecord {
        code: "code".into(),
        accepted_at: 1,
        answer: vec![2; 40],
    };
    let (b, c) = store.tx(|db| {
        let b = db.insert_contact(&contact("bob", &bob))?;
        let c = db.insert_contact(&contact("carol", &carol))?;
        db.put_session(b, &bob_session)?;
        db.put_session(c, &carol_session)?;
        db.put_invite_check(b, &check)?;
        db.put_invite_check(c, &check)?;
        for d in [Some(Dest::Contact(b)), None, Some(Dest::Contact(c))] {
            db.insert_outbox(&head(d), &[3; 40])?;
        }
        for d in [Dest::Contact(b), Dest::Contact(c), Dest::Group(9)] {
            db.insert_receipt_out(&ReceiptOut {
                dest: d,
                uid: [4; 16],
            })?;
        }
        for o in [Origin::Contact(b), Origin::Contact(c)] {
            db.insert_inbox(&InboxRecord {
                origin: o,
                payload: Zeroizing::new(vec![5; 8]),
            })?;
        }
        Ok((b, c))
    })?;
    store.tx(|db| db.forget_contact(b))?;
    let db = store.db();
    let ids = |v: Vec<(i64, ContactRecord)>| v.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(ids(db.contacts()?), [c]);
    assert_eq!(
        db.sessions()?
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        [c]
    );
    assert_eq!(
        db.invite_checks()?
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        [c]
    );
    // The handshake (no contact) and Carol's envelope stay.
    let dests: Vec<Option<Dest>> = db.outbox()?.into_iter().map(|(_, h)| h.dest).collect();
    assert_eq!(dests, [None, Some(Dest::Contact(c))]);
    let receipts: Vec<Dest> = db
        .receipts_out(10)?
        .into_iter()
        .map(|(_, r)| r.dest)
        .collect();
    assert_eq!(receipts, [Dest::Contact(c), Dest::Group(9)]);
    let inbox: Vec<Origin> = db.inbox()?.into_iter().map(|(_, r)| r.origin).collect();
    assert_eq!(inbox, [Origin::Contact(c)]);
    Ok(())
}

// ----- schema 1 ----------------------------------------------------------------------

/// Schema 1 exactly as hum wrote it.
const V1_SQL: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE contacts (id INTEGER PRIMARY KEY, fingerprint BLOB NOT NULL UNIQUE,
    sealed BLOB NOT NULL);
CREATE TABLE sessions (contact INTEGER PRIMARY KEY REFERENCES contacts(id),
    sealed BLOB NOT NULL);
CREATE TABLE rooms (id INTEGER PRIMARY KEY, contact INTEGER UNIQUE REFERENCES contacts(id),
    sealed BLOB NOT NULL, unread INTEGER NOT NULL DEFAULT 0,
    mentions INTEGER NOT NULL DEFAULT 0);
CREATE TABLE invites (id INTEGER PRIMARY KEY, expires_at INTEGER NOT NULL,
    sealed BLOB NOT NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY, room INTEGER NOT NULL REFERENCES rooms(id),
    uid BLOB NOT NULL, from_me INTEGER NOT NULL, delivery INTEGER,
    receipts_needed INTEGER NOT NULL DEFAULT 0, sealed BLOB NOT NULL, UNIQUE (room, uid));
CREATE INDEX messages_by_room ON messages(room, id);
CREATE TABLE receipts (message INTEGER NOT NULL REFERENCES messages(id),
    member BLOB NOT NULL, PRIMARY KEY (message, member));
CREATE TABLE outbox (id INTEGER PRIMARY KEY, uid BLOB, relay TEXT NOT NULL,
    mailbox BLOB NOT NULL, fanout INTEGER NOT NULL, envelope BLOB NOT NULL,
    stored INTEGER NOT NULL DEFAULT 0, contact INTEGER, room INTEGER);
CREATE TABLE parts (room INTEGER NOT NULL, sender BLOB NOT NULL, msg_id INTEGER NOT NULL,
    idx INTEGER NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (room, sender, msg_id, idx));
CREATE TABLE receipts_out (id INTEGER PRIMARY KEY, contact INTEGER, room INTEGER,
    uid BLOB NOT NULL);
CREATE TABLE inbox (id INTEGER PRIMARY KEY, contact INTEGER, room INTEGER, member BLOB,
    sealed BLOB NOT NULL);
CREATE TABLE cursors (mailbox BLOB PRIMARY KEY, seq INTEGER NOT NULL);
";

/// Schema 1's room record, as it was encoded.
#[derive(Serialize)]
struct RoomV1 {
    name: String,
    group: Option<GroupV1>,
}

/// A history message as schema 1 sealed it before events were kept (no `event` flag).
#[derive(Serialize)]
struct MessageV1 {
    sender: String,
    text: String,
    sent_at: i64,
    uid: [u8; 16],
}

#[derive(Serialize)]
struct GroupV1 {
    id: [u8; 16],
    state: Vec<u8>,
    relay: String,
    admin: [u8; 32],
    members: Vec<MemberRecord>,
    closed: bool,
}

/// Writes a schema 1 store holding a row in every table; returns the needles that schema
/// 1 kept in clear: Bob's fingerprint, the relay, a mailbox.
fn write_v1(dir: &Scratch, key: &StoreKey) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let (s, bob) = session()?;
    let fp = *bob.public().fingerprint().as_bytes();
    let (_, invite) =
        Identity::generate().create_invite(&relay().to_string(), 3600, 4_000_000_000)?;
    let group = hum_shared::crypto::GroupState::create();
    let mailbox = [0x6b; 32];
    let c = Connection::open(dir.0.join("store.db"))?;
    c.execute_batch(V1_SQL)?;
    let seal1 = |p: &[u8], kind: &str| key.seal(p, kind.as_bytes());
    let v1_enc = |v: &dyn erased::Enc| v.enc();
    c.execute(
        "INSERT INTO meta VALUES ('schema', ?1)",
        [&1_i64.to_be_bytes()[..]],
    )?;
    c.execute(
        "INSERT INTO contacts VALUES (1, ?1, ?2)",
        params![&fp[..], seal1(&v1_enc(&contact("bob", &bob))?, "contact")?],
    )?;
    c.execute(
        "INSERT INTO sessions VALUES (1, ?1)",
        [seal1(&s.to_bytes()?, "session")?],
    )?;
    let direct = RoomV1 {
        name: "bob".into(),
        group: None,
    };
    let grp = RoomV1 {
        name: "friends".into(),
        group: Some(GroupV1 {
            id: *group.group_id().as_bytes(),
            state: group.to_bytes()?.to_vec(),
            relay: relay().to_string(),
            admin: [1; 32],
            members: vec![MemberRecord {
                identity: bob.public().to_bytes().to_vec(),
                fingerprint: Fingerprint::from_bytes(fp),
                name: "bob".into(),
                senders: vec![hum_shared::crypto::MemberId::from_bytes([2; 32])],
            }],
            closed: false,
        }),
    };
    c.execute(
        "INSERT INTO rooms VALUES (1, 1, ?1, 2, 1)",
        [seal1(&v1_enc(&direct)?, "room")?],
    )?;
    c.execute(
        "INSERT INTO rooms VALUES (2, NULL, ?1, 0, 0)",
        [seal1(&v1_enc(&grp)?, "room")?],
    )?;
    c.execute(
        "INSERT INTO invites VALUES (5, 4000003600, ?1)",
        [seal1(&invite.to_bytes(), "invite")?],
    )?;
    for (id, room, uid, from_me, delivery, needed, txt) in [
        (1, 1, 1_u8, 1, Some(2), 1, "to bob"),
        (2, 1, 2, 0, None, 0, "from bob"),
        (3, 2, 3, 1, Some(1), 1, "to friends"),
    ] {
        let body = MessageV1 {
            sender: "x".into(),
            text: txt.into(),
            sent_at: 5,
            uid: [uid; 16],
        };
        c.execute(
            "INSERT INTO messages VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                room,
                &[uid; 16][..],
                from_me,
                delivery,
                needed,
                seal1(&v1_enc(&body)?, "message")?
            ],
        )?;
    }
    c.execute("INSERT INTO receipts VALUES (1, ?1)", [&fp[..]])?;
    c.execute(
        "INSERT INTO outbox VALUES (4, ?1, ?2, ?3, 1, ?4, 1, NULL, 2)",
        params![
            &[3_u8; 16][..],
            relay().to_string(),
            &mailbox[..],
            &[0x77_u8; 64][..]
        ],
    )?;
    c.execute(
        "INSERT INTO parts VALUES (2, ?1, 11, 0, ?2)",
        params![&[2_u8; 32][..], seal1(&[0x44; 40], "part")?],
    )?;
    c.execute(
        "INSERT INTO receipts_out VALUES (1, NULL, 2, ?1)",
        [&[2_u8; 16][..]],
    )?;
    c.execute(
        "INSERT INTO inbox VALUES (1, 1, NULL, NULL, ?1)",
        [seal1(&[0x55; 40], "inbox")?],
    )?;
    c.execute(
        "INSERT INTO cursors VALUES (?1, 1700000000123456)",
        [&mailbox[..]],
    )?;
    Ok(vec![
        fp.to_vec(),
        b"relay.example.net".to_vec(),
        mailbox.to_vec(),
    ])
}

/// The tables a later schema 1 hum added, exactly as it wrote them.
const V1_LATER_SQL: &str = "
CREATE TABLE IF NOT EXISTS used_invites (
    id INTEGER PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS invite_checks (
    contact INTEGER PRIMARY KEY REFERENCES contacts(id),
    sealed BLOB NOT NULL
);
";

/// A used invite as a later schema 1 hum sealed it (the expiry was a clear column).
#[derive(Serialize)]
struct UsedInviteV1 {
    capability: [u8; 32],
    answer_key: [u8; 32],
}

/// The expiry of the used invite [`write_v1_later`] writes.
const USED_EXPIRES_AT: i64 = 4_012_345_678;

/// Adds to the store of [`write_v1`] what a later schema 1 hum wrote: a used invite, an
/// invite watched for Bob, and two messages with the `event` flag (one an event). Returns
/// the needle that schema kept in clear: the used invite's expiry.
fn write_v1_later(
    dir: &Scratch,
    key: &StoreKey,
) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let c = Connection::open(dir.0.join("store.db"))?;
    c.execute_batch(V1_LATER_SQL)?;
    let seal1 = |p: &[u8], kind: &str| key.seal(p, kind.as_bytes());
    let used = postcard::to_stdvec(&UsedInviteV1 {
        capability: [0x61; 32],
        answer_key: [0x62; 32],
    })?;
    c.execute(
        "INSERT INTO used_invites VALUES (3, ?1, ?2)",
        params![USED_EXPIRES_AT, seal1(&used, "used invite")?],
    )?;
    let check = postcard::to_stdvec(&InviteCheckRecord {
        code: "the-code".into(),
        accepted_at: 1_800_000_000,
        answer: vec![0x63; 80],
    })?;
    c.execute(
        "INSERT INTO invite_checks VALUES (1, ?1)",
        [seal1(&check, "invite check")?],
    )?;
    for (id, uid, event, txt) in [
        (4, 4_u8, true, "bob renamed the group"),
        (5, 5, false, "a text after the rename"),
    ] {
        let body = StoredMessage {
            sender: "bob".into(),
            text: txt.into(),
            sent_at: 6,
            uid: [uid; 16],
            event,
        };
        c.execute(
            "INSERT INTO messages VALUES (?1, 2, ?2, 0, NULL, 0, ?3)",
            params![
                id,
                &[uid; 16][..],
                seal1(&postcard::to_stdvec(&body)?, "message")?
            ],
        )?;
    }
    Ok(vec![USED_EXPIRES_AT.to_be_bytes()[2..].to_vec()])
}

/// Postcard encoding behind a trait object, for the test's v1 records.
mod erased {
    pub(super) trait Enc {
        fn enc(&self) -> Result<Vec<u8>, postcard::Error>;
    }
    impl<T: serde::Serialize> Enc for T {
        fn enc(&self) -> Result<Vec<u8>, postcard::Error> {
            postcard::to_stdvec(self)
        }
    }
}

#[test]
fn a_schema_1_store_migrates_every_table_and_leaves_nothing_in_clear() -> TestResult {
    let dir = Scratch::new("v1");
    let key = key()?;
    let needles = write_v1(&dir, &key)?;
    for n in &needles {
        assert!(dir.files_hold("store.db", n), "the search misses {n:02x?}");
    }
    let mut store = open_store(&dir)?;
    assert_schema_2(&store.conn)?;
    assert!(store.db().used_invites()?.is_empty());
    assert!(store.db().invite_checks()?.is_empty());
    let db = store.db();
    let contacts = db.contacts()?;
    assert_eq!(contacts.len(), 1);
    assert_eq!((contacts[0].0, contacts[0].1.name.as_str()), (1, "bob"));
    assert_eq!(db.sessions()?.len(), 1);
    let rooms = db.rooms()?;
    assert_eq!(rooms.len(), 2);
    assert_eq!(
        (rooms[0].1.contact, rooms[0].1.unread, rooms[0].1.mentions),
        (Some(1), 2, 1)
    );
    let g = rooms[1].1.group.as_ref().ok_or("no group")?;
    assert_eq!((g.members.len(), g.closed), (1, false));
    assert_eq!(g.state.generation(), 0);
    assert_eq!(db.invites()?.len(), 1);
    let page = db.page(1, None, 10)?;
    assert_eq!(page.damaged, 0);
    let texts: Vec<(&str, bool, Option<DeliveryState>, usize)> = page
        .messages
        .iter()
        .map(|(_, m)| {
            (
                m.body.text.as_str(),
                m.from_me,
                m.delivery,
                m.receipts.len(),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [
            ("from bob", false, None, 0),
            ("to bob", true, Some(DeliveryState::Delivered), 1)
        ]
    );
    let (id, m) = db.message_by_uid(2, &[3; 16])?.ok_or("no group text")?;
    assert_eq!(
        (id, m.delivery, m.receipts_needed),
        (3, Some(DeliveryState::Sent), 1)
    );
    let outbox = db.outbox()?;
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].0, 4);
    assert_eq!(outbox[0].1.dest, Some(Dest::Group(2)));
    assert_eq!(outbox[0].1.uid, Some([3; 16]));
    assert_eq!(db.outbox_ids_of(&[3; 16])?, [4]);
    let (_, env) = db.outbox_entry(4)?.ok_or("no envelope")?;
    assert_eq!(env, [0x77; 64]);
    let parts = db.parts()?;
    assert_eq!(
        (
            parts.len(),
            parts[0].room,
            parts[0].msg_id,
            &parts[0].part[..]
        ),
        (1, 2, 11, &[0x44_u8; 40][..])
    );
    let receipts = db.receipts_out(10)?;
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].1.dest, Dest::Group(2));
    let inbox = db.inbox()?;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].1.origin, Origin::Contact(1));
    assert_eq!(db.cursor(&[0x6b; 32])?, 1_700_000_000_123_456);
    // New rows go after the migrated ones.
    let id = store.tx(|db| db.insert_message(1, &text(9, false, "later")))?;
    assert_eq!(id, Some(4));
    drop(store);
    for n in &needles {
        assert!(
            !dir.files_hold("store.db", n),
            "the migrated store still holds {n:02x?}"
        );
    }
    Ok(())
}

#[test]
fn a_later_schema_1_store_migrates_used_invites_watched_invites_and_events() -> TestResult {
    let dir = Scratch::new("v1-later");
    let key = key()?;
    let mut needles = write_v1(&dir, &key)?;
    needles.extend(write_v1_later(&dir, &key)?);
    for n in &needles {
        assert!(dir.files_hold("store.db", n), "the search misses {n:02x?}");
    }
    let store = open_store(&dir)?;
    assert_schema_2(&store.conn)?;
    let db = store.db();
    let used = db.used_invites()?;
    assert_eq!(used.len(), 1);
    let (id, rec) = &used[0];
    assert_eq!(
        (*id, rec.capability, rec.answer_key, rec.expires_at),
        (3, [0x61; 32], [0x62; 32], 4_012_345_678)
    );
    let checks = db.invite_checks()?;
    assert_eq!(checks.len(), 1);
    let (cid, rec) = &checks[0];
    assert_eq!(
        (*cid, rec.code.as_str(), rec.accepted_at, &rec.answer[..]),
        (1, "the-code", 1_800_000_000, &[0x63_u8; 80][..])
    );
    // Messages of both layouts, the event flag kept: newest first.
    let page = db.page(2, None, 10)?;
    assert_eq!(page.damaged, 0);
    let got: Vec<(&str, bool)> = page
        .messages
        .iter()
        .map(|(_, m)| (m.body.text.as_str(), m.body.event))
        .collect();
    assert_eq!(
        got,
        [
            ("a text after the rename", false),
            ("bob renamed the group", true),
            ("to friends", false)
        ]
    );
    drop(store);
    for n in &needles {
        assert!(
            !dir.files_hold("store.db", n),
            "the migrated store still holds {n:02x?}"
        );
    }
    Ok(())
}

#[test]
fn a_later_schema_1_row_that_does_not_open_stops_the_migration() -> TestResult {
    let dir = Scratch::new("v1-later-damaged");
    let key = key()?;
    write_v1(&dir, &key)?;
    write_v1_later(&dir, &key)?;
    let raw = Connection::open(dir.0.join("store.db"))?;
    // Sealed for another row kind: it does not open as a used invite.
    raw.execute(
        "UPDATE used_invites SET sealed = (SELECT sealed FROM invite_checks) WHERE id = 3",
        [],
    )?;
    let err = open_store(&dir).err().ok_or("a damaged store migrated")?;
    assert!(
        err.to_string().contains("used invite row of the old store"),
        "{err}"
    );
    assert_eq!(schema_of(&raw)?, Some(1));
    let n: i64 = raw.query_row("SELECT COUNT(*) FROM used_invites", [], |r| r.get(0))?;
    assert_eq!(n, 1);
    Ok(())
}

#[test]
fn a_schema_1_row_that_does_not_open_stops_the_migration_and_loses_nothing() -> TestResult {
    let dir = Scratch::new("v1-damaged");
    let key = key()?;
    write_v1(&dir, &key)?;
    let raw = Connection::open(dir.0.join("store.db"))?;
    raw.execute(
        "UPDATE messages SET sealed = x'00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677' WHERE id = 2",
        [],
    )?;
    let err = open_store(&dir).err().ok_or("a damaged store migrated")?;
    assert!(
        err.to_string().contains("message row of the old store"),
        "{err}"
    );
    // Still schema 1, every table as it was.
    assert_eq!(schema_of(&raw)?, Some(1));
    let n: i64 = raw.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?;
    assert_eq!(n, 3);
    let n: i64 = raw.query_row("SELECT COUNT(*) FROM receipts", [], |r| r.get(0))?;
    assert_eq!(n, 1);
    Ok(())
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_error() -> TestResult {
    let dir = Scratch::new("v9");
    drop(open_store(&dir)?);
    let raw = Connection::open(dir.0.join("store.db"))?;
    set_meta(&raw, "schema", &9_i64.to_be_bytes())?;
    let err = open_store(&dir).err().ok_or("a newer store opened")?;
    assert!(err.to_string().contains("newer hum"), "{err}");
    Ok(())
}

#[test]
fn a_room_record_comes_back_as_written() -> TestResult {
    // The room record (group state included) comes back as written.
    let dir = Scratch::new("room");
    let mut store = open_store(&dir)?;
    let group = hum_shared::crypto::GroupState::create();
    let rec = RoomRecord {
        name: "g".into(),
        group: Some(GroupRecord {
            id: group.group_id(),
            state: group.clone(),
            relay: relay(),
            admin: Fingerprint::from_bytes([9; 32]),
            members: Vec::new(),
            closed: true,
        }),
        contact: None,
        unread: 3,
        mentions: 2,
    };
    let id = store.tx(|db| db.insert_room(&rec))?;
    let rooms = store.db().rooms()?;
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].0, id);
    let got = &rooms[0].1;
    assert_eq!((got.unread, got.mentions, got.contact), (3, 2, None));
    let g = got.group.as_ref().ok_or("no group")?;
    assert_eq!(
        (g.admin, g.closed, &g.state.to_bytes()?[..]),
        (
            Fingerprint::from_bytes([9; 32]),
            true,
            &group.to_bytes()?[..]
        )
    );
    Ok(())
}

/// Every row a store holds, opened: what the `stored_rows` fuzz target is fed as
/// arbitrary bytes must cover it. Each table's plaintext decodes as that table's record
/// in the fuzz entry point (a new table or record left out of it fails here).
#[test]
fn the_stored_rows_fuzz_target_decodes_every_row_the_store_holds() -> TestResult {
    let dir = Scratch::new("fuzz-rows");
    let (bob_session, bob) = session()?;
    let fingerprint = *bob.public().fingerprint().as_bytes();
    let (invite, secret) =
        Identity::generate().create_invite(&relay().to_string(), 3600, 1_800_000_000)?;
    let group = hum_shared::crypto::GroupState::create();
    let mailbox = [0x5a; 32];
    let mut store = open_store(&dir)?;
    let r = store.tx(|db| {
        let b = db.insert_contact(&contact("bob", &bob))?;
        db.put_session(b, &bob_session)?;
        db.insert_invite(&secret)?;
        db.insert_used_invite(&UsedInviteRecord {
            capability: [0x66; 32],
            answer_key: [0x67; 32],
            expires_at: 4_000_000_000,
        })?;
        db.put_invite_check(
            b,
            &InviteCheckRecord {
                code: invite.encode(),
                accepted_at: 1_800_000_000,
                answer: vec![0x88; 80],
            },
        )?;
        let r = db.insert_room(&RoomRecord {
            group: Some(GroupRecord {
                id: group.group_id(),
                state: group.clone(),
                relay: relay(),
                admin: Fingerprint::from_bytes(fingerprint),
                members: vec![MemberRecord {
                    identity: bob.public().to_bytes().to_vec(),
                    fingerprint: Fingerprint::from_bytes(fingerprint),
                    name: "bob".into(),
                    senders: vec![hum_shared::crypto::MemberId::from_bytes([3; 32])],
                }],
                closed: false,
            }),
            ..room("friends", None)
        })?;
        db.insert_message(r, &text(1, true, "hi"))?;
        let kept = db.insert_outbox(
            &OutboxHead {
                relay: relay(),
                mailbox,
                fanout: true,
                dest: Some(Dest::Group(r)),
                uid: Some([1; 16]),
            },
            group
                .clone()
                .seal(b"hi")
                .map_err(EngineError::from)?
                .as_bytes(),
        )?;
        db.insert_part(&PartRecord {
            room: r,
            sender: fingerprint.to_vec(),
            msg_id: 9,
            idx: 0,
            part: Zeroizing::new(vec![0x44; 40]),
        })?;
        db.insert_inbox(&InboxRecord {
            origin: Origin::Contact(b),
            payload: Zeroizing::new(vec![0x55; 40]),
        })?;
        db.insert_receipt_out(&ReceiptOut {
            dest: Dest::Contact(b),
            uid: [1; 16],
        })?;
        db.set_cursor(&mailbox, 1_700_000_000_123_456)?;
        db.keep_outbox(kept, 1_900_000_000)?;
        db.put_home(
            &Fingerprint::from_bytes(fingerprint),
            &HomeRecord::new(
                "hum://h:1#0000000000000000000000000000000000000000000000000000000000000000"
                    .parse()
                    .map_err(|_| EngineError::NoRelay)?,
                &hum_shared::route::DeliverySecret::from_bytes([0x66; 32]),
            ),
        )?;
        Ok(r)
    })?;
    /// Table, row id column, sealed column, what binds it, owner, the record it holds.
    type Fed<'a> = (&'a str, &'a str, &'a str, Table, &'a [u8], &'a str);
    let tables: [Fed<'_>; 15] = [
        ("contacts", "id", "sealed", Table::Contacts, &[], "contact"),
        (
            "sessions",
            "contact",
            "sealed",
            Table::Sessions,
            &[],
            "session",
        ),
        ("rooms", "id", "sealed", Table::Rooms, &[], "room"),
        (
            "invites",
            "id",
            "sealed",
            Table::Invites,
            &[],
            "invite secret",
        ),
        (
            "messages",
            "id",
            "sealed",
            Table::Messages,
            &r.to_be_bytes(),
            "message",
        ),
        (
            "outbox",
            "id",
            "head",
            Table::OutboxHead,
            &[],
            "outbox head",
        ),
        (
            "outbox",
            "id",
            "envelope",
            Table::OutboxEnvelope,
            &[],
            "envelope",
        ),
        ("parts", "id", "sealed", Table::Parts, &[], "part"),
        (
            "receipts_out",
            "id",
            "sealed",
            Table::ReceiptsOut,
            &[],
            "receipt",
        ),
        ("inbox", "id", "sealed", Table::Inbox, &[], "inbox"),
        (
            "cursors",
            "mailbox",
            "sealed",
            Table::Cursors,
            &[],
            "cursor",
        ),
        (
            "used_invites",
            "id",
            "sealed",
            Table::UsedInvites,
            &[],
            "used invite",
        ),
        (
            "invite_checks",
            "contact",
            "sealed",
            Table::InviteChecks,
            &[],
            "invite check",
        ),
        ("homes", "person", "sealed", Table::Homes, &[], "home"),
        (
            "outbox_kept",
            "id",
            "sealed",
            Table::OutboxKept,
            &[],
            "kept until",
        ),
    ];
    let d = store.db();
    let mut room = None;
    for (name, id, sealed, table, owner, record) in tables {
        let rows = rows(
            d.conn,
            &format!("SELECT {id}, {sealed} FROM {name}"),
            [],
            |row| {
                // Row ids are bound as 8 big-endian bytes, the cursor's as its tag.
                let id = match row.get_ref(0)? {
                    rusqlite::types::ValueRef::Integer(i) => i.to_be_bytes().to_vec(),
                    v => v.as_blob()?.to_vec(),
                };
                Ok((id, row.get::<_, Vec<u8>>(1)?))
            },
        )?;
        assert_eq!(rows.len(), 1, "{name}: one row");
        let plain = d.open(table, &rows[0].0, owner, &rows[0].1)?;
        let decoded = crate::engine::fuzzing::stored_rows(&plain);
        assert!(
            decoded.contains(&record),
            "the {name} row decodes as {decoded:?}"
        );
        if table == Table::Rooms {
            room = Some(dec::<RoomRecord>(&plain, table)?);
        }
    }
    // Every table of schema 2 was fed; the meta table's sealed values are the profile's.
    let mut fed: Vec<&str> = tables.iter().map(|t| t.0).collect();
    fed.dedup();
    let mut want: Vec<&str> = SCHEMA_2
        .iter()
        .map(|t| t.0)
        .filter(|t| *t != "meta")
        .collect();
    fed.sort_unstable();
    want.sort_unstable();
    assert_eq!(fed, want);
    for (meta, record) in [
        (Identity::generate().to_bytes(), "identity"),
        (
            Zeroizing::new(StoreKey::generate().wrap(
                b"pw",
                &KdfParams::INSECURE_FAST,
                hum_shared::crypto::KdfPolicy::InsecureForTests,
            )?),
            "key slot",
        ),
    ] {
        assert!(crate::engine::fuzzing::stored_rows(&meta).contains(&record));
    }
    // The room's group state, as the engine reads it out of the room.
    let room = room.ok_or("no room")?;
    let state = room.group.as_ref().ok_or("no group")?.state.to_bytes()?;
    assert!(crate::engine::fuzzing::stored_rows(&state).contains(&"group state"));
    Ok(())
}

#[test]
fn adding_and_renaming_a_contact_writes_its_contact_session_and_room_together() -> TestResult {
    let dir = Scratch::new("add-contact");
    let mut store = open_store(&dir)?;
    let (bob_session, bob) = session()?;
    let rec = contact("bob", &bob);
    let added = store.tx(|db| {
        db.add_contact(&NewContact {
            contact: &rec,
            session: &bob_session,
            room: &room("bob", None),
        })
    })?;
    assert_eq!(added.room_record.contact, Some(added.contact));
    let rooms = store.db().rooms()?;
    assert_eq!(rooms.len(), 1);
    assert_eq!(
        (rooms[0].0, rooms[0].1.contact),
        (added.room, Some(added.contact))
    );
    let sessions = store.db().sessions()?;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].0, added.contact);
    // A failing transaction leaves neither half behind.
    let failed: Result<(), EngineError> = store.tx(|db| {
        db.add_contact(&NewContact {
            contact: &contact("carol", &bob),
            session: &bob_session,
            room: &room("carol", None),
        })?;
        Err(Inconsistency::NotInserted.into())
    });
    assert!(failed.is_err());
    assert_eq!(store.db().contacts()?.len(), 1);
    assert_eq!(store.db().rooms()?.len(), 1);

    let mut renamed = rec.clone();
    renamed.name = "robert".into();
    let mut renamed_room = added.room_record.clone();
    renamed_room.name = "robert".into();
    store.tx(|db| {
        db.rename_contact(&RenamedContact {
            contact: added.contact,
            record: &renamed,
            room: added.room,
            room_record: &renamed_room,
        })
    })?;
    assert_eq!(store.db().contacts()?[0].1.name, "robert");
    assert_eq!(store.db().rooms()?[0].1.name, "robert");
    Ok(())
}

/// Where a person receives is kept sealed under a keyed tag of their fingerprint: read
/// back for that person only, nothing of it in clear, and a row swapped with another
/// person's does not open.
#[test]
fn homes_are_sealed_per_person() -> TestResult {
    let dir = Scratch::new("homes");
    let mut store = open_store(&dir)?;
    let bob = Identity::generate().fingerprint();
    let carol = Identity::generate().fingerprint();
    let relay: hum_shared::RelayAddr =
        "hum://127.0.0.1:7667#0000000000000000000000000000000000000000000000000000000000000000"
            .parse()?;
    let bobs = HomeRecord::new(
        relay.clone(),
        &hum_shared::route::DeliverySecret::from_bytes([0xb0; 32]),
    );
    let carols = HomeRecord::new(
        relay,
        &hum_shared::route::DeliverySecret::from_bytes([0xca; 32]),
    );
    store.tx(|db| {
        db.put_home(&bob, &bobs)?;
        db.put_home(&carol, &carols)
    })?;
    assert_eq!(store.db().home(&bob)?, Some(bobs.clone()));
    assert_eq!(store.db().home(&carol)?, Some(carols));
    let raw = Connection::open(dir.0.join("store.db"))?;
    let rows: Vec<(Vec<u8>, Vec<u8>)> = {
        let mut st = raw.prepare("SELECT person, sealed FROM homes")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    assert_eq!(rows.len(), 2);
    for (person, sealed) in &rows {
        assert_ne!(&person[..], bob.as_bytes());
        assert!(
            !sealed
                .windows(32)
                .any(|w| w == [0xb0; 32] || w == [0xca; 32])
        );
    }
    // Bob's sealed row under Carol's tag does not open.
    let (first, second) = (&rows[0], &rows[1]);
    raw.execute(
        "UPDATE homes SET sealed = ?1 WHERE person = ?2",
        params![first.1, second.0],
    )?;
    let refused = [bob, carol]
        .iter()
        .filter(|p| store.db().home(p).is_err())
        .count();
    assert_eq!(refused, 1, "a home moved to another person opened");
    store.tx(|db| db.delete_home(&bob))?;
    assert_eq!(store.db().home(&bob)?, None);
    Ok(())
}

/// The route session's state is kept sealed in the meta table: a fresh store has a fresh
/// one, a saved one reads back as saved, and its bytes are nowhere in clear.
#[test]
fn the_route_state_is_kept_sealed() -> TestResult {
    let dir = Scratch::new("route-state");
    let mut store = open_store(&dir)?;
    let fresh = store.db().route_state()?;
    assert_eq!(fresh.last_epoch(), None);
    let mut state = SessionState::new();
    state.set_last_epoch(0x5eed_5eed);
    store.tx(|db| db.put_route_state(&state))?;
    assert_eq!(store.db().route_state()?.last_epoch(), Some(0x5eed_5eed));
    let raw = Connection::open(dir.0.join("store.db"))?;
    let value: Vec<u8> = raw.query_row(
        "SELECT value FROM meta WHERE key = 'route state'",
        [],
        |r| r.get(0),
    )?;
    assert!(
        !value
            .windows(4)
            .any(|w| w == 0x5eed_5eed_u32.to_be_bytes() || w == 0x5eed_5eed_u32.to_le_bytes())
    );
    // Damaged, it says so instead of starting over (a fresh state would reuse counters).
    raw.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'route state'",
        [&value[..value.len() - 1]],
    )?;
    assert!(store.db().route_state().is_err());
    Ok(())
}
