//! The load generator's ground truth (docs/ATTACKS.md): users, contacts, groups, sessions,
//! buckets, every real deposit attempt and every item a client recognised, plus the
//! equivocation periods of a run that tests them.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::error::AttackError;
use super::field::{At, Name, each_line};

/// What a real deposit attempt carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendKind {
    Text,
    Receipt,
    Loop,
    Invite,
}

/// One user.
#[derive(Debug, Clone, Default)]
pub(crate) struct User {
    pub(crate) entry: Option<u64>,
    pub(crate) home: Option<u64>,
}

/// One client session: the client's own address and when it was connected.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) user: u32,
    pub(crate) local: String,
    pub(crate) start: f64,
    pub(crate) end: Option<f64>,
}

/// One real deposit attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Send {
    pub(crate) ms: f64,
    pub(crate) user: u32,
    pub(crate) kind: SendKind,
    pub(crate) to_user: Option<u32>,
    pub(crate) to_group: Option<u32>,
    pub(crate) seed: u64,
    /// The slot digest, when the load generator writes it (an exact join to the entry log).
    pub(crate) slot: Option<u64>,
}

/// A period in which a mailbox relay withheld a bucket's stream from one entry relay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Equivocation {
    pub(crate) to: u64,
    pub(crate) bucket: u16,
    pub(crate) start: f64,
    pub(crate) end: f64,
}

/// Everything the ground truth says.
#[derive(Debug, Default)]
pub struct Truth {
    pub(crate) users: Vec<User>,
    user_index: HashMap<String, u32>,
    /// Unordered contact pairs, smaller user first.
    pub(crate) contacts: HashSet<(u32, u32)>,
    /// Members of each group, by group index.
    pub(crate) groups: Vec<Vec<u32>>,
    group_index: HashMap<String, u32>,
    pub(crate) sessions: Vec<Session>,
    /// (user, relay, epoch) to bucket.
    pub(crate) buckets: HashMap<(u32, u64, u32), u16>,
    pub(crate) sends: Vec<Send>,
    pub(crate) equivocations: Vec<Equivocation>,
    receives: usize,
    skipped: usize,
}

#[derive(Debug, Deserialize)]
struct RawTruth<'a> {
    #[serde(borrow)]
    ev: Option<Cow<'a, str>>,
    ms: Option<f64>,
    #[serde(borrow)]
    user: Option<Name<'a>>,
    #[serde(borrow)]
    entry: Option<Cow<'a, str>>,
    #[serde(borrow)]
    home: Option<Cow<'a, str>>,
    #[serde(borrow)]
    a: Option<Name<'a>>,
    #[serde(borrow)]
    b: Option<Name<'a>>,
    #[serde(borrow)]
    group: Option<Name<'a>>,
    #[serde(borrow)]
    members: Option<Vec<Name<'a>>>,
    #[serde(borrow)]
    local: Option<Cow<'a, str>>,
    start: Option<f64>,
    end: Option<f64>,
    #[serde(borrow)]
    relay: Option<Cow<'a, str>>,
    epoch: Option<u32>,
    bucket: Option<u16>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to_user: Option<Name<'a>>,
    #[serde(borrow)]
    to_group: Option<Name<'a>>,
    #[serde(borrow)]
    seed: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<Cow<'a, str>>,
    parts: Option<u32>,
    tick: Option<u64>,
    #[serde(borrow)]
    slot: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to: Option<Cow<'a, str>>,
}

const SEND_KINDS: [&str; 4] = ["text", "receipt", "loop", "invite"];

impl Truth {
    /// Reads a ground-truth file. Records of an event this program does not know are
    /// skipped and counted.
    ///
    /// # Errors
    /// A line that is not JSON, a record without a field its event needs or with a value
    /// outside its format, or a read error; each names its line.
    pub fn read<R: std::io::BufRead>(input: R) -> Result<Self, AttackError> {
        let mut t = Truth::default();
        each_line(input, |line, text| t.add(line, text))?;
        Ok(t)
    }

    /// Number of users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Number of real deposit attempts.
    pub fn send_count(&self) -> usize {
        self.sends.len()
    }

    /// Number of recognised items.
    pub fn receive_count(&self) -> usize {
        self.receives
    }

    /// Records skipped (events this program does not know).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    pub(crate) fn user(&mut self, name: &Name<'_>) -> u32 {
        let key = name.key();
        if let Some(&i) = self.user_index.get(key.as_ref()) {
            return i;
        }
        let i = self.users.len() as u32;
        self.users.push(User::default());
        self.user_index.insert(key.into_owned(), i);
        i
    }

    fn group(&mut self, name: &Name<'_>) -> u32 {
        let key = name.key();
        if let Some(&i) = self.group_index.get(key.as_ref()) {
            return i;
        }
        let i = self.groups.len() as u32;
        self.groups.push(Vec::new());
        self.group_index.insert(key.into_owned(), i);
        i
    }

    /// Whether `a` and `b` are contacts.
    pub(crate) fn is_contact(&self, a: u32, b: u32) -> bool {
        self.contacts.contains(&(a.min(b), a.max(b)))
    }

    fn add(&mut self, line: usize, text: &str) -> Result<(), AttackError> {
        let r: RawTruth<'_> =
            serde_json::from_str(text).map_err(|e| AttackError::json(line, &e))?;
        let ev = At { line, ev: "?" }.need("ev", r.ev.as_deref())?;
        let at = At { line, ev };
        let ms = at.need("ms", r.ms)?;
        match ev {
            "user" => {
                let u = self.user(at.need("user", r.user.as_ref())?);
                let entry = at.hex("entry", r.entry.as_ref())?;
                let home = at.hex("home", r.home.as_ref())?;
                let user = &mut self.users[u as usize];
                user.entry = Some(entry);
                user.home = Some(home);
            }
            "contact" => {
                let a = self.user(at.need("a", r.a.as_ref())?);
                let b = self.user(at.need("b", r.b.as_ref())?);
                if a == b {
                    return Err(at.invalid("b", "is the same user as `a`".into()));
                }
                self.contacts.insert((a.min(b), a.max(b)));
            }
            "group" => {
                let g = self.group(at.need("group", r.group.as_ref())?);
                let mut members: Vec<u32> = at
                    .need("members", r.members.as_ref())?
                    .iter()
                    .map(|m| self.user(m))
                    .collect();
                members.sort_unstable();
                members.dedup();
                self.groups[g as usize] = members;
            }
            "session" => {
                let user = self.user(at.need("user", r.user.as_ref())?);
                self.sessions.push(Session {
                    user,
                    local: at.need("local", r.local.as_deref())?.to_owned(),
                    start: at.need("start", r.start)?,
                    end: r.end,
                });
            }
            "bucket" => {
                let user = self.user(at.need("user", r.user.as_ref())?);
                let relay = at.hex("relay", r.relay.as_ref())?;
                let epoch = at.need("epoch", r.epoch)?;
                let bucket = at.need("bucket", r.bucket)?;
                self.buckets.insert((user, relay, epoch), bucket);
            }
            "send" => {
                let user = self.user(at.need("user", r.user.as_ref())?);
                let kind = match at.choice("kind", r.kind.as_ref(), &SEND_KINDS)? {
                    0 => SendKind::Text,
                    1 => SendKind::Receipt,
                    2 => SendKind::Loop,
                    _ => SendKind::Invite,
                };
                let to_user = r.to_user.as_ref().map(|n| self.user(n));
                let to_group = r.to_group.as_ref().map(|n| self.group(n));
                at.hex("payload", r.payload.as_ref())?;
                at.need("parts", r.parts)?;
                self.sends.push(Send {
                    ms,
                    user,
                    kind,
                    to_user,
                    to_group,
                    seed: at.hex("seed", r.seed.as_ref())?,
                    slot: at.opt_hex("slot", r.slot.as_ref())?,
                });
            }
            "receive" => {
                self.user(at.need("user", r.user.as_ref())?);
                at.hex("seed", r.seed.as_ref())?;
                at.need("tick", r.tick)?;
                self.receives += 1;
            }
            "equivocate" => {
                at.hex("relay", r.relay.as_ref())?;
                at.need("epoch", r.epoch)?;
                let start = at.need("start", r.start)?;
                let end = at.need("end", r.end)?;
                if end <= start {
                    return Err(at.invalid("end", "is not after `start`".into()));
                }
                self.equivocations.push(Equivocation {
                    to: at.hex("to", r.to.as_ref())?,
                    bucket: at.need("bucket", r.bucket)?,
                    start,
                    end,
                });
            }
            _ => self.skipped += 1,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "aaaaaaaaaaaaaaaa";

    #[test]
    fn reads_every_record_kind_with_numeric_or_string_names() -> Result<(), AttackError> {
        let text = format!(
            r#"{{"ev":"user","ms":1,"user":0,"entry":"{R}","home":"{R}"}}
{{"ev":"user","ms":1,"user":"bob","entry":"{R}","home":"{R}"}}
{{"ev":"contact","ms":1,"a":0,"b":"bob"}}
{{"ev":"group","ms":1,"group":"g","members":["bob",0,0]}}
{{"ev":"session","ms":1,"user":0,"local":"127.0.0.2:4000","start":10,"end":null}}
{{"ev":"bucket","ms":1,"user":"bob","relay":"{R}","epoch":3,"bucket":9}}
{{"ev":"send","ms":1,"user":0,"kind":"text","to_user":"bob","to_group":null,"seed":"{R}","payload":"{R}","parts":1}}
{{"ev":"send","ms":1,"user":"bob","kind":"text","to_user":null,"to_group":"g","seed":"{R}","payload":"{R}","parts":4,"slot":"{R}"}}
{{"ev":"receive","ms":1,"user":"bob","seed":"{R}","tick":12}}
{{"ev":"equivocate","ms":1,"relay":"{R}","to":"{R}","bucket":2,"epoch":0,"start":100,"end":200}}
{{"ev":"weather","ms":1}}
"#
        );
        let t = Truth::read(text.as_bytes())?;
        assert_eq!(t.user_count(), 2);
        assert!(t.is_contact(1, 0));
        assert_eq!(t.groups, vec![vec![0, 1]]);
        assert_eq!(t.sessions[0].end, None);
        assert_eq!(t.buckets.get(&(1, 0xaaaa_aaaa_aaaa_aaaa, 3)), Some(&9));
        assert_eq!(t.sends[0].to_user, Some(1));
        assert_eq!(t.sends[1].to_group, Some(0));
        assert_eq!(t.sends[1].slot, Some(0xaaaa_aaaa_aaaa_aaaa));
        assert_eq!((t.receive_count(), t.skipped()), (1, 1));
        assert_eq!(t.equivocations[0].bucket, 2);
        Ok(())
    }

    #[test]
    fn a_malformed_truth_line_names_its_line() {
        let cases = [
            (
                "{\"ev\":\"contact\",\"ms\":1,\"a\":1}",
                "line 2: a `contact` record needs `b`",
            ),
            (
                "{\"ev\":\"contact\",\"ms\":1,\"a\":1,\"b\":1}",
                "line 2: `b` is the same user",
            ),
            (
                "{\"ev\":\"send\",\"ms\":1,\"user\":1,\"kind\":\"shout\"}",
                "line 2: `kind` is \"shout\"",
            ),
            (
                "{\"ev\":\"user\",\"user\":1}",
                "line 2: a `user` record needs `ms`",
            ),
            ("not json", "line 2: expected"),
        ];
        for (bad, want) in cases {
            let text = format!("{{\"ev\":\"contact\",\"ms\":1,\"a\":1,\"b\":2}}\n{bad}\n");
            match Truth::read(text.as_bytes()) {
                Ok(_) => unreachable!("{bad} was accepted"),
                Err(e) => assert!(e.to_string().starts_with(want), "{bad}: {e}"),
            }
        }
    }
}
