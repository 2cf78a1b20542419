//! Structure-aware fuzzing of everything behind an envelope's decryption. A fixture holds a
//! 1:1 session (both sides) and a two-member group; the fuzzer chooses a sequence of
//! operations: real seals of its plaintexts (whole, or split into parts as the client
//! does), seals under ratchet and group headers of its choosing (DH key, PN, N; member id,
//! iteration, signature), handshakes, raw bytes, and deliveries of what was sealed, with a
//! byte flipped or not. So the header parsing, the ratchet's skip, replay and DH steps, the
//! group's sender-key lookup and signature check, the split-part headers and the client's
//! message decoder all see arbitrary, authenticated input.
//!
//! Invariants: nothing panics; an open that fails leaves the state exactly as it was; an
//! envelope with a flipped byte never opens; one that opens yields what was sealed in it.
#![no_main]

use std::sync::OnceLock;

use hum_shared::crypto::{
    ENVELOPE_LEN, Envelope, GroupSender, GroupState, Identity, Invite, InviteSecret, Session,
};
use hum_shared::{Reassembler, split};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    alice: Identity,
    bob: Identity,
    invite: Invite,
    secret: InviteSecret,
    /// Alice's side of the session (the inviter) and Bob's.
    a: Session,
    b: Session,
    /// Alice's group state (the sender) and Bob's (the reader).
    ga: GroupState,
    gb: GroupState,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let alice = Identity::generate();
        let bob = Identity::generate();
        let (invite, secret) = alice
            .create_invite("hum://127.0.0.1:7447#00", 3600, 0)
            .expect("a short relay address always fits");
        let (b, first) = Session::initiate(&bob, &invite, b"hi").expect("a short message fits");
        let (a, _, _) = Session::respond(&alice, &secret, &first).expect("a real answer opens");
        let mut ga = GroupState::create();
        let gb = GroupState::from_distribution(&ga.distribution(), &alice.fingerprint())
            .expect("a fresh distribution is valid");
        ga.process_distribution(&gb.distribution(), &bob.fingerprint())
            .expect("a fresh distribution is valid");
        Fixture {
            alice,
            bob,
            invite,
            secret,
            a,
            b,
            ga,
            gb,
        }
    })
}

/// A counter in a header: up to 31 steps ahead of the sender's own (the receiver derives
/// and keeps the skipped keys), or any value at all (mostly far out of range, refused
/// before any key is derived).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Counter {
    Ahead(u8),
    Any(u32),
}

impl Counter {
    fn value(self, current: u32) -> u32 {
        match self {
            Counter::Ahead(n) => current.saturating_add(u32::from(n % 32)),
            Counter::Any(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// One side of the session seals the text; `split` cuts it into parts first.
    Seal {
        from_bob: bool,
        split: bool,
        text: Vec<u8>,
    },
    /// One side seals under a ratchet header of the fuzzer's choosing.
    SealHeader {
        from_bob: bool,
        dh: Option<[u8; 32]>,
        pn: Counter,
        n: Counter,
        text: Vec<u8>,
    },
    /// Alice seals to the group.
    GroupSeal { split: bool, text: Vec<u8> },
    /// Alice seals to the group under a header (and signature) of the fuzzer's choosing.
    GroupHeader {
        member: Option<[u8; 32]>,
        iteration: Counter,
        signature: Option<[u8; 64]>,
        text: Vec<u8>,
    },
    /// Delivers an envelope made so far to its reader, possibly with a byte flipped.
    Deliver { which: u8, flip: Option<(u16, u8)> },
    /// Bytes of the fuzzer's own, to every reader.
    Raw { bytes: Vec<u8> },
    /// Bob answers Alice's invite; the answer may have a byte flipped.
    Handshake {
        text: Vec<u8>,
        flip: Option<(u16, u8)>,
    },
}

/// Who reads an envelope.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    Alice,
    Bob,
    Group,
}

struct Sealed {
    reader: Reader,
    envelope: Envelope,
    plaintext: Vec<u8>,
}

struct Run {
    a: Session,
    b: Session,
    ga: GroupState,
    gb: GroupState,
    sealed: Vec<Sealed>,
    parts: [Reassembler; 3],
}

fn reassembler(part_size: usize) -> Reassembler {
    Reassembler::new(part_size, 64 * 1024, 16, 32 * 1024)
}

impl Run {
    fn new(f: &Fixture) -> Run {
        Run {
            a: f.a.clone(),
            b: f.b.clone(),
            ga: f.ga.clone(),
            gb: f.gb.clone(),
            sealed: Vec::new(),
            parts: [
                reassembler(Session::PLAINTEXT_CAPACITY),
                reassembler(Session::PLAINTEXT_CAPACITY),
                reassembler(GroupSender::PLAINTEXT_CAPACITY),
            ],
        }
    }

    fn texts(split_it: bool, text: &[u8], capacity: usize) -> Vec<Vec<u8>> {
        if split_it {
            split(7, text, capacity).unwrap_or_default()
        } else {
            vec![text[..text.len().min(capacity)].to_vec()]
        }
    }

    fn keep(&mut self, reader: Reader, envelope: Envelope, plaintext: Vec<u8>) {
        if self.sealed.len() < 64 {
            self.sealed.push(Sealed {
                reader,
                envelope,
                plaintext,
            });
        }
    }

    fn op(&mut self, f: &Fixture, op: Op) {
        match op {
            Op::Seal {
                from_bob,
                split,
                text,
            } => {
                for part in Run::texts(split, &text, Session::PLAINTEXT_CAPACITY) {
                    let (sender, reader) = if from_bob {
                        (&mut self.b, Reader::Alice)
                    } else {
                        (&mut self.a, Reader::Bob)
                    };
                    let envelope = sender.seal(&part).expect("a fitting part seals");
                    self.keep(reader, envelope, part);
                }
            }
            Op::SealHeader {
                from_bob,
                dh,
                pn,
                n,
                text,
            } => {
                let text = &text[..text.len().min(Session::PLAINTEXT_CAPACITY)];
                let (sender, reader) = if from_bob {
                    (&self.b, Reader::Alice)
                } else {
                    (&self.a, Reader::Bob)
                };
                let (sent, previous) = sender.fuzz_counters();
                let envelope = sender
                    .fuzz_seal(dh, pn.value(previous), n.value(sent), text)
                    .expect("a fitting text seals");
                self.keep(reader, envelope, text.to_vec());
            }
            Op::GroupSeal { split, text } => {
                for part in Run::texts(split, &text, GroupSender::PLAINTEXT_CAPACITY) {
                    let envelope = self.ga.seal(&part).expect("a fitting part seals");
                    self.keep(Reader::Group, envelope, part);
                }
            }
            Op::GroupHeader {
                member,
                iteration,
                signature,
                text,
            } => {
                let text = &text[..text.len().min(GroupSender::PLAINTEXT_CAPACITY)];
                let iteration = iteration.value(self.ga.sender().iteration());
                let envelope = self
                    .ga
                    .fuzz_seal(member, iteration, text, signature)
                    .expect("a fitting text seals");
                self.keep(Reader::Group, envelope, text.to_vec());
            }
            Op::Deliver { which, flip } => {
                let Some(s) = self
                    .sealed
                    .get(usize::from(which) % self.sealed.len().max(1))
                else {
                    return;
                };
                let (reader, mut bytes, plaintext) =
                    (s.reader, *s.envelope.as_bytes(), s.plaintext.clone());
                let flipped = flip.is_some_and(|(_, x)| x != 0);
                if let Some((at, x)) = flip {
                    bytes[usize::from(at) % ENVELOPE_LEN] ^= x;
                }
                let envelope = Envelope::from_bytes(&bytes).expect("an envelope's length");
                if let Some(opened) = self.open(reader, &envelope) {
                    assert!(!flipped, "an envelope with a flipped byte opened");
                    assert_eq!(opened, plaintext, "an envelope opened to another text");
                }
            }
            Op::Raw { mut bytes } => {
                bytes.resize(ENVELOPE_LEN, 0);
                let envelope = Envelope::from_bytes(&bytes).expect("an envelope's length");
                for reader in [Reader::Alice, Reader::Bob, Reader::Group] {
                    let _ = self.open(reader, &envelope);
                }
                let _ = Session::respond(&f.alice, &f.secret, &envelope);
            }
            Op::Handshake { text, flip } => {
                let text = &text[..text.len().min(Session::INITIAL_PLAINTEXT_CAPACITY)];
                let (_, first) =
                    Session::initiate(&f.bob, &f.invite, text).expect("a fitting text seals");
                let mut bytes = *first.as_bytes();
                let flipped = flip.is_some_and(|(_, x)| x != 0);
                if let Some((at, x)) = flip {
                    bytes[usize::from(at) % ENVELOPE_LEN] ^= x;
                }
                let envelope = Envelope::from_bytes(&bytes).expect("an envelope's length");
                match Session::respond(&f.alice, &f.secret, &envelope) {
                    Ok((_, who, opened)) => {
                        assert!(!flipped, "a handshake with a flipped byte opened");
                        assert_eq!(who, f.bob.public());
                        assert_eq!(opened, text);
                        hum::engine::fuzzing::group_control(&opened);
                    }
                    Err(_) => assert!(flipped, "a real handshake did not open"),
                }
            }
        }
    }

    /// Opens at `reader`, checking that a failure leaves its state as it was, and feeds
    /// what opens to the reader's part reassembler and the client's message decoder.
    fn open(&mut self, reader: Reader, envelope: &Envelope) -> Option<Vec<u8>> {
        let (opened, slot) = match reader {
            Reader::Alice | Reader::Bob => {
                let (session, slot) = if reader == Reader::Alice {
                    (&mut self.a, 0)
                } else {
                    (&mut self.b, 1)
                };
                let before = session.to_bytes().expect("a session encodes");
                let opened = session.open(envelope);
                if opened.is_err() {
                    let after = session.to_bytes().expect("a session encodes");
                    assert_eq!(*before, *after, "a failed open changed the session");
                }
                (opened.ok(), slot)
            }
            Reader::Group => {
                let before = self.gb.to_bytes().expect("a group state encodes");
                let opened = self.gb.open(envelope);
                if opened.is_err() {
                    let after = self.gb.to_bytes().expect("a group state encodes");
                    assert_eq!(*before, *after, "a failed open changed the group");
                }
                (opened.ok().map(|(_, text)| text), 2)
            }
        };
        let opened = opened?;
        if let Ok(Some((_, payload))) = self.parts[slot].insert(&pad(&opened, slot)) {
            hum::engine::fuzzing::group_control(&payload);
        }
        hum::engine::fuzzing::group_control(&opened);
        Some(opened)
    }
}

/// A part as the client stores it: the plaintext, zero-padded to the part size.
fn pad(text: &[u8], slot: usize) -> Vec<u8> {
    let size = if slot == 2 {
        GroupSender::PLAINTEXT_CAPACITY
    } else {
        Session::PLAINTEXT_CAPACITY
    };
    let mut part = text.to_vec();
    part.resize(size, 0);
    part
}

fuzz_target!(|ops: Vec<Op>| {
    let f = fixture();
    let mut run = Run::new(f);
    for op in ops.into_iter().take(12) {
        run.op(f, op);
    }
});
