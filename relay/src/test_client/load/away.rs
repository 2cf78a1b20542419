//! A day away, scaled: one user leaves, its contacts write to it in several of the epochs
//! it misses, and when it comes back the run times how long it takes from the reconnect
//! to the last of those messages (ROUTING.md's budget: a day's backlog within a minute
//! at the default tick). Epochs are short (a relay setting), so a day's 24 epochs pass
//! in minutes; the catch-up itself (pages of up to 8 requests per epoch on consecutive
//! odd ticks, each epoch after its own random delay) is the client's, as it would be at
//! an hour.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use hum_shared::route::TagKey;

use super::{LoadError, Topology};
use crate::test_client::{
    Behaviour, Card, Event, Origin, Profile, Rng, SendKind, Target, TestClient, Via,
};

/// What the absence looks like.
#[derive(Debug, Clone)]
pub struct AwaySpec {
    /// The relays' tick.
    pub tick: Duration,
    /// Ticks per epoch at the mailbox relays (as they were started).
    pub epoch_ticks: u32,
    /// Epoch changes the user misses (24: a day of hour-long epochs).
    pub epochs_away: u32,
    /// Contacts writing to it.
    pub senders: usize,
    /// Epochs, spread over the absence, in which a message is written to it.
    pub epochs_with_mail: u32,
    /// Messages written in each of those epochs.
    pub per_epoch: usize,
    /// The returning client's mean delay before each epoch's catch-up.
    pub catch_up_delay: Duration,
    /// Whether that delay is exponential (the design's first choice) rather than uniform
    /// up to twice the mean (the session's default).
    pub catch_up_exponential: bool,
    /// The longest wait for the last message after the reconnect.
    pub timeout: Duration,
    /// Seed of who writes when.
    pub seed: u64,
}

/// What the return measured.
#[derive(Debug, Clone, Default)]
pub struct AwayReport {
    /// Epoch changes missed at the user's home relay.
    pub missed: u32,
    /// Messages written to it while it was away.
    pub messages: usize,
    /// Epochs they were written in.
    pub epochs: usize,
    /// Of those, received after the reconnect.
    pub received: usize,
    /// Received by catch-up (the rest came live).
    pub by_catch_up: usize,
    /// Epochs whose catch-up finished before the last message came.
    pub caught_up: usize,
    /// From the reconnect to the last message, if every one came.
    pub to_last: Option<Duration>,
    /// The same in ticks.
    pub to_last_ticks: Option<f64>,
}

impl fmt::Display for AwayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "away for {} epoch changes; {} messages waiting, written in {} epochs; received {} after the reconnect ({} by catch-up, {} epochs caught up by then)",
            self.missed,
            self.messages,
            self.epochs,
            self.received,
            self.by_catch_up,
            self.caught_up
        )?;
        match (self.to_last, self.to_last_ticks) {
            (Some(d), Some(t)) => writeln!(
                f,
                "reconnect to the last message: {t:.0} ticks, {:.1} s",
                d.as_secs_f64()
            ),
            _ => writeln!(f, "reconnect to the last message: not every message came"),
        }
    }
}

fn client_error(what: &str, e: impl fmt::Display) -> LoadError {
    LoadError::NoClients(format!("{what}: {e}"))
}

/// Waits for events of `c` for up to `wait`, handing each to `f` until it says stop.
async fn until(c: &mut TestClient, wait: Duration, mut f: impl FnMut(&Event) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        match c.next(left).await {
            Some(e) if f(&e) => return true,
            Some(Event::Ended(_)) | None => return false,
            Some(_) => {}
        }
    }
}

/// Runs the absence: senders enter and are homed at the first lane, the user that goes
/// away at the last lane (in a mesh, another mailbox relay: its mail is forwarded).
///
/// # Errors
/// [`LoadError::NoClients`] when a client cannot connect or a deposit is never stored.
pub async fn away(spec: &AwaySpec, topology: &Topology) -> Result<AwayReport, LoadError> {
    let (Some(first), Some(last)) = (topology.lanes.first(), topology.lanes.last()) else {
        return Err(LoadError::NoClients("no lane".to_owned()));
    };
    let (entry, home) = first.clone();
    let (away_entry, away_home) = last.clone();
    let pins = topology.homes();
    let ticks = |d: Duration| d.as_secs_f64() / spec.tick.as_secs_f64();
    let mut rng = Rng::seeded(spec.seed);
    let me = Card::new(away_home.clone());
    let mut profile = Profile::new(
        me.clone(),
        pins.clone(),
        Behaviour {
            catch_up_delay: ticks(spec.catch_up_delay),
            catch_up_exponential: spec.catch_up_exponential,
            ..Behaviour::default()
        },
        rng.fork(),
    );
    let mut senders = Vec::new();
    for _ in 0..spec.senders.max(1) {
        let card = Card::new(home.clone());
        let (to_me, from_me) = (TagKey::generate(), TagKey::generate());
        profile.add_contact(card.clone(), from_me.clone(), to_me.clone());
        let mut p = Profile::new(card, pins.clone(), Behaviour::default(), rng.fork());
        p.add_contact(me.clone(), to_me, from_me);
        let c = TestClient::start(&entry, None, p)
            .await
            .map_err(|n| client_error("a sender", n.error))?;
        senders.push(c);
    }
    // The user is online for a moment, so its profile knows the epoch it left in.
    let user = TestClient::start(&away_entry, None, profile)
        .await
        .map_err(|n| client_error("the user", n.error))?;
    let wait = spec.tick * spec.epoch_ticks.max(1) * 2 + Duration::from_secs(10);
    let deadline = tokio::time::Instant::now() + wait;
    while user.status().epoch == 0 || user.cells().1 < 3 {
        if tokio::time::Instant::now() > deadline || user.is_finished() {
            return Err(LoadError::NoClients("the user never got going".to_owned()));
        }
        tokio::time::sleep(spec.tick).await;
    }
    let left = user.status().epoch;
    let profile = user
        .close()
        .await
        .map_err(|e| client_error("the user's close", e))?
        .profile;
    // The epochs (counted from the one it left in) that get mail, spread evenly.
    let n = spec.epochs_with_mail.clamp(1, spec.epochs_away.max(1));
    let mail: Vec<u32> = (0..n)
        .map(|i| left + 1 + i * spec.epochs_away.max(1) / n)
        .collect();
    let mut expected: HashSet<(usize, u64)> = HashSet::new();
    let mut next_msg = vec![0u64; senders.len()];
    let mut report = AwayReport::default();
    let mut mailed: HashSet<u32> = HashSet::new();
    let epoch_wait = spec.tick * spec.epoch_ticks.max(1) * 3 + Duration::from_secs(10);
    loop {
        let now = senders[0].status().epoch;
        if now >= left + spec.epochs_away {
            break;
        }
        if mail.contains(&now) && mailed.insert(now) {
            for _ in 0..spec.per_epoch.max(1) {
                let s = rng.below(senders.len());
                let msg = next_msg[s];
                next_msg[s] += 1;
                senders[s].send_text(Target::Contact(0), msg, 1);
                let stored = until(&mut senders[s], epoch_wait, |e| {
                    matches!(e, Event::Stored { .. })
                })
                .await;
                if !stored {
                    return Err(LoadError::NoClients(format!(
                        "a text in epoch {now} was never stored"
                    )));
                }
                expected.insert((s, msg));
            }
            report.epochs += 1;
        }
        for s in &mut senders {
            s.drain();
        }
        tokio::time::sleep(spec.tick).await;
    }
    report.messages = expected.len();
    // Back: time from the reconnect to the last message.
    let back = tokio::time::Instant::now();
    let mut user = TestClient::start(&away_entry, None, profile)
        .await
        .map_err(|n| client_error("the user's return", n.error))?;
    report.missed = user_epoch(&mut user, spec).await.saturating_sub(left);
    let mut waiting = expected.clone();
    let mut caught_up = 0;
    let mut by_catch_up = 0;
    let whole = until(&mut user, spec.timeout, |e| {
        match e {
            Event::Received {
                from: Origin::Contact(c),
                kind: SendKind::Text,
                msg,
                via,
                ..
            } => {
                let new = waiting.remove(&(*c, *msg));
                by_catch_up += usize::from(new && *via == Via::CatchUp);
            }
            Event::CaughtUp { .. } => caught_up += 1,
            _ => {}
        }
        waiting.is_empty()
    })
    .await;
    let took = back.elapsed();
    report.received = expected.len() - waiting.len();
    report.by_catch_up = by_catch_up;
    report.caught_up = caught_up;
    if whole {
        report.to_last = Some(took);
        report.to_last_ticks = Some(ticks(took));
    }
    let _ = user.close().await;
    for s in senders {
        let _ = s.close().await;
    }
    Ok(report)
}

/// The returning user's home epoch, once its first cells came.
async fn user_epoch(user: &mut TestClient, spec: &AwaySpec) -> u32 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while user.status().epoch == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(spec.tick).await;
    }
    user.status().epoch
}
