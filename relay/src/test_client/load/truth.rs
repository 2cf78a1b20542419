//! The load's ground truth, as JSON lines (the design's section 8; docs/ATTACKS.md reads
//! it): who the users are, who knows whom, every session with the client's own address
//! (which joins the entry relay's `connect` records), each user's bucket per epoch,
//! every real deposit attempt with its tag seed (which joins the mailbox relays'
//! `deposit` records) and the answer it got, and every item a client recognised.

use std::io::Write;

use hum_shared::route::RelayId;

use super::super::SendKind;

/// Whom a deposit attempt was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// A contact.
    User(usize),
    /// A group.
    Group(usize),
    /// Nobody else (a loop).
    Nobody,
}

/// One deposit attempt, as the truth records it.
#[derive(Debug, Clone)]
pub struct SendRecord<'a> {
    /// Unix milliseconds of the beat that sent it.
    pub ms: u64,
    /// The sender.
    pub user: usize,
    /// What it carried.
    pub kind: SendKind,
    /// Whom for.
    pub to: To,
    /// Digest of the tag seed.
    pub seed: &'a str,
    /// Digest of the wrapped envelope.
    pub payload: &'a str,
    /// Digest of the sealed slot.
    pub slot: &'a str,
    /// The message's part count (padded).
    pub parts: u16,
}

/// The truth file being written.
#[derive(Debug)]
pub struct Truth<W: Write> {
    out: W,
    lines: u64,
}

impl<W: Write> Truth<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        Self { out, lines: 0 }
    }

    /// Lines written.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes and gives the writer back.
    ///
    /// # Errors
    /// The writer's.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn line(&mut self, ms: u64, ev: &str, fields: &str) -> std::io::Result<()> {
        self.lines += 1;
        writeln!(self.out, r#"{{"ev":"{ev}","ms":{ms},{fields}}}"#)
    }

    /// A user, where it enters and where it is homed.
    ///
    /// # Errors
    /// The writer's.
    pub fn user(
        &mut self,
        ms: u64,
        user: usize,
        entry: RelayId,
        home: RelayId,
    ) -> std::io::Result<()> {
        self.line(
            ms,
            "user",
            &format!(r#""user":{user},"entry":"{entry}","home":"{home}""#),
        )
    }

    /// A contact pair.
    ///
    /// # Errors
    /// The writer's.
    pub fn contact(&mut self, ms: u64, a: usize, b: usize) -> std::io::Result<()> {
        self.line(ms, "contact", &format!(r#""a":{a},"b":{b}"#))
    }

    /// A group and its members.
    ///
    /// # Errors
    /// The writer's.
    pub fn group(&mut self, ms: u64, group: usize, members: &[usize]) -> std::io::Result<()> {
        let m: Vec<String> = members.iter().map(ToString::to_string).collect();
        self.line(
            ms,
            "group",
            &format!(r#""group":{group},"members":[{}]"#, m.join(",")),
        )
    }

    /// A session: the client's own address, from `start` to `end` (Unix ms).
    ///
    /// # Errors
    /// The writer's.
    pub fn session(
        &mut self,
        ms: u64,
        user: usize,
        local: std::net::SocketAddr,
        start: u64,
        end: Option<u64>,
    ) -> std::io::Result<()> {
        let end = end.map_or_else(|| "null".to_owned(), |e| e.to_string());
        self.line(
            ms,
            "session",
            &format!(r#""user":{user},"local":"{local}","start":{start},"end":{end}"#),
        )
    }

    /// A user's bucket at its home relay in an epoch.
    ///
    /// # Errors
    /// The writer's.
    pub fn bucket(
        &mut self,
        ms: u64,
        user: usize,
        relay: RelayId,
        epoch: u32,
        bucket: u16,
    ) -> std::io::Result<()> {
        self.line(
            ms,
            "bucket",
            &format!(r#""user":{user},"relay":"{relay}","epoch":{epoch},"bucket":{bucket}"#),
        )
    }

    /// A real deposit attempt.
    ///
    /// # Errors
    /// The writer's.
    pub fn send(&mut self, s: &SendRecord<'_>) -> std::io::Result<()> {
        let kind = match s.kind {
            SendKind::Receipt => "receipt",
            SendKind::Loop => "loop",
            _ => "text",
        };
        let (to_user, to_group) = match s.to {
            To::User(u) => (u.to_string(), "null".to_owned()),
            To::Group(g) => ("null".to_owned(), g.to_string()),
            To::Nobody => ("null".to_owned(), "null".to_owned()),
        };
        self.line(
            s.ms,
            "send",
            &format!(
                r#""user":{},"kind":"{kind}","to_user":{to_user},"to_group":{to_group},"seed":"{}","payload":"{}","slot":"{}","parts":{}"#,
                s.user, s.seed, s.payload, s.slot, s.parts
            ),
        )
    }

    /// The answer a deposit attempt got (`stored`, `full`, `retry` or `unknown`): not a
    /// record of the design's list (readers skip it), but what makes the join with the
    /// mailbox logs exact: an attempt answered `stored` is in one of them.
    ///
    /// # Errors
    /// The writer's.
    pub fn answer(
        &mut self,
        ms: u64,
        user: usize,
        seed: &str,
        answer: &str,
    ) -> std::io::Result<()> {
        self.line(
            ms,
            "answer",
            &format!(r#""user":{user},"seed":"{seed}","answer":"{answer}""#),
        )
    }

    /// An item a client recognised, at its entry relay's tick `tick`.
    ///
    /// # Errors
    /// The writer's.
    pub fn receive(&mut self, ms: u64, user: usize, seed: &str, tick: u64) -> std::io::Result<()> {
        self.line(
            ms,
            "receive",
            &format!(r#""user":{user},"seed":"{seed}","tick":{tick}"#),
        )
    }
}
