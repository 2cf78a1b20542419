//! The client's store: one SQLite file per profile, written in transactions
//! (docs/PROTOCOL.md §6).
//!
//! Every row is sealed as a whole with the profile's [`StoreKey`], bound to its table, its
//! row id and its owner as associated data, so a row moved, swapped or copied with raw SQL
//! does not open. The columns hold row ids, sealed blobs and keyed tags (keyed hashes, see
//! [`StoreKey::tag`]) where an index is needed, nothing else: no fingerprint, relay,
//! mailbox, direction, delivery state or time is in clear. Every statement lives here, in
//! named functions that take and return records; the engine decides, this module persists.
//!
//! The store runs with `synchronous=FULL` in WAL mode, so a committed transaction survives
//! a crash at any instant, and with `secure_delete=ON`: replaced and deleted rows (used
//! invite prekeys, old ratchet and sender-key states) are overwritten with zeros, and the
//! engine truncates the WAL shortly after every change (see [`ProfileStore::checkpoint_due`]).

use std::path::Path;
use std::time::{Duration, Instant};

use hum_shared::crypto::{Fingerprint, InviteSecret, Session, StoreKey};
use hum_shared::route::session::SessionState;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::lock::ProfileLock;
use super::records::{
    ContactRecord, Dest, HomeRecord, InboxRecord, InviteCheckRecord, MessageRecord, Origin,
    OutboxHead, PartRecord, ReceiptOut, RoomRecord, UsedInviteRecord,
};
use super::wire::Uid;
use super::{EngineError, Inconsistency, StoreError};

mod migrate;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use migrate::fuzz_v1_rows;

/// Schema version written in `meta.schema`: 1 had metadata in plaintext columns, 2 seals
/// every row whole.
pub(super) const SCHEMA: i64 = 2;

/// The clear key-value table: schema version, the passphrase key slot (in a store made
/// before key slots: salt and KDF parameters), and the sealed check value, identity and
/// name.
const META_SQL: &str = "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);";

/// The sealed rows: ids, keyed tags and sealed blobs only.
const ROWS_SQL: &str = "
CREATE TABLE contacts (id INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE sessions (contact INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE rooms (id INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE invites (id INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    room BLOB NOT NULL,
    uid BLOB NOT NULL,
    sealed BLOB NOT NULL,
    UNIQUE (room, uid)
);
CREATE INDEX messages_by_room ON messages(room, id);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid BLOB,
    head BLOB NOT NULL,
    envelope BLOB NOT NULL
);
CREATE INDEX outbox_by_uid ON outbox(uid);
CREATE TABLE parts (
    id INTEGER PRIMARY KEY,
    msg BLOB NOT NULL,
    part BLOB NOT NULL UNIQUE,
    sealed BLOB NOT NULL
);
CREATE INDEX parts_by_msg ON parts(msg);
CREATE TABLE receipts_out (id INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE inbox (id INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE cursors (mailbox BLOB PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE used_invites (id INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE invite_checks (contact INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
";

/// Where people receive on hum/2, by a keyed tag of their identity fingerprint; and the
/// outbox rows kept after every relay stored them (a group text, kept until the relays
/// would have dropped it, to deposit again should one of them restart), with that time
/// sealed. Made at open when missing, so a store of schema 2 from before hum/2 gains it without a
/// migration (an older hum ignores it).
const HOMES_SQL: &str =
    "CREATE TABLE IF NOT EXISTS homes (person BLOB PRIMARY KEY, sealed BLOB NOT NULL);
     CREATE TABLE IF NOT EXISTS outbox_kept (id INTEGER PRIMARY KEY, sealed BLOB NOT NULL);";

/// The tables whose rows are sealed, as their associated data names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Contacts,
    Sessions,
    Rooms,
    Invites,
    Messages,
    OutboxHead,
    OutboxEnvelope,
    Parts,
    ReceiptsOut,
    Inbox,
    Cursors,
    UsedInvites,
    InviteChecks,
    Homes,
    OutboxKept,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Sessions => "sessions",
            Self::Rooms => "rooms",
            Self::Invites => "invites",
            Self::Messages => "messages",
            Self::OutboxHead => "outbox",
            Self::OutboxEnvelope => "outbox envelope",
            Self::Parts => "parts",
            Self::ReceiptsOut => "receipts_out",
            Self::Inbox => "inbox",
            Self::Cursors => "cursors",
            Self::UsedInvites => "used_invites",
            Self::InviteChecks => "invite_checks",
            Self::Homes => "homes",
            Self::OutboxKept => "outbox kept",
        }
    }
}

/// The labels of the keyed tags; one per indexed column, so equal values in two columns
/// do not give equal tags (an outbox row cannot be joined to its history row).
mod label {
    pub(super) const ROOM: &[u8] = b"message room";
    pub(super) const MESSAGE_UID: &[u8] = b"message uid";
    pub(super) const OUTBOX_UID: &[u8] = b"outbox uid";
    pub(super) const PART_MESSAGE: &[u8] = b"part message";
    pub(super) const PART: &[u8] = b"part";
    pub(super) const CURSOR: &[u8] = b"cursor mailbox";
    pub(super) const HOME: &[u8] = b"home person";
}

/// The associated data of a sealed row: table, row id and owner.
fn row_aad(table: Table, id: &[u8], owner: &[u8]) -> Vec<u8> {
    let name = table.name().as_bytes();
    let mut aad = Vec::with_capacity(16 + name.len() + id.len() + owner.len());
    aad.extend_from_slice(b"hum/1 store 2\0");
    aad.extend_from_slice(name);
    aad.push(0);
    aad.extend_from_slice(id);
    aad.push(0);
    aad.extend_from_slice(owner);
    aad
}

fn db(e: rusqlite::Error) -> EngineError {
    EngineError::from(e)
}

fn enc<T: Serialize>(v: &T) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    postcard::to_stdvec(v)
        .map(Zeroizing::new)
        .map_err(|_| EngineError::Encode)
}

fn dec<T: DeserializeOwned>(b: &[u8], table: Table) -> Result<T, EngineError> {
    postcard::from_bytes(b).map_err(|_| StoreError::RowDoesNotDecode(table.name()).into())
}

/// Reads every row of `sql`, each made into a value by `f`.
fn rows<T>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, EngineError> {
    let mut st = c.prepare_cached(sql).map_err(db)?;
    let rows = st.query_map(p, f).map_err(db)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db)
}

/// Reads every row of `sql` as (integer id, blob).
fn id_blobs(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<(i64, Vec<u8>)>, EngineError> {
    rows(c, sql, p, |r| Ok((r.get(0)?, r.get(1)?)))
}

/// Reads the schema version, or `None` for a file that has no store yet.
fn schema_of(conn: &Connection) -> Result<Option<i64>, EngineError> {
    let has_meta: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    if !has_meta {
        return Ok(None);
    }
    let v: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db)?;
    let v = v.ok_or(StoreError::Missing("schema version"))?;
    let v = <[u8; 8]>::try_from(v.as_slice()).map_err(|_| StoreError::Missing("schema version"))?;
    Ok(Some(i64::from_be_bytes(v)))
}

/// An opened store file whose key is not known yet: only its clear `meta` values (key
/// slot, sealed check value) can be read and written.
pub(crate) struct StoreFile {
    conn: Connection,
    schema: i64,
    lock: ProfileLock,
}

impl std::fmt::Debug for StoreFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreFile(..)")
    }
}

impl StoreFile {
    /// Opens (creating if needed) the store file at `path`, under the profile's `lock`.
    ///
    /// # Errors
    /// [`EngineError::Store`] when it cannot be opened or was written by a newer hum.
    pub(crate) fn open(path: &Path, lock: ProfileLock) -> Result<Self, EngineError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        // Deleted and replaced content is overwritten with zeros, not left in free space.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(db)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(db)?;
        let schema = match schema_of(&conn)? {
            Some(v) => v,
            None => {
                let tx = conn.unchecked_transaction().map_err(db)?;
                tx.execute_batch(META_SQL).map_err(db)?;
                tx.execute_batch(ROWS_SQL).map_err(db)?;
                set_meta(&tx, "schema", &SCHEMA.to_be_bytes())?;
                tx.commit().map_err(db)?;
                SCHEMA
            }
        };
        if !(1..=SCHEMA).contains(&schema) {
            return Err(StoreError::TooNew(schema).into());
        }
        if schema == SCHEMA {
            conn.execute_batch(HOMES_SQL).map_err(db)?;
        }
        Ok(Self { conn, schema, lock })
    }

    /// A clear meta value.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, EngineError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(db)
    }

    /// Writes a meta value.
    #[cfg(test)]
    pub(crate) fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), EngineError> {
        set_meta(&self.conn, key, value)
    }

    /// Writes several meta values in one transaction: all of them or none.
    pub(crate) fn set_metas(&mut self, values: &[(&str, &[u8])]) -> Result<(), EngineError> {
        let tx = self.conn.transaction().map_err(db)?;
        for (key, value) in values {
            set_meta(&tx, key, value)?;
        }
        tx.commit().map_err(db)
    }

    /// Replaces the salt and KDF parameters of a store made before key slots with its key
    /// slot, in one transaction: the store opens either the old way or the new, never
    /// neither.
    pub(crate) fn replace_legacy_kdf(&mut self, slot: &[u8]) -> Result<(), EngineError> {
        let tx = self.conn.transaction().map_err(db)?;
        set_meta(&tx, "key", slot)?;
        tx.execute("DELETE FROM meta WHERE key IN ('salt', 'kdf')", [])
            .map_err(db)?;
        tx.commit().map_err(db)
    }

    /// With the key known: migrates an older store to this schema (in one transaction),
    /// and gives the store whose rows can be read and written.
    ///
    /// # Errors
    /// [`EngineError::Store`] when a row of an older store does not open or decode (the
    /// store is left as it was).
    pub(crate) fn unlock(self, key: StoreKey) -> Result<ProfileStore, EngineError> {
        let Self {
            mut conn,
            schema,
            lock,
        } = self;
        if schema == 1 {
            migrate::from_v1(&mut conn, &key)?;
            conn.execute_batch(HOMES_SQL).map_err(db)?;
        }
        let mut store = ProfileStore {
            conn,
            key,
            last_checkpoint: Instant::now(),
            dirty: false,
            _lock: lock,
        };
        store.checkpoint()?;
        Ok(store)
    }
}

/// Writes a meta value.
fn set_meta(c: &Connection, key: &str, value: &[u8]) -> Result<(), EngineError> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map_err(db)?;
    Ok(())
}

/// The open, unlocked store, with the profile's lock: whoever holds a `ProfileStore` is the
/// only process using the profile.
pub(crate) struct ProfileStore {
    conn: Connection,
    key: StoreKey,
    /// When the WAL was last truncated.
    last_checkpoint: Instant,
    /// Whether anything was written since.
    dirty: bool,
    /// Dropped after the connection (fields drop in order).
    _lock: ProfileLock,
}

impl std::fmt::Debug for ProfileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProfileStore(..)")
    }
}

impl ProfileStore {
    /// Runs `f` in one transaction: everything or nothing is written.
    pub(crate) fn tx<T>(
        &mut self,
        f: impl FnOnce(&Db<'_>) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let tx = self.conn.transaction().map_err(db)?;
        let out = f(&Db {
            conn: &tx,
            key: &self.key,
        })?;
        tx.commit().map_err(db)?;
        self.dirty = true;
        Ok(out)
    }

    /// The store for reads.
    pub(crate) fn db(&self) -> Db<'_> {
        Db {
            conn: &self.conn,
            key: &self.key,
        }
    }

    /// Copies the WAL into the database file and truncates it to nothing, when something
    /// was written since the last time and at least `every` has passed by `now`: what a write
    /// replaced or deleted (overwritten with zeros in the database file by
    /// `secure_delete`) then survives in neither file.
    ///
    /// # Errors
    /// [`EngineError::Store`] when the checkpoint fails.
    pub(crate) fn checkpoint_due(
        &mut self,
        every: Duration,
        now: Instant,
    ) -> Result<(), EngineError> {
        if self.dirty && now.saturating_duration_since(self.last_checkpoint) >= every {
            self.checkpoint()?;
            self.last_checkpoint = now;
        }
        Ok(())
    }

    /// Copies the WAL into the database file and truncates it, now.
    pub(crate) fn checkpoint(&mut self) -> Result<(), EngineError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(db)?;
        self.dirty = false;
        self.last_checkpoint = Instant::now();
        Ok(())
    }
}

impl Drop for ProfileStore {
    fn drop(&mut self) {
        if self.dirty
            && let Err(e) = self.checkpoint()
        {
            tracing::warn!(cause = %e, "the store's last checkpoint failed");
        }
    }
}

/// One page of a room's history, and how many of its rows did not open.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// Message id and record, newest first.
    pub(crate) messages: Vec<(i64, MessageRecord)>,
    /// Rows skipped because they do not open in this room (damaged, or moved here).
    pub(crate) damaged: usize,
}

/// What [`Db::add_contact`] writes.
pub(crate) struct NewContact<'a> {
    /// The contact.
    pub(crate) contact: &'a ContactRecord,
    /// Its first session.
    pub(crate) session: &'a Session,
    /// Its 1:1 room (its `contact` is set to the new contact).
    pub(crate) room: &'a RoomRecord,
}

/// What [`Db::add_contact`] wrote.
pub(crate) struct AddedContact {
    /// The contact's id.
    pub(crate) contact: i64,
    /// Its room's id.
    pub(crate) room: i64,
    /// Its room as stored.
    pub(crate) room_record: RoomRecord,
}

/// What [`Db::rename_contact`] writes.
pub(crate) struct RenamedContact<'a> {
    /// The contact's id.
    pub(crate) contact: i64,
    /// Its record under the new name.
    pub(crate) record: &'a ContactRecord,
    /// Its room's id.
    pub(crate) room: i64,
    /// Its room under the new name.
    pub(crate) room_record: &'a RoomRecord,
}

/// The store's rows, read and written through one connection (inside a transaction
/// when it comes from [`ProfileStore::tx`]). Every row is sealed and opened here.
pub(crate) struct Db<'a> {
    conn: &'a Connection,
    key: &'a StoreKey,
}

impl Db<'_> {
    // ----- sealing -----------------------------------------------------------------------

    fn tag(&self, label: &[u8], data: &[u8]) -> Result<[u8; 32], EngineError> {
        self.key
            .tag(label, data)
            .map_err(|_| StoreError::Seal.into())
    }

    fn seal(
        &self,
        table: Table,
        id: &[u8],
        owner: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, EngineError> {
        self.key
            .seal(plain, &row_aad(table, id, owner))
            .map_err(|_| StoreError::Seal.into())
    }

    fn open(
        &self,
        table: Table,
        id: &[u8],
        owner: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        self.key
            .open(sealed, &row_aad(table, id, owner))
            .map_err(|_| StoreError::RowDoesNotOpen(table.name()).into())
    }

    fn seal_record<T: Serialize>(
        &self,
        table: Table,
        id: i64,
        owner: &[u8],
        rec: &T,
    ) -> Result<Vec<u8>, EngineError> {
        self.seal(table, &id.to_be_bytes(), owner, &enc(rec)?)
    }

    fn open_record<T: DeserializeOwned>(
        &self,
        table: Table,
        id: i64,
        owner: &[u8],
        sealed: &[u8],
    ) -> Result<T, EngineError> {
        dec(&self.open(table, &id.to_be_bytes(), owner, sealed)?, table)
    }

    /// Inserts a row with an empty seal to learn its id, then seals `rec` bound to it.
    /// `sql` inserts the row's other columns and an empty `sealed`; returns `None` when it
    /// inserted nothing (`INSERT OR IGNORE` of a duplicate).
    fn insert_sealed<T: Serialize>(
        &self,
        table: Table,
        sql: &str,
        p: impl rusqlite::Params,
        owner: &[u8],
        rec: &T,
    ) -> Result<Option<i64>, EngineError> {
        if self.conn.execute(sql, p).map_err(db)? == 0 {
            return Ok(None);
        }
        let id = self.conn.last_insert_rowid();
        let sealed = self.seal_record(table, id, owner, rec)?;
        let update = match table {
            Table::Contacts => "UPDATE contacts SET sealed = ?1 WHERE id = ?2",
            Table::Rooms => "UPDATE rooms SET sealed = ?1 WHERE id = ?2",
            Table::Invites => "UPDATE invites SET sealed = ?1 WHERE id = ?2",
            Table::Messages => "UPDATE messages SET sealed = ?1 WHERE id = ?2",
            Table::OutboxHead => "UPDATE outbox SET head = ?1 WHERE id = ?2",
            Table::Parts => "UPDATE parts SET sealed = ?1 WHERE id = ?2",
            Table::ReceiptsOut => "UPDATE receipts_out SET sealed = ?1 WHERE id = ?2",
            Table::Inbox => "UPDATE inbox SET sealed = ?1 WHERE id = ?2",
            Table::UsedInvites => "UPDATE used_invites SET sealed = ?1 WHERE id = ?2",
            Table::Sessions
            | Table::OutboxEnvelope
            | Table::Cursors
            | Table::InviteChecks
            | Table::Homes
            | Table::OutboxKept => {
                return Err(Inconsistency::NotInserted.into());
            }
        };
        self.conn.execute(update, params![sealed, id]).map_err(db)?;
        Ok(Some(id))
    }

    fn inserted(id: Option<i64>) -> Result<i64, EngineError> {
        id.ok_or_else(|| Inconsistency::NotInserted.into())
    }

    // ----- contacts and sessions ---------------------------------------------------------

    /// Every contact.
    pub(crate) fn contacts(&self) -> Result<Vec<(i64, ContactRecord)>, EngineError> {
        id_blobs(self.conn, "SELECT id, sealed FROM contacts ORDER BY id", [])?
            .into_iter()
            .map(|(id, s)| Ok((id, self.open_record(Table::Contacts, id, &[], &s)?)))
            .collect()
    }

    /// Adds a contact; returns its id.
    pub(crate) fn insert_contact(&self, rec: &ContactRecord) -> Result<i64, EngineError> {
        Self::inserted(self.insert_sealed(
            Table::Contacts,
            "INSERT INTO contacts (sealed) VALUES (x'')",
            [],
            &[],
            rec,
        )?)
    }

    /// A new contact with its first session and its 1:1 room (which comes to name it):
    /// the rows of an accepted or answered invite.
    pub(crate) fn add_contact(&self, new: &NewContact<'_>) -> Result<AddedContact, EngineError> {
        let contact = self.insert_contact(new.contact)?;
        self.put_session(contact, new.session)?;
        let mut room = new.room.clone();
        room.contact = Some(contact);
        let room_id = self.insert_room(&room)?;
        Ok(AddedContact {
            contact,
            room: room_id,
            room_record: room,
        })
    }

    /// A contact renamed, and its 1:1 room with it.
    pub(crate) fn rename_contact(&self, renamed: &RenamedContact<'_>) -> Result<(), EngineError> {
        self.put_contact(renamed.contact, renamed.record)?;
        self.put_room(renamed.room, renamed.room_record)
    }

    /// Rewrites a contact.
    pub(crate) fn put_contact(&self, id: i64, rec: &ContactRecord) -> Result<(), EngineError> {
        let sealed = self.seal_record(Table::Contacts, id, &[], rec)?;
        self.conn
            .execute(
                "UPDATE contacts SET sealed = ?1 WHERE id = ?2",
                params![sealed, id],
            )
            .map_err(db)?;
        Ok(())
    }

    /// Every session, by contact. The caller checks each against its contact.
    pub(crate) fn sessions(&self) -> Result<Vec<(i64, Session)>, EngineError> {
        id_blobs(
            self.conn,
            "SELECT contact, sealed FROM sessions ORDER BY contact",
            [],
        )?
        .into_iter()
        .map(|(cid, s)| {
            let b = self.open(Table::Sessions, &cid.to_be_bytes(), &[], &s)?;
            let session = Session::from_bytes(&b)
                .map_err(|_| StoreError::RowDoesNotDecode(Table::Sessions.name()))?;
            Ok((cid, session))
        })
        .collect()
    }

    /// Writes the session of contact `cid` (replacing the old state).
    pub(crate) fn put_session(&self, cid: i64, session: &Session) -> Result<(), EngineError> {
        let plain = session.to_bytes().map_err(EngineError::from)?;
        let sealed = self.seal(Table::Sessions, &cid.to_be_bytes(), &[], &plain)?;
        self.conn
            .execute(
                "INSERT INTO sessions (contact, sealed) VALUES (?1, ?2)
                 ON CONFLICT(contact) DO UPDATE SET sealed = excluded.sealed",
                params![cid, sealed],
            )
            .map_err(db)?;
        Ok(())
    }

    // ----- rooms -------------------------------------------------------------------------

    /// Every room.
    pub(crate) fn rooms(&self) -> Result<Vec<(i64, RoomRecord)>, EngineError> {
        id_blobs(self.conn, "SELECT id, sealed FROM rooms ORDER BY id", [])?
            .into_iter()
            .map(|(id, s)| Ok((id, self.open_record(Table::Rooms, id, &[], &s)?)))
            .collect()
    }

    /// Adds a room; returns its id.
    pub(crate) fn insert_room(&self, rec: &RoomRecord) -> Result<i64, EngineError> {
        Self::inserted(self.insert_sealed(
            Table::Rooms,
            "INSERT INTO rooms (sealed) VALUES (x'')",
            [],
            &[],
            rec,
        )?)
    }

    /// Rewrites a room (its group state included).
    pub(crate) fn put_room(&self, id: i64, rec: &RoomRecord) -> Result<(), EngineError> {
        let sealed = self.seal_record(Table::Rooms, id, &[], rec)?;
        self.conn
            .execute(
                "UPDATE rooms SET sealed = ?1 WHERE id = ?2",
                params![sealed, id],
            )
            .map_err(db)?;
        Ok(())
    }

    // ----- invites -----------------------------------------------------------------------

    /// Every invite secret kept, expired or not.
    pub(crate) fn invites(&self) -> Result<Vec<(i64, InviteSecret)>, EngineError> {
        id_blobs(self.conn, "SELECT id, sealed FROM invites ORDER BY id", [])?
            .into_iter()
            .map(|(id, s)| {
                let b = self.open(Table::Invites, &id.to_be_bytes(), &[], &s)?;
                let secret = InviteSecret::from_bytes(&b)
                    .map_err(|_| StoreError::RowDoesNotDecode(Table::Invites.name()))?;
                Ok((id, secret))
            })
            .collect()
    }

    /// Keeps an invite's secret half; returns its id.
    pub(crate) fn insert_invite(&self, secret: &InviteSecret) -> Result<i64, EngineError> {
        self.conn
            .execute("INSERT INTO invites (sealed) VALUES (x'')", [])
            .map_err(db)?;
        let id = self.conn.last_insert_rowid();
        let sealed = self.seal(Table::Invites, &id.to_be_bytes(), &[], &secret.to_bytes())?;
        self.conn
            .execute(
                "UPDATE invites SET sealed = ?1 WHERE id = ?2",
                params![sealed, id],
            )
            .map_err(db)?;
        Ok(id)
    }

    /// Forgets an invite's secret (used or expired).
    pub(crate) fn delete_invite(&self, id: i64) -> Result<(), EngineError> {
        self.conn
            .execute("DELETE FROM invites WHERE id = ?1", [id])
            .map_err(db)?;
        Ok(())
    }

    // ----- used invites and invites we watch ---------------------------------------------

    /// Every used invite of ours kept, expired or not.
    pub(crate) fn used_invites(&self) -> Result<Vec<(i64, UsedInviteRecord)>, EngineError> {
        id_blobs(
            self.conn,
            "SELECT id, sealed FROM used_invites ORDER BY id",
            [],
        )?
        .into_iter()
        .map(|(id, s)| Ok((id, self.open_record(Table::UsedInvites, id, &[], &s)?)))
        .collect()
    }

    /// Keeps a used invite of ours (read until it expires); returns its id.
    pub(crate) fn insert_used_invite(&self, rec: &UsedInviteRecord) -> Result<i64, EngineError> {
        Self::inserted(self.insert_sealed(
            Table::UsedInvites,
            "INSERT INTO used_invites (sealed) VALUES (x'')",
            [],
            &[],
            rec,
        )?)
    }

    /// Forgets a used invite (expired).
    pub(crate) fn delete_used_invite(&self, id: i64) -> Result<(), EngineError> {
        self.conn
            .execute("DELETE FROM used_invites WHERE id = ?1", [id])
            .map_err(db)?;
        Ok(())
    }

    /// Every invite we accepted and still watch, by contact.
    pub(crate) fn invite_checks(&self) -> Result<Vec<(i64, InviteCheckRecord)>, EngineError> {
        id_blobs(
            self.conn,
            "SELECT contact, sealed FROM invite_checks ORDER BY contact",
            [],
        )?
        .into_iter()
        .map(|(cid, s)| Ok((cid, self.open_record(Table::InviteChecks, cid, &[], &s)?)))
        .collect()
    }

    /// Starts watching the invite accepted for contact `cid` (replacing any before).
    pub(crate) fn put_invite_check(
        &self,
        cid: i64,
        rec: &InviteCheckRecord,
    ) -> Result<(), EngineError> {
        let sealed = self.seal_record(Table::InviteChecks, cid, &[], rec)?;
        self.conn
            .execute(
                "INSERT INTO invite_checks (contact, sealed) VALUES (?1, ?2)
                 ON CONFLICT(contact) DO UPDATE SET sealed = excluded.sealed",
                params![cid, sealed],
            )
            .map_err(db)?;
        Ok(())
    }

    /// Stops watching the invite accepted for contact `cid`.
    pub(crate) fn delete_invite_check(&self, cid: i64) -> Result<(), EngineError> {
        self.conn
            .execute("DELETE FROM invite_checks WHERE contact = ?1", [cid])
            .map_err(db)?;
        Ok(())
    }

    /// Forgets contact `cid`, whose invite turned out to be used by someone else: the
    /// contact, its session, the invite we watched for it, and what waits to be sent to or
    /// applied from it. Its room is the caller's to rewrite (it stays, with its history).
    pub(crate) fn forget_contact(&self, cid: i64) -> Result<(), EngineError> {
        let dest = Some(Dest::Contact(cid));
        for (id, head) in self.outbox()? {
            if head.dest == dest {
                self.delete_outbox(id)?;
            }
        }
        for (id, r) in self.receipts_out(u32::MAX)? {
            if Some(r.dest) == dest {
                self.delete_receipt_out(id)?;
            }
        }
        for (id, rec) in self.inbox()? {
            if rec.origin == Origin::Contact(cid) {
                self.delete_inbox(id)?;
            }
        }
        self.delete_invite_check(cid)?;
        for sql in [
            "DELETE FROM sessions WHERE contact = ?1",
            "DELETE FROM contacts WHERE id = ?1",
        ] {
            self.conn.execute(sql, [cid]).map_err(db)?;
        }
        Ok(())
    }

    // ----- history -----------------------------------------------------------------------

    fn room_tag(&self, room: i64) -> Result<[u8; 32], EngineError> {
        self.tag(label::ROOM, &room.to_be_bytes())
    }

    fn message_uid_tag(&self, room: i64, uid: &Uid) -> Result<[u8; 32], EngineError> {
        self.tag(label::MESSAGE_UID, &[&room.to_be_bytes()[..], uid].concat())
    }

    /// Adds a message to room `room`'s history; `None` when it has one with this uid
    /// already (a duplicate).
    pub(crate) fn insert_message(
        &self,
        room: i64,
        rec: &MessageRecord,
    ) -> Result<Option<i64>, EngineError> {
        let room_tag = self.room_tag(room)?;
        let uid_tag = self.message_uid_tag(room, &rec.body.uid)?;
        self.insert_sealed(
            Table::Messages,
            "INSERT OR IGNORE INTO messages (room, uid, sealed) VALUES (?1, ?2, x'')",
            params![&room_tag[..], &uid_tag[..]],
            &room.to_be_bytes(),
            rec,
        )
    }

    /// The message of room `room` with id `uid`.
    pub(crate) fn message_by_uid(
        &self,
        room: i64,
        uid: &Uid,
    ) -> Result<Option<(i64, MessageRecord)>, EngineError> {
        let room_tag = self.room_tag(room)?;
        let uid_tag = self.message_uid_tag(room, uid)?;
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT id, sealed FROM messages WHERE room = ?1 AND uid = ?2",
                params![&room_tag[..], &uid_tag[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        row.map(|(id, s)| {
            Ok((
                id,
                self.open_record(Table::Messages, id, &room.to_be_bytes(), &s)?,
            ))
        })
        .transpose()
    }

    /// Rewrites message `id` of room `room` (its delivery state or receipts changed).
    pub(crate) fn put_message(
        &self,
        id: i64,
        room: i64,
        rec: &MessageRecord,
    ) -> Result<(), EngineError> {
        let sealed = self.seal_record(Table::Messages, id, &room.to_be_bytes(), rec)?;
        self.conn
            .execute(
                "UPDATE messages SET sealed = ?1 WHERE id = ?2",
                params![sealed, id],
            )
            .map_err(db)?;
        Ok(())
    }

    fn open_page(&self, room: i64, rows: Vec<(i64, Vec<u8>)>) -> Page {
        let mut page = Page::default();
        for (id, s) in rows {
            match self.open_record(Table::Messages, id, &room.to_be_bytes(), &s) {
                Ok(m) => page.messages.push((id, m)),
                Err(e) => {
                    tracing::warn!(cause = %e, "a history row was skipped");
                    page.damaged += 1;
                }
            }
        }
        page
    }

    /// Messages of a room older than `before`, newest first, at most `limit`.
    pub(crate) fn page(
        &self,
        room: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Page, EngineError> {
        let tag = self.room_tag(room)?;
        let rows = id_blobs(
            self.conn,
            "SELECT id, sealed FROM messages WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            params![&tag[..], before.unwrap_or(i64::MAX), limit],
        )?;
        Ok(self.open_page(room, rows))
    }

    /// Every message of a room, oldest first (for search).
    pub(crate) fn all_messages(&self, room: i64) -> Result<Page, EngineError> {
        let tag = self.room_tag(room)?;
        let rows = id_blobs(
            self.conn,
            "SELECT id, sealed FROM messages WHERE room = ?1 ORDER BY id",
            [&tag[..]],
        )?;
        Ok(self.open_page(room, rows))
    }

    // ----- outbox ------------------------------------------------------------------------

    fn outbox_uid_tag(&self, uid: &Uid) -> Result<[u8; 32], EngineError> {
        self.tag(label::OUTBOX_UID, uid)
    }

    /// Queues a sealed envelope; returns its outbox id (ids only grow, in queue order).
    pub(crate) fn insert_outbox(
        &self,
        head: &OutboxHead,
        envelope: &[u8],
    ) -> Result<i64, EngineError> {
        let uid = head
            .uid
            .as_ref()
            .map(|u| self.outbox_uid_tag(u))
            .transpose()?;
        self.conn
            .execute(
                "INSERT INTO outbox (uid, head, envelope) VALUES (?1, x'', x'')",
                [uid.as_ref().map(|u| &u[..])],
            )
            .map_err(db)?;
        let id = self.conn.last_insert_rowid();
        let sealed_head = self.seal_record(Table::OutboxHead, id, &[], head)?;
        let sealed_env = self.seal(Table::OutboxEnvelope, &id.to_be_bytes(), &[], envelope)?;
        self.conn
            .execute(
                "UPDATE outbox SET head = ?1, envelope = ?2 WHERE id = ?3",
                params![sealed_head, sealed_env, id],
            )
            .map_err(db)?;
        Ok(id)
    }

    /// The outbox, oldest first, without the envelopes.
    pub(crate) fn outbox(&self) -> Result<Vec<(i64, OutboxHead)>, EngineError> {
        id_blobs(self.conn, "SELECT id, head FROM outbox ORDER BY id", [])?
            .into_iter()
            .map(|(id, s)| Ok((id, self.open_record(Table::OutboxHead, id, &[], &s)?)))
            .collect()
    }

    /// One outbox row's head.
    pub(crate) fn outbox_head(&self, id: i64) -> Result<Option<OutboxHead>, EngineError> {
        let s: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT head FROM outbox WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(db)?;
        s.map(|s| self.open_record(Table::OutboxHead, id, &[], &s))
            .transpose()
    }

    /// One outbox row with its envelope.
    pub(crate) fn outbox_entry(
        &self,
        id: i64,
    ) -> Result<Option<(OutboxHead, Vec<u8>)>, EngineError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT head, envelope FROM outbox WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        row.map(|(h, e)| {
            let head = self.open_record(Table::OutboxHead, id, &[], &h)?;
            let env = self.open(Table::OutboxEnvelope, &id.to_be_bytes(), &[], &e)?;
            Ok((head, env.to_vec()))
        })
        .transpose()
    }

    /// The outbox ids of every envelope of message `uid`.
    pub(crate) fn outbox_ids_of(&self, uid: &Uid) -> Result<Vec<i64>, EngineError> {
        let tag = self.outbox_uid_tag(uid)?;
        rows(
            self.conn,
            "SELECT id FROM outbox WHERE uid = ?1 ORDER BY id",
            [&tag[..]],
            |r| r.get(0),
        )
    }

    /// Drops one outbox row.
    pub(crate) fn delete_outbox(&self, id: i64) -> Result<(), EngineError> {
        self.conn
            .execute("DELETE FROM outbox WHERE id = ?1", [id])
            .map_err(db)?;
        self.conn
            .execute("DELETE FROM outbox_kept WHERE id = ?1", [id])
            .map_err(db)?;
        Ok(())
    }

    /// Drops every envelope of message `uid` (its receipt arrived).
    pub(crate) fn delete_outbox_of(&self, uid: &Uid) -> Result<(), EngineError> {
        for id in self.outbox_ids_of(uid)? {
            self.delete_outbox(id)?;
        }
        Ok(())
    }

    /// Keeps outbox row `id`, which every relay stored, until `until` (seconds since the
    /// Unix epoch); a row already kept keeps its first time.
    pub(crate) fn keep_outbox(&self, id: i64, until: u64) -> Result<(), EngineError> {
        let sealed = self.seal_record(Table::OutboxKept, id, &[], &until)?;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO outbox_kept (id, sealed) VALUES (?1, ?2)",
                params![id, sealed],
            )
            .map_err(db)?;
        Ok(())
    }

    /// The outbox rows kept after every relay stored them, with the time each goes.
    pub(crate) fn kept_outbox(&self) -> Result<Vec<(i64, u64)>, EngineError> {
        id_blobs(
            self.conn,
            "SELECT id, sealed FROM outbox_kept ORDER BY id",
            [],
        )?
        .into_iter()
        .map(|(id, s)| Ok((id, self.open_record(Table::OutboxKept, id, &[], &s)?)))
        .collect()
    }

    // ----- parts -------------------------------------------------------------------------

    fn part_tags(
        &self,
        room: i64,
        sender: &[u8],
        msg_id: u64,
        idx: Option<u16>,
    ) -> Result<[u8; 32], EngineError> {
        let mut data = Vec::with_capacity(8 + sender.len() + 10);
        data.extend_from_slice(&room.to_be_bytes());
        data.extend_from_slice(&msg_id.to_be_bytes());
        if let Some(i) = idx {
            data.extend_from_slice(&i.to_be_bytes());
        }
        data.extend_from_slice(sender);
        self.tag(
            if idx.is_some() {
                label::PART
            } else {
                label::PART_MESSAGE
            },
            &data,
        )
    }

    /// Keeps a part of a message still incomplete (a second copy is ignored).
    pub(crate) fn insert_part(&self, rec: &PartRecord) -> Result<(), EngineError> {
        let msg = self.part_tags(rec.room, &rec.sender, rec.msg_id, None)?;
        let part = self.part_tags(rec.room, &rec.sender, rec.msg_id, Some(rec.idx))?;
        self.insert_sealed(
            Table::Parts,
            "INSERT OR IGNORE INTO parts (msg, part, sealed) VALUES (?1, ?2, x'')",
            params![&msg[..], &part[..]],
            &[],
            rec,
        )?;
        Ok(())
    }

    /// Drops the parts of one message (complete, or given up).
    pub(crate) fn delete_parts(
        &self,
        room: i64,
        sender: &[u8],
        msg_id: u64,
    ) -> Result<(), EngineError> {
        let msg = self.part_tags(room, sender, msg_id, None)?;
        self.conn
            .execute("DELETE FROM parts WHERE msg = ?1", [&msg[..]])
            .map_err(db)?;
        Ok(())
    }

    /// Every part kept, in arrival order.
    pub(crate) fn parts(&self) -> Result<Vec<PartRecord>, EngineError> {
        id_blobs(self.conn, "SELECT id, sealed FROM parts ORDER BY id", [])?
            .into_iter()
            .map(|(id, s)| self.open_record(Table::Parts, id, &[], &s))
            .collect()
    }

    // ----- receipts to send --------------------------------------------------------------

    /// Records a receipt to send.
    pub(crate) fn insert_receipt_out(&self, rec: &ReceiptOut) -> Result<(), EngineError> {
        self.insert_sealed(
            Table::ReceiptsOut,
            "INSERT INTO receipts_out (sealed) VALUES (x'')",
            [],
            &[],
            rec,
        )?;
        Ok(())
    }

    /// The oldest receipts waiting, at most `limit`.
    pub(crate) fn receipts_out(&self, limit: u32) -> Result<Vec<(i64, ReceiptOut)>, EngineError> {
        id_blobs(
            self.conn,
            "SELECT id, sealed FROM receipts_out ORDER BY id LIMIT ?1",
            [limit],
        )?
        .into_iter()
        .map(|(id, s)| Ok((id, self.open_record(Table::ReceiptsOut, id, &[], &s)?)))
        .collect()
    }

    /// Drops a receipt (sent, or nobody to send it to).
    pub(crate) fn delete_receipt_out(&self, id: i64) -> Result<(), EngineError> {
        self.conn
            .execute("DELETE FROM receipts_out WHERE id = ?1", [id])
            .map_err(db)?;
        Ok(())
    }

    // ----- inbox -------------------------------------------------------------------------

    /// Keeps a received control message until it is applied; returns its id.
    pub(crate) fn insert_inbox(&self, rec: &InboxRecord) -> Result<i64, EngineError> {
        Self::inserted(self.insert_sealed(
            Table::Inbox,
            "INSERT INTO inbox (sealed) VALUES (x'')",
            [],
            &[],
            rec,
        )?)
    }

    /// The inbox, oldest first.
    pub(crate) fn inbox(&self) -> Result<Vec<(i64, InboxRecord)>, EngineError> {
        id_blobs(self.conn, "SELECT id, sealed FROM inbox ORDER BY id", [])?
            .into_iter()
            .map(|(id, s)| Ok((id, self.open_record(Table::Inbox, id, &[], &s)?)))
            .collect()
    }

    /// Drops an applied control message.
    pub(crate) fn delete_inbox(&self, id: i64) -> Result<(), EngineError> {
        self.conn
            .execute("DELETE FROM inbox WHERE id = ?1", [id])
            .map_err(db)?;
        Ok(())
    }

    // ----- cursors -----------------------------------------------------------------------

    /// The last sequence number processed in a fan-out mailbox.
    pub(crate) fn cursor(&self, mailbox: &[u8; 32]) -> Result<u64, EngineError> {
        let tag = self.tag(label::CURSOR, mailbox)?;
        let s: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT sealed FROM cursors WHERE mailbox = ?1",
                [&tag[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        match s {
            None => Ok(0),
            Some(s) => dec(&self.open(Table::Cursors, &tag, &[], &s)?, Table::Cursors),
        }
    }

    /// Advances a mailbox cursor (never backwards).
    pub(crate) fn set_cursor(&self, mailbox: &[u8; 32], seq: u64) -> Result<(), EngineError> {
        if self.cursor(mailbox)? >= seq {
            return Ok(());
        }
        let tag = self.tag(label::CURSOR, mailbox)?;
        let sealed = self.seal(Table::Cursors, &tag, &[], &enc(&seq)?)?;
        self.conn
            .execute(
                "INSERT INTO cursors (mailbox, sealed) VALUES (?1, ?2)
                 ON CONFLICT(mailbox) DO UPDATE SET sealed = excluded.sealed",
                params![&tag[..], sealed],
            )
            .map_err(db)?;
        Ok(())
    }
}

impl Db<'_> {
    // ----- homes -------------------------------------------------------------------------

    /// Where the person with identity fingerprint `person` receives, if known.
    pub(crate) fn home(&self, person: &Fingerprint) -> Result<Option<HomeRecord>, EngineError> {
        let tag = self.tag(label::HOME, person.as_bytes())?;
        let s: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT sealed FROM homes WHERE person = ?1",
                [&tag[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        match s {
            None => Ok(None),
            Some(s) => dec(&self.open(Table::Homes, &tag, &[], &s)?, Table::Homes).map(Some),
        }
    }

    /// Writes where `person` receives (replacing what was known).
    pub(crate) fn put_home(
        &self,
        person: &Fingerprint,
        rec: &HomeRecord,
    ) -> Result<(), EngineError> {
        let tag = self.tag(label::HOME, person.as_bytes())?;
        let sealed = self.seal(Table::Homes, &tag, &[], &enc(rec)?)?;
        self.conn
            .execute(
                "INSERT INTO homes (person, sealed) VALUES (?1, ?2)
                 ON CONFLICT(person) DO UPDATE SET sealed = excluded.sealed",
                params![&tag[..], sealed],
            )
            .map_err(db)?;
        Ok(())
    }

    /// The hum/2 route session's state as last saved (send counters, receive windows,
    /// catch-ups owed), or a fresh one.
    pub(crate) fn route_state(&self) -> Result<SessionState, EngineError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'route state'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        let Some(sealed) = sealed else {
            return Ok(SessionState::new());
        };
        let plain = open(self.key, &sealed, "route state")?;
        SessionState::from_bytes(&plain)
            .map_err(|_| StoreError::RowDoesNotDecode("route state").into())
    }

    /// Saves the route session's state (replacing the last one).
    pub(crate) fn put_route_state(&self, state: &SessionState) -> Result<(), EngineError> {
        let plain = Zeroizing::new(state.to_bytes().map_err(|_| EngineError::Encode)?);
        let sealed = seal(self.key, &plain, "route state")?;
        set_meta(self.conn, "route state", &sealed)
    }

    /// Forgets where `person` receives.
    pub(crate) fn delete_home(&self, person: &Fingerprint) -> Result<(), EngineError> {
        let tag = self.tag(label::HOME, person.as_bytes())?;
        self.conn
            .execute("DELETE FROM homes WHERE person = ?1", [&tag[..]])
            .map_err(db)?;
        Ok(())
    }
}

/// Seals a meta value for the row kind `aad` (the check value, identity and name).
pub(crate) fn seal(key: &StoreKey, plain: &[u8], aad: &str) -> Result<Vec<u8>, EngineError> {
    key.seal(plain, aad.as_bytes())
        .map_err(|_| StoreError::Seal.into())
}

/// Opens what [`seal`] sealed for the row kind `aad`, into a buffer wiped when dropped.
pub(crate) fn open(
    key: &StoreKey,
    sealed: &[u8],
    aad: &'static str,
) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    key.open(sealed, aad.as_bytes())
        .map_err(|_| StoreError::RecordDoesNotOpen(aad).into())
}

#[cfg(test)]
mod tests;
