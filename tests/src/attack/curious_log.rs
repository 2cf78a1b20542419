//! A relay's curious log (docs/PROTOCOL.md hum/2 §H8): JSON lines of what each role saw,
//! read into one vector per record kind.

use std::borrow::Cow;

use serde::Deserialize;

use super::error::AttackError;
use super::field::{At, each_line};

/// Which records of a log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RoleFilter {
    /// Every record (a single relay's log has both roles, and its slot records name the
    /// connection).
    #[default]
    All,
    /// Only the entry role's records.
    Entry,
    /// Only the mailbox role's records, ignoring the connection a single relay adds to its
    /// slot records: what a mailbox relay in a mesh sees.
    Mailbox,
}

/// What the home relay found in a slot's deposit part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotKind {
    Dummy,
    Local,
    Forward,
    Bad,
    Replay,
}

impl SlotKind {
    /// Whether the slot carried a deposit.
    pub(crate) fn is_real(self) -> bool {
        matches!(self, SlotKind::Local | SlotKind::Forward)
    }
}

/// A connection opened at the entry role.
#[derive(Debug, Clone)]
pub(crate) struct Connect {
    pub(crate) ms: f64,
    pub(crate) conn: u64,
    pub(crate) peer: String,
}

/// An up cell's slot as the entry role saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntrySlot {
    pub(crate) tick: u64,
    pub(crate) ms: f64,
    pub(crate) conn: u64,
    pub(crate) home: u64,
    pub(crate) epoch: u32,
    pub(crate) bucket: u16,
    pub(crate) slot: u64,
}

/// A down cell's item as the entry role sent it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryItem {
    pub(crate) tick: u64,
    pub(crate) conn: u64,
    pub(crate) item: u64,
}

/// A slot the mailbox role opened as home relay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MailboxSlot {
    pub(crate) ms: f64,
    pub(crate) source: u64,
    pub(crate) batch_tick: u64,
    pub(crate) pos: u32,
    pub(crate) kind: SlotKind,
    /// Only a single relay knows it.
    pub(crate) conn: Option<u64>,
}

/// A deposit the mailbox role handled as destination relay.
#[derive(Debug, Clone)]
pub(crate) struct Deposit {
    pub(crate) tick: u64,
    pub(crate) ms: f64,
    pub(crate) source: u64,
    pub(crate) forwarded: bool,
    pub(crate) batch_tick: u64,
    pub(crate) pos: u32,
    pub(crate) epoch: u32,
    pub(crate) seed: u64,
    pub(crate) payload: u64,
    /// (bucket, tag digest) of every copy.
    pub(crate) copies: Vec<(u16, u64)>,
}

/// One item of a live stream batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamItem {
    pub(crate) tick: u64,
    pub(crate) epoch: u32,
    pub(crate) bucket: u16,
    /// None for a dummy.
    pub(crate) tag: Option<u64>,
    pub(crate) item: u64,
}

/// A catch-up request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CatchUpRequest {
    pub(crate) source: u64,
    pub(crate) batch_tick: u64,
    pub(crate) pos: u32,
    pub(crate) bucket: u16,
    pub(crate) epoch: u32,
    pub(crate) detect: u64,
    pub(crate) found: Option<u64>,
}

/// A delete request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeleteRequest {
    pub(crate) bucket: u16,
    pub(crate) epoch: u32,
    pub(crate) tag: u64,
}

/// Everything a curious log holds, one vector per record kind, in file order.
#[derive(Debug, Default)]
pub struct CuriousLog {
    pub(crate) connects: Vec<Connect>,
    pub(crate) entry_slots: Vec<EntrySlot>,
    pub(crate) items: Vec<EntryItem>,
    pub(crate) mailbox_slots: Vec<MailboxSlot>,
    pub(crate) deposits: Vec<Deposit>,
    pub(crate) streams: Vec<StreamItem>,
    pub(crate) catchups: Vec<CatchUpRequest>,
    pub(crate) deletes: Vec<DeleteRequest>,
    /// (first, last) unix ms of any record.
    pub(crate) span_ms: Option<(f64, f64)>,
    lines: usize,
    skipped: usize,
    dropped: u64,
}

#[derive(Debug, Deserialize)]
struct RawCopy<'a> {
    bucket: Option<u16>,
    #[serde(borrow)]
    tag: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
struct RawRecord<'a> {
    #[serde(borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ev: Option<Cow<'a, str>>,
    tick: Option<u64>,
    ms: Option<f64>,
    conn: Option<u64>,
    #[serde(borrow)]
    peer: Option<Cow<'a, str>>,
    #[serde(borrow)]
    home: Option<Cow<'a, str>>,
    epoch: Option<u32>,
    bucket: Option<u16>,
    #[serde(borrow)]
    slot: Option<Cow<'a, str>>,
    #[serde(borrow)]
    item: Option<Cow<'a, str>>,
    live: Option<bool>,
    #[serde(borrow)]
    to: Option<Cow<'a, str>>,
    batch_tick: Option<u64>,
    size: Option<u64>,
    real_from_clients: Option<u64>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    pos: Option<u32>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dest: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request: Option<Cow<'a, str>>,
    #[serde(borrow)]
    via: Option<Cow<'a, str>>,
    #[serde(borrow)]
    seed: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<Cow<'a, str>>,
    #[serde(borrow)]
    copies: Option<Vec<RawCopy<'a>>>,
    #[serde(borrow)]
    answer: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tag: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detect: Option<Cow<'a, str>>,
    #[serde(borrow)]
    found: Option<Cow<'a, str>>,
    ok: Option<bool>,
    count: Option<u64>,
}

const KINDS: [&str; 5] = ["dummy", "local", "forward", "bad", "replay"];
const REQUESTS: [&str; 3] = ["none", "catchup", "delete"];
const VIAS: [&str; 2] = ["local", "forward"];
const ANSWERS: [&str; 3] = ["stored", "full", "retry"];

impl CuriousLog {
    /// Reads a curious log, keeping the records `filter` selects. Records of an event this
    /// program does not know are skipped and counted; unknown fields are ignored.
    ///
    /// # Errors
    /// A line that is not JSON, a record without a field its event needs or with a value
    /// outside its format, or a read error; each names its line.
    pub fn read<R: std::io::BufRead>(input: R, filter: RoleFilter) -> Result<Self, AttackError> {
        let mut log = CuriousLog::default();
        log.lines = each_line(input, |line, text| log.add(line, text, filter))?;
        Ok(log)
    }

    /// Lines read (blank lines included).
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Records skipped: events this program does not know, or of a role the filter left out.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Records the relay's log writer dropped (its last record says how many).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether the log holds entry-role records.
    pub fn has_entry(&self) -> bool {
        !(self.entry_slots.is_empty() && self.items.is_empty() && self.connects.is_empty())
    }

    /// Whether the log holds mailbox-role records.
    pub fn has_mailbox(&self) -> bool {
        !(self.mailbox_slots.is_empty() && self.deposits.is_empty() && self.streams.is_empty())
    }

    /// Whether the mailbox role's slot records name connections (a single relay: hum/1's view).
    pub fn knows_connections(&self) -> bool {
        self.mailbox_slots.iter().any(|s| s.conn.is_some())
    }

    fn add(&mut self, line: usize, text: &str, filter: RoleFilter) -> Result<(), AttackError> {
        let raw: RawRecord<'_> =
            serde_json::from_str(text).map_err(|e| AttackError::json(line, &e))?;
        let pre = At { line, ev: "?" };
        let ev = pre.need("ev", raw.ev.as_deref())?;
        let at = At { line, ev };
        let entry = match at.need("role", raw.role.as_deref())? {
            "entry" => true,
            "mailbox" => false,
            "relay" if ev == "dropped" => {
                self.dropped += at.need("count", raw.count)?;
                return Ok(());
            }
            other => {
                return Err(at.invalid("role", format!("is {other:?}, not entry or mailbox")));
            }
        };
        let tick = at.need("tick", raw.tick)?;
        let ms = at.need("ms", raw.ms)?;
        if !ms.is_finite() {
            return Err(at.invalid("ms", "is not a finite number".into()));
        }
        let keep = match filter {
            RoleFilter::All => true,
            RoleFilter::Entry => entry,
            RoleFilter::Mailbox => !entry,
        };
        if !keep {
            self.skipped += 1;
            return Ok(());
        }
        let known = if entry {
            self.add_entry(&at, &raw, tick, ms)?
        } else {
            self.add_mailbox(&at, &raw, tick, ms, filter != RoleFilter::Mailbox)?
        };
        if known {
            self.span_ms = Some(match self.span_ms {
                None => (ms, ms),
                Some((a, b)) => (a.min(ms), b.max(ms)),
            });
        } else {
            self.skipped += 1;
        }
        Ok(())
    }

    fn add_entry(
        &mut self,
        at: &At<'_>,
        r: &RawRecord<'_>,
        tick: u64,
        ms: f64,
    ) -> Result<bool, AttackError> {
        match at.ev {
            "connect" => self.connects.push(Connect {
                ms,
                conn: at.need("conn", r.conn)?,
                peer: at.need("peer", r.peer.as_deref())?.to_owned(),
            }),
            "disconnect" => {
                at.need("conn", r.conn)?;
            }
            "slot" => self.entry_slots.push(EntrySlot {
                tick,
                ms,
                conn: at.need("conn", r.conn)?,
                home: at.hex("home", r.home.as_ref())?,
                epoch: at.need("epoch", r.epoch)?,
                bucket: at.need("bucket", r.bucket)?,
                slot: at.hex("slot", r.slot.as_ref())?,
            }),
            "item" => {
                // Null before the client's first up cell named its home.
                if r.home.is_some() {
                    at.hex("home", r.home.as_ref())?;
                }
                at.need("bucket", r.bucket)?;
                at.need("live", r.live)?;
                self.items.push(EntryItem {
                    tick,
                    conn: at.need("conn", r.conn)?,
                    item: at.hex("item", r.item.as_ref())?,
                });
            }
            "batch" => {
                at.need("batch_tick", r.batch_tick)?;
                at.hex("to", r.to.as_ref())?;
                at.need("size", r.size)?;
                at.need("real_from_clients", r.real_from_clients)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn add_mailbox(
        &mut self,
        at: &At<'_>,
        r: &RawRecord<'_>,
        tick: u64,
        ms: f64,
        keep_conn: bool,
    ) -> Result<bool, AttackError> {
        match at.ev {
            "slot" => {
                let kind = match at.choice("kind", r.kind.as_ref(), &KINDS)? {
                    0 => SlotKind::Dummy,
                    1 => SlotKind::Local,
                    2 => SlotKind::Forward,
                    3 => SlotKind::Bad,
                    _ => SlotKind::Replay,
                };
                at.choice("request", r.request.as_ref(), &REQUESTS)?;
                at.opt_hex("dest", r.dest.as_ref())?;
                self.mailbox_slots.push(MailboxSlot {
                    ms,
                    source: at.hex("source", r.source.as_ref())?,
                    batch_tick: at.need("batch_tick", r.batch_tick)?,
                    pos: at.need("pos", r.pos)?,
                    kind,
                    conn: if keep_conn { r.conn } else { None },
                });
            }
            "deposit" => {
                let copies = at
                    .need("copies", r.copies.as_ref())?
                    .iter()
                    .map(|c| Ok((at.need("bucket", c.bucket)?, at.hex("tag", c.tag.as_ref())?)))
                    .collect::<Result<Vec<_>, AttackError>>()?;
                if copies.is_empty() {
                    return Err(at.invalid("copies", "is empty".into()));
                }
                at.choice("answer", r.answer.as_ref(), &ANSWERS)?;
                self.deposits.push(Deposit {
                    tick,
                    ms,
                    source: at.hex("source", r.source.as_ref())?,
                    forwarded: at.choice("via", r.via.as_ref(), &VIAS)? == 1,
                    batch_tick: at.need("batch_tick", r.batch_tick)?,
                    pos: at.need("pos", r.pos)?,
                    epoch: at.need("epoch", r.epoch)?,
                    seed: at.hex("seed", r.seed.as_ref())?,
                    payload: at.hex("payload", r.payload.as_ref())?,
                    copies,
                });
            }
            "stream" => self.streams.push(StreamItem {
                tick: {
                    at.hex("to", r.to.as_ref())?;
                    tick
                },
                epoch: at.need("epoch", r.epoch)?,
                bucket: at.need("bucket", r.bucket)?,
                tag: at.opt_hex("tag", r.tag.as_ref())?,
                item: at.hex("item", r.item.as_ref())?,
            }),
            "catchup" => self.catchups.push(CatchUpRequest {
                source: at.hex("source", r.source.as_ref())?,
                batch_tick: at.need("batch_tick", r.batch_tick)?,
                pos: at.need("pos", r.pos)?,
                bucket: at.need("bucket", r.bucket)?,
                epoch: at.need("epoch", r.epoch)?,
                detect: at.hex("detect", r.detect.as_ref())?,
                found: at.opt_hex("found", r.found.as_ref())?,
            }),
            "delete" => {
                at.hex("source", r.source.as_ref())?;
                at.need("ok", r.ok)?;
                self.deletes.push(DeleteRequest {
                    bucket: at.need("bucket", r.bucket)?,
                    epoch: at.need("epoch", r.epoch)?,
                    tag: at.hex("tag", r.tag.as_ref())?,
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "00112233445566aa";

    fn read(text: &str) -> Result<CuriousLog, AttackError> {
        CuriousLog::read(text.as_bytes(), RoleFilter::All)
    }

    #[test]
    fn reads_every_record_kind_of_both_roles() -> Result<(), AttackError> {
        let text = format!(
            r#"{{"role":"entry","ev":"connect","tick":1,"ms":1000,"conn":3,"peer":"127.0.0.2:4000"}}
{{"role":"entry","ev":"slot","tick":2,"ms":1100,"conn":3,"home":"{D}","epoch":0,"bucket":5,"slot":"{D}"}}
{{"role":"entry","ev":"item","tick":2,"ms":1100,"conn":3,"home":"{D}","bucket":5,"live":true,"item":"{D}"}}
{{"role":"entry","ev":"batch","tick":2,"ms":1150,"to":"{D}","batch_tick":2,"size":16,"real_from_clients":3}}

{{"role":"mailbox","ev":"slot","tick":2,"ms":1160,"source":"{D}","batch_tick":2,"pos":7,"kind":"local","dest":"{D}","request":"catchup","conn":3}}
{{"role":"mailbox","ev":"deposit","tick":2,"ms":1160,"source":"{D}","via":"local","batch_tick":2,"pos":7,"epoch":0,"seed":"{D}","payload":"{D}","copies":[{{"bucket":5,"tag":"{D}"}},{{"bucket":6,"tag":"{D}"}}],"answer":"stored"}}
{{"role":"mailbox","ev":"stream","tick":4,"ms":1400,"to":"{D}","epoch":0,"bucket":5,"tag":null,"item":"{D}"}}
{{"role":"mailbox","ev":"catchup","tick":2,"ms":1160,"source":"{D}","batch_tick":2,"pos":7,"bucket":5,"epoch":0,"detect":"{D}","found":null}}
{{"role":"mailbox","ev":"delete","tick":2,"ms":1160,"source":"{D}","bucket":5,"epoch":0,"tag":"{D}","ok":true}}
{{"role":"mailbox","ev":"register","tick":2,"ms":1160,"future":1}}
{{"role":"entry","ev":"disconnect","tick":9,"ms":1900,"conn":3}}
{{"role":"entry","ev":"item","tick":9,"ms":1900,"conn":4,"home":null,"bucket":0,"live":true,"item":"{D}"}}
{{"role":"relay","ev":"dropped","tick":0,"ms":2000,"count":17}}
"#
        );
        let log = read(&text)?;
        assert_eq!(log.lines(), 14);
        assert_eq!(log.skipped(), 1);
        assert_eq!(log.dropped(), 17);
        assert_eq!((log.connects.len(), log.items.len()), (1, 2));
        assert_eq!(log.entry_slots[0].bucket, 5);
        assert_eq!(log.entry_slots[0].slot, 0x0011_2233_4455_66aa);
        assert_eq!(log.deposits[0].copies.len(), 2);
        assert_eq!(log.streams[0].tag, None);
        assert_eq!(log.mailbox_slots[0].conn, Some(3));
        assert!(log.knows_connections() && log.has_entry() && log.has_mailbox());
        assert_eq!(log.span_ms, Some((1000.0, 1900.0)));
        let only_mailbox = CuriousLog::read(text.as_bytes(), RoleFilter::Mailbox)?;
        assert!(!only_mailbox.has_entry() && !only_mailbox.knows_connections());
        assert_eq!(only_mailbox.skipped(), 7);
        Ok(())
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_its_line() {
        let good = r#"{"role":"entry","ev":"disconnect","tick":9,"ms":1900,"conn":3}"#;
        let cases = [
            ("{\"role\":\"entry\",", "line 2: EOF"),
            (
                r#"{"role":"entry","ev":"disconnect","tick":9,"ms":1900}"#,
                "line 2: a `disconnect` record needs `conn`",
            ),
            (
                r#"{"role":"relay","ev":"disconnect","tick":9,"ms":1900,"conn":3}"#,
                "line 2: `role` is \"relay\"",
            ),
            (
                r#"{"role":"entry","tick":9,"ms":1900,"conn":3}"#,
                "line 2: a `?` record needs `ev`",
            ),
            (
                r#"{"role":"entry","ev":"slot","tick":2,"ms":1,"conn":3,"home":"xyz","epoch":0,"bucket":5,"slot":"00"}"#,
                "line 2: `home` is \"xyz\", not 16 hexadecimal digits",
            ),
            (
                r#"{"role":"mailbox","ev":"slot","tick":2,"ms":1,"source":"00112233445566aa","batch_tick":2,"pos":1,"kind":"weird","request":"none"}"#,
                "line 2: `kind` is \"weird\", not one of",
            ),
            (
                r#"{"role":"entry","ev":"disconnect","tick":-1,"ms":1900,"conn":3}"#,
                "line 2: invalid value",
            ),
            ("[1,2]", "line 2: invalid type"),
        ];
        for (bad, want) in cases {
            let text = format!("{good}\n{bad}\n{good}\n");
            match read(&text) {
                Ok(_) => unreachable!("{bad} was accepted"),
                Err(e) => assert!(e.to_string().starts_with(want), "{bad}: {e}"),
            }
        }
    }
}
