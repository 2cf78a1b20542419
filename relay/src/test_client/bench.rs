//! A single relay in a loop, without sockets or a clock, for the test client's unit
//! tests: the relay's own mailbox role (clear slots, as the single relay takes them)
//! and a small entry role that hands each client its down cell of every tick and takes
//! its up cell. Every tick is one call; nothing sleeps.

use hum_shared::route::{
    CELL_LEN, Directory, DirectoryChunk, DownCell, Hello, Item, OpenedDeposit, RelayEntry, RelayId,
    Reply, Request, UpCell, log_digest, open_clear_slot,
};
use hum_shared::{CertFingerprint, RelayAddr};

use super::core::{Core, Profile};
use super::{Card, Event};
use crate::curious::Curious;
use crate::mailbox::Mailbox;
use crate::stats::RouteStats;

/// Ticks per epoch on the bench.
pub(super) const EPOCH_TICKS: u32 = 200;
/// Buckets on the bench.
pub(super) const BUCKETS: u16 = 8;
/// The bench's first tick: the start of epoch 10.
const START: u64 = 10 * EPOCH_TICKS as u64;

/// What one up cell carried, as the bench saw it.
#[derive(Debug, Clone)]
pub(super) struct Sent {
    pub(super) tick: u64,
    pub(super) client: usize,
    /// Digest of the slot.
    pub(super) slot: String,
    /// Digest of the deposit's tag seed, if it carried one.
    pub(super) seed: Option<String>,
    /// Copies of the deposit (buckets, with repeats).
    pub(super) copies: usize,
    /// The epoch a catch-up request asked for.
    pub(super) catch_up: Option<u32>,
}

struct Seat {
    core: Option<Core>,
    /// Replies by the tick of the slot they answer.
    replies: Vec<(u64, Reply)>,
    bucket: u16,
    events: Vec<Event>,
}

/// The relay and its clients.
pub(super) struct Bench {
    id: RelayId,
    pub(super) home: RelayAddr,
    mailbox: Mailbox,
    tick: u64,
    live: Vec<Item>,
    seats: Vec<Seat>,
    chunks: Vec<DirectoryChunk>,
    directory: Directory,
    pub(super) sent: Vec<Sent>,
}

impl Bench {
    pub(super) fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let made = rcgen::generate_simple_self_signed(vec!["hum-relay".to_owned()])?;
        let home = RelayAddr {
            host: "127.0.0.1".to_owned(),
            port: 1,
            fingerprint: CertFingerprint::of_certificate(made.cert.der()),
        };
        let id = RelayId::of_fingerprint(&home.fingerprint);
        let mut config = crate::Config::ephemeral(std::time::Duration::from_millis(20));
        config.epoch_ticks = EPOCH_TICKS;
        config.buckets = crate::BucketCount::Fixed(BUCKETS);
        let mailbox = Mailbox::new(&config, id, &made.signing_key.serialize_der(), 64);
        mailbox.on_tick(START);
        let directory = Directory {
            tick: START,
            single: true,
            clients: 0,
            relays: vec![RelayEntry {
                address: home.clone(),
                certificate: made.cert.der().to_vec(),
                buckets: BUCKETS,
                epoch_ticks: EPOCH_TICKS,
                flag_bits: 8,
                epoch: 10,
                tick_in_epoch: 0,
                slot_keys: Vec::new(),
            }],
        };
        let chunks = directory.chunks()?;
        Ok(Self {
            id,
            home,
            mailbox,
            tick: START,
            live: Vec::new(),
            seats: Vec::new(),
            chunks,
            directory,
            sent: Vec::new(),
        })
    }

    /// A card homed here.
    pub(super) fn card(&self) -> Card {
        Card::new(self.home.clone())
    }

    /// The current tick.
    pub(super) fn tick(&self) -> u64 {
        self.tick
    }

    /// Seats a profile for a new session; returns its seat.
    pub(super) fn join(&mut self, profile: Profile) -> usize {
        let hello = Hello {
            tick_micros: 20_000,
            ttl_secs: 3_600,
            tick: self.tick,
            relay: self.id,
            directory: Directory {
                tick: self.tick,
                ..self.directory.clone()
            },
        };
        let mut hello = hello;
        hello.directory.relays[0].epoch = (self.tick / u64::from(EPOCH_TICKS)) as u32;
        hello.directory.relays[0].tick_in_epoch = (self.tick % u64::from(EPOCH_TICKS)) as u32;
        self.seats.push(Seat {
            core: Some(Core::new(profile, hello)),
            replies: Vec::new(),
            bucket: 0,
            events: Vec::new(),
        });
        self.seats.len() - 1
    }

    /// Ends seat `seat`'s session; its profile comes back.
    pub(super) fn leave(&mut self, seat: usize) -> Option<Profile> {
        self.seats
            .get_mut(seat)
            .and_then(|s| s.core.take())
            .map(Core::into_profile)
    }

    /// The session of seat `seat`.
    pub(super) fn core(&mut self, seat: usize) -> Option<&mut Core> {
        self.seats.get_mut(seat).and_then(|s| s.core.as_mut())
    }

    /// Events of seat `seat` so far (drained).
    pub(super) fn events(&mut self, seat: usize) -> Vec<Event> {
        self.seats
            .get_mut(seat)
            .map(|s| std::mem::take(&mut s.events))
            .unwrap_or_default()
    }

    /// One tick: the relay moves on, every seated client gets its down cell and answers.
    pub(super) fn step(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.tick += 1;
        let t = self.tick;
        self.mailbox.on_tick(t);
        if t.is_multiple_of(2) {
            self.live = self.mailbox.stream(t, &[], &Curious::default()).items;
        }
        let chunk = self.chunks[(t % self.chunks.len() as u64) as usize].clone();
        let mut slots = Vec::new();
        let mut seats = Vec::new();
        for (i, seat) in self.seats.iter_mut().enumerate() {
            let Some(core) = seat.core.as_mut() else {
                continue;
            };
            let reply = seat
                .replies
                .iter()
                .position(|(at, _)| *at + 2 == t)
                .map(|p| seat.replies.remove(p).1);
            seat.replies.retain(|(at, _)| *at + 2 > t);
            let item = if t.is_multiple_of(2) {
                self.live
                    .get(usize::from(seat.bucket))
                    .cloned()
                    .unwrap_or_else(Item::random)
            } else {
                reply.as_ref().map_or_else(Item::random, |r| r.item.clone())
            };
            let down = DownCell {
                answer: reply.map_or([0; hum_shared::route::ANSWER_LEN], |r| r.answer),
                item,
                chunk: chunk.clone(),
            };
            let up = core.take_up();
            core.on_down(&down.encode()[..])?;
            core.prepare();
            seat.events.append(&mut core.events);
            let up = UpCell::decode(&up[..CELL_LEN])?;
            seat.bucket = up.bucket;
            let opened = open_clear_slot(&up.slot)?;
            let (seed, copies) = match &opened.deposit {
                OpenedDeposit::Local(d) => {
                    (Some(log_digest(d.seed().as_bytes())), d.copies().len())
                }
                _ => (None, 0),
            };
            self.sent.push(Sent {
                tick: t,
                client: i,
                slot: log_digest(up.slot.as_bytes()),
                seed,
                copies,
                catch_up: match &opened.request {
                    Request::CatchUp(c) => Some(c.epoch),
                    _ => None,
                },
            });
            slots.push(up.slot);
            seats.push(i);
        }
        let conns: Vec<u64> = seats.iter().map(|&s| s as u64).collect();
        let work = self.mailbox.open_batch(
            self.id,
            t,
            &slots,
            Some(&conns),
            &RouteStats::default(),
            &Curious::default(),
        );
        let batch = Mailbox::seal(t, work);
        let mut items = batch.items.into_iter();
        for (seat, answer) in seats.into_iter().zip(batch.answers) {
            let item = items.next().unwrap_or_else(Item::random);
            self.seats[seat].replies.push((t, Reply { answer, item }));
        }
        Ok(())
    }

    /// `n` ticks.
    pub(super) fn run(&mut self, n: u64) -> Result<(), Box<dyn std::error::Error>> {
        for _ in 0..n {
            self.step()?;
        }
        Ok(())
    }
}
