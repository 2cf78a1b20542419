//! The client's store: one SQLite file per profile, written in transactions.
//!
//! Secrets and message bodies are sealed with the profile's [`StoreKey`] before they reach
//! this layer, each bound to its table and row kind as associated data; this module only
//! moves blobs. The store runs with `synchronous=FULL` in WAL mode, so a committed
//! transaction survives a crash at any instant.

use std::path::Path;

use hum_shared::crypto::StoreKey;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::EngineError;

/// Schema version written in `meta.schema`.
const SCHEMA: i64 = 1;

const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    fingerprint BLOB NOT NULL UNIQUE,
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    contact INTEGER PRIMARY KEY REFERENCES contacts(id),
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rooms (
    id INTEGER PRIMARY KEY,
    contact INTEGER UNIQUE REFERENCES contacts(id),
    sealed BLOB NOT NULL,
    unread INTEGER NOT NULL DEFAULT 0,
    mentions INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS invites (
    id INTEGER PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    room INTEGER NOT NULL REFERENCES rooms(id),
    uid BLOB NOT NULL,
    from_me INTEGER NOT NULL,
    delivery INTEGER,
    receipts_needed INTEGER NOT NULL DEFAULT 0,
    sealed BLOB NOT NULL,
    UNIQUE (room, uid)
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages(room, id);
CREATE TABLE IF NOT EXISTS receipts (
    message INTEGER NOT NULL REFERENCES messages(id),
    member BLOB NOT NULL,
    PRIMARY KEY (message, member)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    uid BLOB,
    relay TEXT NOT NULL,
    mailbox BLOB NOT NULL,
    fanout INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    stored INTEGER NOT NULL DEFAULT 0,
    contact INTEGER,
    room INTEGER
);
CREATE TABLE IF NOT EXISTS parts (
    room INTEGER NOT NULL,
    sender BLOB NOT NULL,
    msg_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (room, sender, msg_id, idx)
);
CREATE TABLE IF NOT EXISTS receipts_out (
    id INTEGER PRIMARY KEY,
    contact INTEGER,
    room INTEGER,
    uid BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    contact INTEGER,
    room INTEGER,
    member BLOB,
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (mailbox BLOB PRIMARY KEY, seq INTEGER NOT NULL);
";

/// One row of the outbox as the links' queues need it: an envelope waiting for the relay
/// to store it (or, once stored, for the end-to-end receipt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboxRow {
    pub(crate) id: i64,
    pub(crate) relay: String,
    pub(crate) stored: bool,
}

/// One stored message, still sealed.
#[derive(Debug, Clone)]
pub(crate) struct MessageRow {
    pub(crate) id: i64,
    pub(crate) room: i64,
    pub(crate) from_me: bool,
    pub(crate) delivery: Option<i64>,
    pub(crate) sealed: Vec<u8>,
}

/// The open store.
pub(crate) struct Store {
    conn: Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store(..)")
    }
}

fn db(e: rusqlite::Error) -> EngineError {
    EngineError::Store(e.to_string())
}

impl Store {
    /// Opens (creating if needed) the store file at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, EngineError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.execute_batch(SCHEMA_SQL).map_err(db)?;
        let s = Self { conn };
        match s.meta("schema")? {
            None => s.set_meta("schema", &SCHEMA.to_be_bytes())?,
            Some(v) if v == SCHEMA.to_be_bytes() => {}
            Some(_) => return Err(EngineError::Store("unknown store schema version".into())),
        }
        Ok(s)
    }

    /// Runs `f` in one transaction: everything or nothing is written.
    pub(crate) fn tx<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let tx = self.conn.transaction().map_err(db)?;
        let out = f(&tx)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    /// The connection, for reads.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, EngineError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(db)
    }

    pub(crate) fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), EngineError> {
        set_meta(&self.conn, key, value)
    }

    /// Messages of a room older than `before`, newest first, at most `limit`.
    pub(crate) fn page(
        &self,
        room: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<MessageRow>, EngineError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, room, from_me, delivery, sealed FROM messages
                 WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(db)?;
        let rows = st
            .query_map(
                params![room, before.unwrap_or(i64::MAX), limit],
                message_row,
            )
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    /// Every message, optionally of one room, oldest first (for search).
    pub(crate) fn all_messages(&self, room: Option<i64>) -> Result<Vec<MessageRow>, EngineError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, room, from_me, delivery, sealed FROM messages
                 WHERE (?1 IS NULL OR room = ?1) ORDER BY id",
            )
            .map_err(db)?;
        let rows = st.query_map(params![room], message_row).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    /// The outbox, oldest first.
    pub(crate) fn outbox(&self) -> Result<Vec<OutboxRow>, EngineError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, relay, stored FROM outbox ORDER BY id")
            .map_err(db)?;
        let rows = st
            .query_map([], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    relay: r.get(1)?,
                    stored: r.get::<_, i64>(2)? != 0,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    /// The last sequence number processed in a mailbox.
    pub(crate) fn cursor(&self, mailbox: &[u8; 32]) -> Result<u64, EngineError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM cursors WHERE mailbox = ?1",
                [&mailbox[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
    }
}

fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: r.get(0)?,
        room: r.get(1)?,
        from_me: r.get::<_, i64>(2)? != 0,
        delivery: r.get(3)?,
        sealed: r.get(4)?,
    })
}

/// Writes a meta value.
pub(crate) fn set_meta(c: &Connection, key: &str, value: &[u8]) -> Result<(), EngineError> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map_err(db)?;
    Ok(())
}

/// Advances a mailbox cursor (never backwards).
pub(crate) fn set_cursor(c: &Connection, mailbox: &[u8; 32], seq: u64) -> Result<(), EngineError> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    c.execute(
        "INSERT INTO cursors (mailbox, seq) VALUES (?1, ?2)
         ON CONFLICT(mailbox) DO UPDATE SET seq = MAX(seq, excluded.seq)",
        params![&mailbox[..], seq],
    )
    .map_err(db)?;
    Ok(())
}

/// Seals `plain` for the row kind `aad`.
pub(crate) fn seal(key: &StoreKey, plain: &[u8], aad: &str) -> Result<Vec<u8>, EngineError> {
    key.seal(plain, aad.as_bytes())
        .map_err(|_| EngineError::Store("sealing failed".into()))
}

/// Opens what [`seal`] sealed for the row kind `aad`, into a buffer wiped when dropped.
pub(crate) fn open(
    key: &StoreKey,
    sealed: &[u8],
    aad: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, EngineError> {
    key.open(sealed, aad.as_bytes()).map_err(|_| {
        EngineError::Store(format!(
            "a sealed {aad} record does not open (wrong passphrase or damaged store)"
        ))
    })
}

/// Runs a statement inside a transaction, mapping errors.
pub(crate) fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<usize, EngineError> {
    tx.execute(sql, p).map_err(db)
}

/// Runs a query for one optional value.
pub(crate) fn query_opt<T: rusqlite::types::FromSql>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Option<T>, EngineError> {
    c.query_row(sql, p, |r| r.get(0)).optional().map_err(db)
}

/// Runs a query for rows of two columns.
pub(crate) fn query_pairs<A: rusqlite::types::FromSql, B: rusqlite::types::FromSql>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<(A, B)>, EngineError> {
    let mut st = c.prepare_cached(sql).map_err(db)?;
    let rows = st
        .query_map(p, |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db)
}
