//! The test client's behaviour on a bench relay (no sockets, no clock): part classes,
//! receipts, loops, catch-up delays, sessions that end and resume, and the ground truth
//! each deposit reports.

use std::collections::HashSet;

use hum_shared::route::{GroupTagKey, TagKey};

use super::super::bench::{Bench, EPOCH_TICKS};
use super::*;

type Res = Result<(), Box<dyn std::error::Error>>;

fn profile(card: Card, behaviour: Behaviour, seed: u64) -> Profile {
    Profile::new(card, Vec::new(), behaviour, Rng::seeded(seed))
}

/// Two contacts homed at the bench relay, each contact 0 of the other.
fn pair(bench: &Bench, a: Behaviour, b: Behaviour) -> (Profile, Profile) {
    let (ca, cb) = (bench.card(), bench.card());
    let (ab, ba) = (TagKey::generate(), TagKey::generate());
    let mut pa = profile(ca.clone(), a, 1);
    let mut pb = profile(cb.clone(), b, 2);
    pa.add_contact(cb, ab.clone(), ba.clone());
    pb.add_contact(ca, ba, ab);
    (pa, pb)
}

fn core(bench: &mut Bench, seat: usize) -> Result<&mut Core, String> {
    bench
        .core(seat)
        .ok_or_else(|| format!("seat {seat} is empty"))
}

struct Got {
    kind: SendKind,
    msg: u64,
    part: u16,
    parts: u16,
    acks: Vec<u64>,
    seed: String,
    tick: u64,
    from: Origin,
    again: bool,
}

fn received(events: &[Event]) -> Vec<Got> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Received {
                kind,
                msg,
                part,
                parts,
                acks,
                seed,
                tick,
                from,
                again,
                ..
            } => Some(Got {
                kind: *kind,
                msg: *msg,
                part: *part,
                parts: *parts,
                acks: acks.clone(),
                seed: seed.clone(),
                tick: *tick,
                from: *from,
                again: *again,
            }),
            _ => None,
        })
        .collect()
}

/// (kind, msg, part, parts, seed, slot, tick) of every deposit.
type Dep = (SendKind, u64, u16, u16, String, String, u64);

fn deposited(events: &[Event]) -> Vec<Dep> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Deposited {
                kind,
                msg,
                part,
                parts,
                seed,
                slot,
                tick,
                ..
            } => Some((
                *kind,
                *msg,
                *part,
                *parts,
                seed.clone(),
                slot.clone(),
                *tick,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn part_counts_are_padded_to_their_classes() {
    let classes: Vec<u16> = [0, 1, 2, 4, 5, 16, 17, 33].map(padded_parts).to_vec();
    assert_eq!(classes, [1, 1, 4, 4, 16, 16, 32, 48]);
}

#[test]
fn a_text_goes_out_in_its_padded_parts_and_every_deposit_reports_the_seed_and_slot_the_relay_sees()
-> Res {
    let mut bench = Bench::new()?;
    let (pa, pb) = pair(&bench, Behaviour::default(), Behaviour::default());
    let (a, b) = (bench.join(pa), bench.join(pb));
    bench.run(3)?;
    assert_eq!(core(&mut bench, a)?.queue_text(Target::Contact(0), 7, 3), 4);
    bench.run(20)?;
    let dep = deposited(&bench.events(a));
    assert_eq!(dep.len(), 4, "{dep:?}");
    assert!(
        dep.iter()
            .all(|d| d.0 == SendKind::Text && d.1 == 7 && d.3 == 4)
    );
    assert_eq!(
        dep.iter().map(|d| d.2).collect::<Vec<_>>(),
        [0, 1, 2, 3],
        "one part per slot, in order"
    );
    // The ground truth joins what the relay saw: the slot of that tick, its seed.
    for d in &dep {
        let sent = bench
            .sent
            .iter()
            .find(|s| s.client == a && s.tick == d.6)
            .ok_or("no such up cell")?;
        assert_eq!((Some(&d.4), &d.5), (sent.seed.as_ref(), &sent.slot));
        assert_eq!(sent.copies, 1);
    }
    let got = received(&bench.events(b));
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|g| g.kind == SendKind::Text
        && g.msg == 7
        && g.parts == 4
        && g.from == Origin::Contact(0)
        && !g.again));
    let seeds: HashSet<&String> = got.iter().map(|g| &g.seed).collect();
    assert_eq!(seeds, dep.iter().map(|d| &d.4).collect());
    // Live, as fast as the bucket streams: an item every second tick.
    for g in &got {
        let left = dep.iter().find(|d| d.4 == g.seed).map_or(0, |d| d.6);
        assert!(g.tick > left && g.tick <= left + 8, "{} {left}", g.tick);
    }
    Ok(())
}

#[test]
fn a_receipt_rides_the_next_text_or_goes_out_alone_after_its_delay_and_never_twice() -> Res {
    let mut bench = Bench::new()?;
    // B's receipts wait a long time: a text of B's carries them first.
    let slow = Behaviour {
        receipt_delay: 1e9,
        ..Behaviour::default()
    };
    let (pa, pb) = pair(&bench, Behaviour::default(), slow);
    let (a, b) = (bench.join(pa), bench.join(pb));
    bench.run(3)?;
    core(&mut bench, a)?.queue_text(Target::Contact(0), 1, 1);
    core(&mut bench, a)?.queue_text(Target::Contact(0), 2, 1);
    bench.run(40)?;
    assert!(
        deposited(&bench.events(b)).is_empty(),
        "no receipt before its time"
    );
    core(&mut bench, b)?.queue_text(Target::Contact(0), 100, 1);
    bench.run(10)?;
    let got = received(&bench.events(a));
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].kind, got[0].msg, got[0].acks.clone()),
        (SendKind::Text, 100, vec![1, 2])
    );

    // A's receipts go out alone after an exponential delay of mean 30 ticks.
    let mut bench = Bench::new()?;
    let quick = Behaviour {
        receipt_delay: 30.0,
        ..Behaviour::default()
    };
    let (pa, pb) = pair(&bench, Behaviour::default(), quick);
    let (a, b) = (bench.join(pa), bench.join(pb));
    bench.run(3)?;
    core(&mut bench, a)?.queue_text(Target::Contact(0), 5, 4);
    bench.run(400)?;
    let receipts = deposited(&bench.events(b));
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].0, SendKind::Receipt);
    let got = received(&bench.events(a));
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].kind, got[0].acks.clone()),
        (SendKind::Receipt, vec![5])
    );
    // A catch-up brings the four parts again: seen already, no second receipt.
    let epoch = core(&mut bench, b)?.epoch().ok_or("no epoch")?;
    core(&mut bench, b)?.catch_up(epoch);
    bench.run(60)?;
    let events = bench.events(b);
    assert!(events.contains(&Event::CaughtUp { epoch }));
    assert!(received(&events).is_empty() && deposited(&events).is_empty());
    Ok(())
}

#[test]
fn loops_follow_their_poisson_rate_into_the_senders_own_bucket() -> Res {
    let mut bench = Bench::new()?;
    let loops = Behaviour {
        loop_every: Some(10.0),
        ..Behaviour::default()
    };
    let (pa, pb) = pair(&bench, loops, Behaviour::default());
    let (a, b) = (bench.join(pa), bench.join(pb));
    bench.run(1_000)?;
    let events = bench.events(a);
    let dep = deposited(&events);
    // 1,000 ticks at one per 10: 100 expected, a standard deviation of 10.
    assert!((60..=140).contains(&dep.len()), "{}", dep.len());
    assert!(dep.iter().all(|d| d.0 == SendKind::Loop));
    let got = received(&events);
    assert!(
        got.iter()
            .all(|g| g.kind == SendKind::Loop && g.from == Origin::Own)
    );
    // Every loop comes back (but those of the last few ticks, and those the epoch
    // change left for the catch-up the bench does not wait for).
    assert!(got.len() + 8 >= dep.len(), "{} of {}", got.len(), dep.len());
    assert!(
        received(&bench.events(b)).is_empty(),
        "nobody else reads them"
    );
    Ok(())
}

#[test]
fn after_an_absence_each_missed_epoch_is_caught_up_on_its_own_after_its_own_delay() -> Res {
    let mut bench = Bench::new()?;
    let wait = Behaviour {
        catch_up_delay: 10.0,
        ..Behaviour::default()
    };
    let (pa, pb) = pair(&bench, Behaviour::default(), wait);
    let (a, b) = (bench.join(pa), bench.join(pb));
    bench.run(3)?;
    let away = bench.leave(b).ok_or("no session")?;
    let left_in = away.last_epoch().ok_or("no epoch seen")?;
    // A writes to B over two epoch changes, one text every 20 ticks.
    let mut sent = 0;
    while bench.tick() < u64::from(left_in + 2) * u64::from(EPOCH_TICKS) + 5 {
        if bench.tick() % 20 == 0 {
            sent += 1;
            core(&mut bench, a)?.queue_text(Target::Contact(0), sent, 1);
        }
        bench.step()?;
    }
    let back = bench.tick();
    let b = bench.join(away);
    // Until just before the next epoch change (which owes that epoch once more).
    bench.run(u64::from(left_in + 3) * u64::from(EPOCH_TICKS) - 1 - back)?;
    let events = bench.events(b);
    let caught: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::CaughtUp { epoch } => Some(*epoch),
            _ => None,
        })
        .collect();
    let mut sorted = caught.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [left_in, left_in + 1, left_in + 2]);
    // The requests of one epoch are not mixed with another's, each epoch starts after
    // its own delay (not all at once), and each asks at least ranks 0 and 1 (an epoch
    // with nothing for B stops there; one with texts asks a rank more than it has).
    let asked: Vec<(u64, u32)> = bench
        .sent
        .iter()
        .filter(|s| s.client == b && s.tick > back)
        .filter_map(|s| s.catch_up.map(|e| (s.tick, e)))
        .collect();
    let mut runs: Vec<(u32, u64, usize)> = Vec::new();
    for &(tick, e) in &asked {
        match runs.last_mut() {
            Some(r) if r.0 == e => r.2 += 1,
            _ => runs.push((e, tick, 1)),
        }
    }
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().all(|r| r.2 >= 2), "{runs:?}");
    assert!(runs[0].1 > back + 1, "the first waits its delay: {runs:?}");
    // Every text sent while B was away, once.
    let texts: HashSet<u64> = received(&events)
        .iter()
        .filter(|g| g.kind == SendKind::Text && !g.again)
        .map(|g| g.msg)
        .collect();
    assert_eq!(texts, (1..=sent).collect());
    Ok(())
}

#[test]
fn a_profile_goes_on_across_sessions_without_a_tag_seed_twice_and_keeps_what_was_in_flight() -> Res
{
    let mut bench = Bench::new()?;
    let (pa, pb) = pair(&bench, Behaviour::default(), Behaviour::default());
    let (a, b) = (bench.join(pa), bench.join(pb));
    bench.run(3)?;
    core(&mut bench, a)?.queue_text(Target::Contact(0), 1, 4);
    // Two parts leave (after the cell sealed before they came), then the session ends
    // with two in flight, one sealed into the next cell and one waiting.
    bench.run(3)?;
    let first = deposited(&bench.events(a));
    let profile = bench.leave(a).ok_or("no session")?;
    assert_eq!(first.len(), 2);
    assert_eq!(profile.outbox_len(), 2 + 2, "in flight back to the outbox");
    bench.run(5)?;
    let a = bench.join(profile);
    bench.run(20)?;
    let second = deposited(&bench.events(a));
    let seeds: HashSet<&String> = first.iter().chain(&second).map(|d| &d.4).collect();
    assert_eq!(seeds.len(), first.len() + second.len(), "no seed twice");
    let got = received(&bench.events(b));
    let parts: Vec<u16> = {
        let mut p: Vec<u16> = got.iter().filter(|g| !g.again).map(|g| g.part).collect();
        p.sort_unstable();
        p
    };
    assert_eq!(parts, [0, 1, 2, 3], "each part once, whatever came twice");
    Ok(())
}

#[test]
fn a_group_text_is_one_deposit_per_destination_relay_with_a_copy_per_member_there() -> Res {
    let mut bench = Bench::new()?;
    let other = RelayAddr {
        host: "127.0.0.1".to_owned(),
        port: 2,
        fingerprint: hum_shared::CertFingerprint([9; 32]),
    };
    let key = GroupTagKey::derive(
        &hum_shared::crypto::GroupId::from_bytes([3; 16]),
        &[4; 32],
        0,
    )?;
    let here: Vec<(Card, TagKey)> = (0..3).map(|_| (bench.card(), TagKey::generate())).collect();
    let mut members = here.clone();
    members.push((Card::new(other.clone()), TagKey::generate()));
    members.push((Card::new(other), TagKey::generate()));
    let mut seats = Vec::new();
    for (i, (card, _)) in here.iter().enumerate() {
        let mut p = profile(card.clone(), Behaviour::default(), i as u64);
        p.add_group(&members, i, key.clone());
        seats.push(p);
    }
    // The speaker's outbox: per part, one deposit for each relay, copies for its members.
    let mut speaker = seats[0].clone();
    assert_eq!(speaker.queue_text(Target::Group(0), 9, 2), 4);
    let per_relay: Vec<usize> = speaker.outbox.iter().take(2).map(|m| m.to.len()).collect();
    let mut sorted = per_relay.clone();
    sorted.sort_unstable();
    assert_eq!((speaker.outbox.len(), sorted), (8, vec![2, 3]));
    // On the bench (the three members homed here): one deposit with three copies, and
    // every member here, the speaker included, reads each part once.
    let seats: Vec<usize> = seats.into_iter().map(|p| bench.join(p)).collect();
    bench.run(3)?;
    core(&mut bench, seats[0])?
        .p
        .groups
        .get_mut(0)
        .ok_or("no group")?
        .members
        .truncate(3);
    core(&mut bench, seats[0])?.queue_text(Target::Group(0), 9, 1);
    bench.run(12)?;
    let copies: Vec<usize> = bench
        .sent
        .iter()
        .filter(|s| s.seed.is_some())
        .map(|s| s.copies)
        .collect();
    // Three members, padded to the copy class of four.
    assert_eq!(copies, [4]);
    for &s in &seats {
        let got = received(&bench.events(s));
        assert_eq!(got.len(), 1, "seat {s}");
        assert_eq!((got[0].from, got[0].msg), (Origin::Member(0, 0), 9));
    }
    Ok(())
}

#[test]
fn parts_missed_while_away_are_caught_up_and_later_live_parts_wait_for_them() -> Res {
    let mut bench = Bench::new()?;
    // B's catch-up waits: the rest of the text, streamed live meanwhile, waits for it.
    let wait = Behaviour {
        catch_up_delay: 80.0,
        ..Behaviour::default()
    };
    let (pa, pb) = pair(&bench, Behaviour::default(), wait);
    let (a, b) = (bench.join(pa), bench.join(pb));
    bench.run(3)?;
    assert_eq!(
        core(&mut bench, a)?.queue_text(Target::Contact(0), 1, 40),
        48
    );
    bench.run(8)?;
    let before = received(&bench.events(b));
    let away = bench.leave(b).ok_or("no session")?;
    // 20 parts stream while B is away, then B is back for the last 25 or so.
    bench.run(40)?;
    let b = bench.join(away);
    // Long enough for a late catch-up (a page takes 32 ticks).
    bench.run(600)?;
    let after = received(&bench.events(b));
    let live_after = after.iter().filter(|g| g.tick < bench.tick() - 200).count();
    assert!(live_after > 20, "read well before the end: {live_after}");
    let mut parts: Vec<u16> = before
        .iter()
        .chain(&after)
        .filter(|g| !g.again)
        .map(|g| g.part)
        .collect();
    parts.sort_unstable();
    assert_eq!(parts, (0..48).collect::<Vec<u16>>());
    Ok(())
}

/// B misses parts while away and comes back; a new sender makes its tag tables be built
/// again before its catch-up: every part still arrives, once.
#[test]
fn a_tag_table_rebuilt_before_the_catch_up_still_knows_the_missed_parts() -> Res {
    let mut bench = Bench::new()?;
    let wait = Behaviour {
        catch_up_delay: 80.0,
        ..Behaviour::default()
    };
    let (pa, pb) = pair(&bench, Behaviour::default(), wait);
    let (a, b) = (bench.join(pa), bench.join(pb));
    bench.run(3)?;
    core(&mut bench, a)?.queue_text(Target::Contact(0), 1, 40);
    bench.run(8)?;
    let before = received(&bench.events(b));
    let away = bench.leave(b).ok_or("no session")?;
    bench.run(40)?;
    let b = bench.join(away);
    bench.run(30)?;
    // Later parts that come live now wait for the catch-up owed (their sender's counter
    // just before is not seen), so most often none is read yet; any read moved the
    // counter for A past the parts B missed.
    let live = received(&bench.events(b));
    // A new sender: B's tag tables are built again, after its counter for A moved on
    // past the parts it missed.
    core(&mut bench, b)?.expect(TagKey::generate(), Unwrap::Mine);
    // Long enough for a late catch-up (a page takes 32 ticks).
    bench.run(600)?;
    let mut parts: Vec<u16> = before
        .iter()
        .chain(&live)
        .chain(&received(&bench.events(b)))
        .filter(|g| !g.again)
        .map(|g| g.part)
        .collect();
    parts.sort_unstable();
    assert_eq!(parts, (0..48).collect::<Vec<u16>>());
    Ok(())
}
