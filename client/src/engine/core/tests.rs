//! The core driven directly, without sockets: a fake relay answers its deposits, and fake
//! peers hold the other side of each session, so a test can see and forge exactly what
//! travels.

use std::path::PathBuf;

use hum_shared::crypto::{KdfParams, KdfPolicy, MailboxId};

use super::subscriptions::DRAIN_TIME;
use super::*;
use crate::api::ErrorKind;
use crate::engine::scratch::Scratch;
use crate::engine::{EngineOptions, ProfilePaths, StoreError};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An invite lifetime no test outlives by accident: its expiry comes when the test moves
/// the fake clock past it.
const INVITE_TTL: Duration = Duration::from_secs(600);

fn addr(host: &str, fingerprint: u8) -> RelayAddr {
    RelayAddr {
        host: host.into(),
        port: 7447,
        fingerprint: hum_shared::CertFingerprint([fingerprint; 32]),
    }
}

fn home() -> RelayAddr {
    addr("home.relay.test", 0xcd)
}

fn peer_relay() -> RelayAddr {
    addr("peer.relay.test", 0xef)
}

/// The delivery secret a test peer called `name` says it has.
fn peer_delivery(name: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(name.bytes().cycle()) {
        *o = b;
    }
    out
}

/// The hello of a test peer called `name`, homed at the peer relay.
fn hello(name: &str) -> ContactHello {
    ContactHello {
        name: name.into(),
        relay: peer_relay().to_string(),
        delivery: Zeroizing::new(peer_delivery(name)),
    }
}

/// One engine core on a fake relay and a fake clock: the test is the runtime, carrying
/// out the core's effects itself.
struct Fixture {
    core: Option<Core>,
    /// The fake clock: it moves only when a test moves it.
    now: Now,
    /// Events the core emitted and the test has not taken yet.
    emitted: Vec<Event>,
    /// Operations sent to a link's current connection, not yet taken by the fake relay.
    sent: Vec<(RelayAddr, Up)>,
    /// The links the core opened, with their connection (0 while down).
    links: HashMap<RelayAddr, u64>,
    /// Whether the fake relay connects new links and answers deposits by itself.
    auto: bool,
    /// Whether the core told its links to stop.
    stopped: bool,
    /// The hum/2 links the core opened, as set up (one at most per start).
    routes: Vec<crate::engine::route_link::RouteSetup>,
    /// What the hum/2 link was told, oldest first.
    route_ops: Vec<crate::engine::route_link::RouteOp>,
    /// What was deposited and not yet taken by a peer: mailbox, envelope.
    deposits: Vec<(MailboxId, Vec<u8>)>,
    seq: u64,
    paths: ProfilePaths,
    options: EngineOptions,
    dir: Scratch,
}

impl Fixture {
    fn new(tag: &str, options: EngineOptions) -> Result<Self, Box<dyn std::error::Error>> {
        let dir = Scratch::new(tag);
        let paths = ProfilePaths::in_dir("me", dir.0.join("me"));
        let unlocked = crate::engine::create_with(&paths, "me", b"pw", KdfParams::INSECURE_FAST)?;
        let mut fx = Self {
            core: None,
            now: Now::system(),
            emitted: Vec::new(),
            sent: Vec::new(),
            links: HashMap::new(),
            auto: true,
            stopped: false,
            routes: Vec::new(),
            route_ops: Vec::new(),
            deposits: Vec::new(),
            seq: 0,
            paths,
            options,
            dir,
        };
        fx.start(unlocked)?;
        Ok(fx)
    }

    fn start(&mut self, unlocked: crate::engine::Unlocked) -> Result<(), EngineError> {
        let mut core = Core::new(
            unlocked,
            crate::engine::Relays::single(home()),
            self.options,
            self.now,
        )?;
        let mut effects = Vec::new();
        let started = core.start(self.now, &mut effects);
        self.core = Some(core);
        self.apply(effects);
        started?;
        self.relay()
    }

    /// Stops the core (closing the store) and opens the profile again: a crash, as far as
    /// the core can tell (the links are gone with it).
    fn reopen(&mut self) -> Result<(), EngineError> {
        self.core = None;
        self.links.clear();
        self.sent.clear();
        self.routes.clear();
        self.route_ops.clear();
        let unlocked = crate::engine::unlock_with(&self.paths, b"pw", KdfPolicy::InsecureForTests)?;
        self.start(unlocked)
    }

    fn core(&mut self) -> Result<&mut Core, EngineError> {
        self.core.as_mut().ok_or(EngineError::Panicked)
    }

    /// Carries out what the core asked for.
    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Emit(e) => self.emitted.push(e),
                Effect::OpenLink { relay } => {
                    self.links.entry(relay).or_insert(0);
                }
                Effect::Send { relay, conn, op } => {
                    // What was meant for an older connection is dropped, as a link does.
                    if conn != 0 && self.links.get(&relay) == Some(&conn) {
                        self.sent.push((relay, op));
                    }
                }
                Effect::Reconnect { .. } | Effect::ReconnectRoute => {}
                Effect::StopLinks => self.stopped = true,
                Effect::OpenRoute(setup) => self.routes.push(*setup),
                Effect::Route(op) => self.route_ops.push(op),
            }
        }
    }

    /// Hands the core one input at the fake clock's time; returns whether it goes on.
    fn handle(&mut self, input: Input) -> Result<bool, EngineError> {
        let now = self.now;
        let mut effects = Vec::new();
        let step = self.core()?.handle(input, now, &mut effects);
        self.apply(effects);
        step
    }

    fn input(&mut self, input: Input) -> Result<(), EngineError> {
        self.handle(input)?;
        self.relay()
    }

    fn command(&mut self, c: Command) -> Result<(), EngineError> {
        self.input(Input::Command(c))
    }

    /// Moves the fake clock on by `d`.
    fn wait(&mut self, d: Duration) {
        self.now = self.now.after(d);
    }

    /// Connects the link to `relay` (again): a new connection to a relay that started at
    /// unix time `started` (microseconds).
    fn connect(&mut self, relay: &RelayAddr, started: u128) -> Result<u64, EngineError> {
        let conn = self.links.get(relay).map_or(1, |c| c + 1);
        self.links.insert(relay.clone(), conn);
        let tick_micros = 1_000u32;
        let tick =
            u64::try_from(self.now.unix_micros.saturating_sub(started) / u128::from(tick_micros))
                .unwrap_or(0);
        self.handle(Input::LinkUp {
            relay: relay.clone(),
            conn,
            tick,
            tick_micros,
        })?;
        Ok(conn)
    }

    /// Takes the link to `relay` down.
    fn disconnect(&mut self, relay: &RelayAddr) -> Result<(), EngineError> {
        if let Some(c) = self.links.get_mut(relay) {
            *c += 1;
        }
        self.sent.retain(|(r, _)| r != relay);
        self.handle(Input::LinkDown {
            relay: relay.clone(),
            retry_in_ms: 200,
            cause: None,
        })?;
        Ok(())
    }

    /// The deposits sent and not yet answered, taken: relay, tag, mailbox.
    fn take_deposits(&mut self) -> Vec<(RelayAddr, u32, MailboxId, Vec<u8>)> {
        let (deposits, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sent)
            .into_iter()
            .partition(|(_, op)| matches!(op, Up::Deposit { .. }));
        self.sent = rest;
        deposits
            .into_iter()
            .filter_map(|(relay, op)| match op {
                Up::Deposit {
                    tag,
                    mailbox,
                    envelope,
                    ..
                } => Some((relay, tag, mailbox, envelope)),
                _ => None,
            })
            .collect()
    }

    /// The fake relay, when `auto`: connects every link the core opened, takes what
    /// they were sent, stores each deposit and answers `Stored`, until nothing more is
    /// sent.
    fn relay(&mut self) -> Result<(), EngineError> {
        if !self.auto {
            return Ok(());
        }
        loop {
            let down: Vec<RelayAddr> = self
                .links
                .iter()
                .filter(|(_, c)| **c == 0)
                .map(|(r, _)| r.clone())
                .collect();
            for relay in down {
                self.connect(&relay, 0)?;
            }
            let deposits = self.take_deposits();
            self.sent.clear();
            if deposits.is_empty() {
                return Ok(());
            }
            for (relay, tag, mailbox, envelope) in deposits {
                self.deposits.push((mailbox, envelope));
                self.handle(Input::Down {
                    relay,
                    op: Down::Stored { tag },
                })?;
            }
        }
    }

    /// Delivers an envelope from the home relay.
    fn deliver(&mut self, mailbox: MailboxId, envelope: &Envelope) -> Result<(), EngineError> {
        self.seq += 1;
        self.input(Input::Down {
            relay: home(),
            op: Down::Deliver {
                mailbox,
                seq: self.seq,
                envelope: envelope.as_bytes().to_vec(),
            },
        })
    }

    fn events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.emitted)
    }

    fn invite_code(&mut self) -> Result<String, Box<dyn std::error::Error>> {
        self.command(Command::CreateInvite)?;
        self.events()
            .into_iter()
            .find_map(|e| match e {
                Event::Invite { code } => Some(code),
                _ => None,
            })
            .ok_or_else(|| "no invite".into())
    }

    /// A new contact, `name`, answering one of our invites; the test holds its side.
    fn peer(&mut self, name: &str) -> Result<Peer, Box<dyn std::error::Error>> {
        self.peer_hello(name, hello(name))
    }

    /// A contact homed at this profile's own (single) relay.
    fn peer_at_home(&mut self, name: &str) -> Result<Peer, Box<dyn std::error::Error>> {
        let h = ContactHello {
            relay: home().to_string(),
            ..hello(name)
        };
        self.peer_hello(name, h)
    }

    fn peer_hello(
        &mut self,
        name: &str,
        hello: ContactHello,
    ) -> Result<Peer, Box<dyn std::error::Error>> {
        let code = self.invite_code()?;
        let peer = Identity::generate();
        let invite = Invite::decode(&code, self.now.secs())?;
        let hello = enc(&hello)?;
        let (session, envelope) = Session::initiate(&peer, &invite, &hello)?;
        self.deliver(invite.mailbox(), &envelope)?;
        let cid = self
            .events()
            .into_iter()
            .find_map(|e| match e {
                Event::Contact { id, name: n } if n == name => Some(id.0),
                _ => None,
            })
            .ok_or("the contact did not appear")?;
        Ok(Peer {
            id: peer,
            session,
            cid,
            reassembler: new_reassembler(Session::PLAINTEXT_CAPACITY),
        })
    }

    fn room_of(&mut self, cid: i64) -> Result<i64, EngineError> {
        self.core()?
            .contacts
            .get(&cid)
            .map(|c| c.room)
            .ok_or(EngineError::NoSuch(What::Contact))
    }

    fn store_file(&self) -> PathBuf {
        self.paths.store()
    }

    /// Moves the clock past `expires_at` (unix seconds), runs the timer once (the fake
    /// relay does not answer), and says whether the home link was told to unsubscribe
    /// `mailbox`.
    fn unsubscribed_after(
        &mut self,
        expires_at: u64,
        mailbox: MailboxId,
    ) -> Result<bool, Box<dyn std::error::Error>> {
        self.pass(expires_at);
        self.sent.clear();
        self.handle(Input::Timer)?;
        Ok(self.sent.iter().any(|(r, op)| {
            *r == home() && matches!(op, Up::Unsubscribe { mailbox: m } if *m == mailbox)
        }))
    }

    /// Moves the clock past unix second `t`.
    fn pass(&mut self, t: u64) {
        let target = u128::from(t + 1) * 1_000_000;
        if let Some(d) = target.checked_sub(self.now.unix_micros) {
            self.wait(Duration::from_micros(u64::try_from(d).unwrap_or(u64::MAX)));
        }
    }
}

/// The other side of one contact's session.
struct Peer {
    id: Identity,
    session: Session,
    cid: i64,
    reassembler: Reassembler,
}

impl Peer {
    /// Sends `msg` to the fixture's core, part by part.
    fn send(&mut self, fx: &mut Fixture, msg: &AppMessage) -> TestResult {
        let bytes = enc(msg)?;
        for part in split(random_u64()?, &bytes, Session::PLAINTEXT_CAPACITY)? {
            let env = self.session.seal(&part)?;
            let epoch = fx.core()?.epoch;
            fx.deliver(self.session.send_mailbox(epoch), &env)?;
        }
        Ok(())
    }

    /// Takes what the core deposited for this peer and opens it.
    fn receive(&mut self, fx: &mut Fixture) -> Result<Vec<AppMessage>, Box<dyn std::error::Error>> {
        let epoch = fx.core()?.epoch;
        let mine: Vec<MailboxId> = (epoch.saturating_sub(1)..=epoch + 1)
            .map(|e| self.session.receive_capability(e).mailbox_id())
            .collect();
        let (for_me, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut fx.deposits)
            .into_iter()
            .partition(|(mb, _)| mine.contains(mb));
        fx.deposits = rest;
        let mut out = Vec::new();
        for (_, env) in for_me {
            let part = self.session.open(&Envelope::from_bytes(&env)?)?;
            if let Some((_, payload)) = self.reassembler.insert(&part)? {
                out.push(postcard::from_bytes(&payload)?);
            }
        }
        Ok(out)
    }

    fn text(&mut self, fx: &mut Fixture, text: &str) -> TestResult {
        self.send(
            fx,
            &AppMessage::Text {
                uid: random_uid()?,
                sent_at: fx.now.millis(),
                text: text.into(),
            },
        )
    }

    fn as_member(&self, name: &str) -> Member {
        Member {
            identity: self.id.public().to_bytes().to_vec(),
            name: name.into(),
            home: Some(crate::engine::wire::MemberHome {
                relay: peer_relay().to_string(),
                delivery: Zeroizing::new(peer_delivery(name)),
            }),
        }
    }
}

/// The options of the tests of hum/1's link: the hum/2 link off, so what leaves goes out
/// as hum/1 operations the fixture answers. The hum/2 tests turn it on.
fn options() -> EngineOptions {
    EngineOptions {
        route_link: false,
        ..EngineOptions::default()
    }
}

/// The options of the tests of the hum/2 link: as [`options`], with it on.
fn route_options() -> EngineOptions {
    EngineOptions {
        route_link: true,
        ..options()
    }
}

/// Reads one column of every row of a table with a connection of its own.
fn raw_blobs(file: &std::path::Path, sql: &str) -> Result<Vec<Vec<u8>>, rusqlite::Error> {
    let c = rusqlite::Connection::open(file)?;
    let mut st = c.prepare(sql)?;
    st.query_map([], |r| r.get(0))?.collect()
}

#[test]
fn a_used_prekey_and_replaced_sessions_leave_the_files_within_the_checkpoint_bound() -> TestResult {
    let every = Duration::from_millis(300);
    let mut fx = Fixture::new(
        "forget",
        EngineOptions {
            checkpoint_every: every,
            ..options()
        },
    )?;
    // The sealed invite secret (its one-time prekey) while it waits for an answer.
    let code = fx.invite_code()?;
    let invite_rows = raw_blobs(&fx.store_file(), "SELECT sealed FROM invites")?;
    assert_eq!(invite_rows.len(), 1);
    let invite = Invite::decode(&code, fx.now.secs())?;
    let bob_id = Identity::generate();
    let hello = enc(&hello("bob"))?;
    let (session, envelope) = Session::initiate(&bob_id, &invite, &hello)?;
    fx.deliver(invite.mailbox(), &envelope)?;
    let first_session = raw_blobs(&fx.store_file(), "SELECT sealed FROM sessions")?;
    assert_eq!(first_session.len(), 1);
    let mut bob = Peer {
        id: bob_id,
        session,
        cid: 1,
        reassembler: new_reassembler(Session::PLAINTEXT_CAPACITY),
    };
    // Every text moves the ratchet on, and the session row is replaced.
    for i in 0..3 {
        bob.text(&mut fx, &format!("text {i}"))?;
    }
    let old: Vec<&[u8]> = [&invite_rows[0], &first_session[0]]
        .into_iter()
        .map(|b| &b[..48])
        .collect();
    let current = raw_blobs(&fx.store_file(), "SELECT sealed FROM sessions")?;
    assert_ne!(current, first_session);
    // Until the next checkpoint the WAL still holds the old rows: that is the window.
    assert!(
        old.iter().any(|o| fx.dir.files_hold("", o)),
        "the search finds nothing at all"
    );
    fx.wait(every + Duration::from_millis(50));
    // (The fake relay does not answer this time: its answers would be new writes.)
    fx.handle(Input::Timer)?;
    for o in &old {
        assert!(
            !fx.dir.files_hold("", o),
            "a replaced key row is still on disk after the checkpoint"
        );
    }
    // What is current is there (the files are read as they are).
    let current = raw_blobs(&fx.store_file(), "SELECT sealed FROM sessions")?;
    assert!(fx.dir.files_hold("", &current[0][..48]));
    assert_eq!(
        std::fs::metadata(fx.dir.0.join("me/store.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0),
        0,
        "the WAL is truncated"
    );
    Ok(())
}

#[test]
fn a_closed_profile_holds_no_fingerprint_relay_or_mailbox_in_clear() -> TestResult {
    let mut fx = Fixture::new("clear", options())?;
    let mut bob = fx.peer("bob")?;
    bob.text(&mut fx, "hello from bob")?;
    let room = fx.room_of(bob.cid)?;
    fx.command(Command::Send {
        room: RoomId(room),
        text: "hello bob".into(),
    })?;
    fx.input(Input::Timer)?;
    fx.command(Command::CreateGroup { name: "g".into() })?;
    let epoch = fx.core()?.epoch;
    let needles: Vec<Vec<u8>> = vec![
        bob.id.public().fingerprint().as_bytes().to_vec(),
        bob.id.public().to_bytes()[..32].to_vec(),
        b"peer.relay.test".to_vec(),
        b"home.relay.test".to_vec(),
        bob.session.send_mailbox(epoch).as_bytes().to_vec(),
        bob.session
            .receive_capability(epoch)
            .mailbox_id()
            .as_bytes()
            .to_vec(),
    ];
    fx.core = None;
    for n in &needles {
        assert!(
            !fx.dir.files_hold("", n),
            "the closed profile holds {n:02x?} in clear"
        );
    }
    // The history is all there.
    fx.reopen()?;
    fx.command(Command::LoadHistory {
        room: RoomId(room),
        before: None,
        limit: 10,
    })?;
    let texts: Vec<String> = fx
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::History { messages, .. } => Some(messages.into_iter().map(|m| m.text).collect()),
            _ => None,
        })
        .ok_or("no history")?;
    assert_eq!(texts, ["hello from bob", "hello bob"]);
    Ok(())
}

#[test]
fn a_session_stored_under_the_wrong_contact_stops_the_load() -> TestResult {
    let mut fx = Fixture::new("peer", options())?;
    let bob = fx.peer("bob")?;
    let carol = fx.peer("carol")?;
    let core = fx.core()?;
    let carols = core.sessions.get(&carol.cid).cloned().ok_or("no session")?;
    // Sealed correctly for Bob's row, but it is Carol's session: texts for Bob would
    // reach Carol.
    core.store.tx(|db| db.put_session(bob.cid, &carols))?;
    let err = fx.reopen().err().ok_or("the wrong session loaded")?;
    assert!(
        matches!(
            &err,
            EngineError::Store(StoreError::Inconsistent(Inconsistency::SessionWithSomeoneElse(n)))
                if n == "bob"
        ),
        "{err}"
    );
    Ok(())
}

#[test]
fn an_invite_answered_after_it_expired_is_refused_and_expired_ones_are_forgotten() -> TestResult {
    let mut fx = Fixture::new(
        "expiry",
        EngineOptions {
            invite_ttl: INVITE_TTL,
            ..options()
        },
    )?;
    let code = fx.invite_code()?;
    let created = fx.now.secs();
    // The acceptor read the code while it was valid; the answer comes after its expiry.
    let invite = Invite::decode(&code, created)?;
    fx.pass(invite.expires_at());
    let hello = enc(&hello("late"))?;
    let (_, envelope) = Session::initiate(&Identity::generate(), &invite, &hello)?;
    fx.deliver(invite.mailbox(), &envelope)?;
    let events = fx.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Contact { .. })),
        "a late answer made a contact: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Notice(n) if n.contains("expired"))),
        "{events:?}"
    );
    assert!(raw_blobs(&fx.store_file(), "SELECT sealed FROM invites")?.is_empty());

    // One nobody answers is forgotten on the timer, its mailbox unsubscribed.
    let code = fx.invite_code()?;
    let mailbox = Invite::decode(&code, fx.now.secs())?.mailbox();
    assert_eq!(
        raw_blobs(&fx.store_file(), "SELECT sealed FROM invites")?.len(),
        1
    );
    let expires_at = Invite::decode(&code, 0)?.expires_at();
    assert!(fx.unsubscribed_after(expires_at, mailbox)?);
    assert!(raw_blobs(&fx.store_file(), "SELECT sealed FROM invites")?.is_empty());
    assert!(fx.core()?.invites.is_empty());
    Ok(())
}

/// A group whose admin is the fake peer `admin`, which invites the core.
fn group_invite(
    admin: &Peer,
    state: &GroupState,
    members: Vec<Member>,
) -> Result<AppMessage, EngineError> {
    Ok(AppMessage::GroupInvite {
        uid: random_uid()?,
        group: state.group_id(),
        name: "plans".into(),
        relay: home().to_string(),
        members: [vec![admin.as_member("alice")], members].concat(),
        dist: state.distribution().to_bytes().map_err(EngineError::from)?,
    })
}

fn group_room(fx: &mut Fixture) -> Result<(i64, GroupRecord), EngineError> {
    fx.core()?
        .rooms
        .iter()
        .find_map(|(&id, r)| r.group.clone().map(|g| (id, g)))
        .ok_or(EngineError::NoSuch(What::Group))
}

#[test]
fn only_the_admin_reopens_a_closed_group() -> TestResult {
    let mut fx = Fixture::new("reopen", options())?;
    let mut alice = fx.peer("alice")?;
    let mut bob = fx.peer("bob")?;
    let alice_fp = alice.id.public().fingerprint();
    let mut state = GroupState::create();
    let invite = group_invite(&alice, &state, vec![bob.as_member("bob")])?;
    alice.send(&mut fx, &invite)?;
    let (rid, g) = group_room(&mut fx)?;
    assert_eq!((g.admin, g.closed), (alice_fp, false));
    alice.send(
        &mut fx,
        &AppMessage::GroupRemoved {
            uid: random_uid()?,
            group: state.group_id(),
        },
    )?;
    assert!(group_room(&mut fx)?.1.closed);
    fx.events();

    // Bob, a member until then, holds the group's id and keys and claims the room.
    let bobs = GroupState::from_distribution(&state.distribution(), &alice.id.fingerprint())?;
    let takeover = AppMessage::GroupInvite {
        uid: random_uid()?,
        group: bobs.group_id(),
        name: "bob's now".into(),
        relay: peer_relay().to_string(),
        members: vec![bob.as_member("bob")],
        dist: bobs.distribution().to_bytes()?,
    };
    bob.send(&mut fx, &takeover)?;
    let (same, g) = group_room(&mut fx)?;
    assert_eq!(same, rid);
    assert_eq!(
        (g.admin, g.closed),
        (alice_fp, true),
        "bob took the room over"
    );
    assert_eq!(
        fx.core()?.rooms.get(&rid).map(|r| r.name.clone()),
        Some("plans".into())
    );
    let events = fx.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Error { kind: ErrorKind::Refused, message } if message.contains("only its admin"))),
        "{events:?}"
    );

    // Alice, the admin, may: the room opens again, same room, same history.
    state.rotate()?;
    let again = group_invite(&alice, &state, vec![])?;
    alice.send(&mut fx, &again)?;
    let (same, g) = group_room(&mut fx)?;
    assert_eq!((same, g.admin, g.closed), (rid, alice_fp, false));
    Ok(())
}

#[test]
fn a_newcomer_cannot_read_the_group_from_before_it_joined() -> TestResult {
    let mut fx = Fixture::new("newcomer", options())?;
    let mut bob = fx.peer("bob")?;
    let mut carol = fx.peer("carol")?;
    fx.command(Command::CreateGroup {
        name: "team".into(),
    })?;
    let (rid, _) = group_room(&mut fx)?;
    fx.command(Command::GroupAdd {
        room: RoomId(rid),
        contact: ContactId(bob.cid),
    })?;
    assert!(
        bob.receive(&mut fx)?
            .iter()
            .any(|m| matches!(m, AppMessage::GroupInvite { .. }))
    );
    fx.command(Command::Send {
        room: RoomId(rid),
        text: "before carol".into(),
    })?;
    let (_, g) = group_room(&mut fx)?;
    let before = g.state.clone();
    let epoch = fx.core()?.epoch;
    let old_mailboxes: Vec<MailboxId> = (epoch.saturating_sub(EPOCHS_BACK)..=epoch + 1)
        .map(|e| before.mailbox(e))
        .collect();
    let old_envelopes: Vec<Envelope> = fx
        .deposits
        .iter()
        .filter(|(mb, _)| old_mailboxes.contains(mb))
        .map(|(_, e)| Envelope::from_bytes(e))
        .collect::<Result<_, _>>()?;
    assert!(!old_envelopes.is_empty());

    fx.command(Command::GroupAdd {
        room: RoomId(rid),
        contact: ContactId(carol.cid),
    })?;
    let dist = carol
        .receive(&mut fx)?
        .into_iter()
        .find_map(|m| match m {
            AppMessage::GroupInvite { dist, .. } => Some(dist),
            _ => None,
        })
        .ok_or("carol got no invite")?;
    let admin = fx.core()?.me.fingerprint();
    let mut carols =
        GroupState::from_distribution(&SenderKeyDistribution::from_bytes(&dist)?, &admin)?;
    assert!(carols.generation() > before.generation());
    for e in epoch.saturating_sub(EPOCHS_BACK)..=epoch + 1 {
        assert!(
            !old_mailboxes.contains(&carols.mailbox(e)),
            "the newcomer derives a mailbox of before its join"
        );
    }
    for env in &old_envelopes {
        assert!(carols.open(env).is_err());
    }
    // Bob, already a member, moves to the new generation with everyone.
    let update = bob
        .receive(&mut fx)?
        .into_iter()
        .find_map(|m| match m {
            AppMessage::GroupUpdate { dist, .. } => Some(dist),
            _ => None,
        })
        .ok_or("bob got no update")?;
    let new = SenderKeyDistribution::from_bytes(&update.ok_or("the update has no new key")?)?;
    assert_eq!(new.generation(), carols.generation());
    // What is sent now, the newcomer reads.
    let now = group_room(&mut fx)?.1.state.clone();
    assert_eq!(now.mailbox(epoch), carols.mailbox(epoch));
    Ok(())
}

#[test]
fn rows_swapped_or_moved_with_raw_sql_while_closed_are_refused() -> TestResult {
    let mut fx = Fixture::new("tamper", options())?;
    let mut bob = fx.peer("bob")?;
    let mut carol = fx.peer("carol")?;
    bob.text(&mut fx, "from bob")?;
    carol.text(&mut fx, "from carol")?;
    let carol_room = fx.room_of(carol.cid)?;
    fx.core = None;
    let file = fx.store_file();
    let raw = rusqlite::Connection::open(&file)?;
    let swap_sessions = || -> rusqlite::Result<()> {
        raw.execute_batch(
            "UPDATE sessions SET contact = -contact;
             UPDATE sessions SET contact = CASE contact WHEN -1 THEN 2 ELSE 1 END;",
        )
    };
    // Bob's and Carol's sessions swapped: texts for Carol would be sealed for Bob.
    swap_sessions()?;
    let err = fx.reopen().err().ok_or("swapped sessions loaded")?;
    assert!(
        matches!(
            &err,
            EngineError::Store(StoreError::RowDoesNotOpen("sessions"))
        ),
        "{err}"
    );
    swap_sessions()?;
    // Bob's text moved into Carol's room: it does not show there, and the face is told.
    raw.execute(
        "UPDATE messages SET room = (SELECT room FROM messages WHERE id = 2) WHERE id = 1",
        [],
    )?;
    drop(raw);
    fx.reopen()?;
    fx.events();
    fx.command(Command::LoadHistory {
        room: RoomId(carol_room),
        before: None,
        limit: 10,
    })?;
    let events = fx.events();
    let shown: Vec<String> = events
        .iter()
        .find_map(|e| match e {
            Event::History { messages, .. } => {
                Some(messages.iter().map(|m| m.text.clone()).collect())
            }
            _ => None,
        })
        .ok_or("no history")?;
    assert_eq!(shown, ["from carol"]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Error { kind: ErrorKind::Damaged, message } if message.contains("1 message(s)"))),
        "{events:?}"
    );
    Ok(())
}

#[test]
fn a_used_invite_is_kept_sealed_and_forgotten_when_it_expires() -> TestResult {
    let mut fx = Fixture::new(
        "used-expiry",
        EngineOptions {
            invite_ttl: INVITE_TTL,
            ..options()
        },
    )?;
    let code = fx.invite_code()?;
    let invite = Invite::decode(&code, fx.now.secs())?;
    let hello = enc(&hello("bob"))?;
    let (_, envelope) = Session::initiate(&Identity::generate(), &invite, &hello)?;
    fx.deliver(invite.mailbox(), &envelope)?;
    assert!(raw_blobs(&fx.store_file(), "SELECT sealed FROM invites")?.is_empty());
    assert_eq!(
        raw_blobs(&fx.store_file(), "SELECT sealed FROM used_invites")?.len(),
        1
    );
    // Its answer mailbox is still read, as a used invite's; the notice went out.
    let used_id = *fx
        .core()?
        .used_invites
        .keys()
        .next()
        .ok_or("no used invite")?;
    assert_eq!(
        fx.core()?.routes.get(&invite.mailbox()).map(|r| r.kind),
        Some(RouteKind::UsedInvite(used_id))
    );
    let notice_mailbox = invite.used_capability()?.mailbox_id();
    assert!(fx.deposits.iter().any(|(mb, _)| *mb == notice_mailbox));
    // Reopened, it is read again.
    fx.reopen()?;
    assert!(fx.core()?.used_invites.contains_key(&used_id));

    assert!(fx.unsubscribed_after(invite.expires_at(), invite.mailbox())?);
    assert!(fx.core()?.used_invites.is_empty());
    assert!(raw_blobs(&fx.store_file(), "SELECT sealed FROM used_invites")?.is_empty());
    Ok(())
}

/// Accepts an invite of the fake inviter `inviter` made on the home relay; returns the
/// invite, its secret, the contact and our answer.
fn accept(
    fx: &mut Fixture,
    inviter: &Identity,
    name: &str,
) -> Result<(Invite, InviteSecret, i64, Envelope), Box<dyn std::error::Error>> {
    let (invite, secret) = inviter.create_invite(&home().to_string(), 3600, fx.now.secs())?;
    fx.command(Command::AcceptInvite {
        code: invite.encode(),
        name: Some(name.into()),
    })?;
    let cid = fx
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Contact { id, name: n } if n == name => Some(id.0),
            _ => None,
        })
        .ok_or("no contact")?;
    let (_, answer) = fx
        .deposits
        .iter()
        .find(|(mb, _)| *mb == invite.mailbox())
        .ok_or("no answer deposited")?;
    let answer = Envelope::from_bytes(answer)?;
    Ok((invite, secret, cid, answer))
}

#[test]
fn an_invite_used_by_someone_else_takes_the_contact_back_and_the_profile_reopens() -> TestResult {
    let mut fx = Fixture::new("taken", options())?;
    // Alice's code: our answer is the one that used it.
    let alice = Identity::generate();
    let (a_invite, a_secret, a_cid, ours) = accept(&mut fx, &alice, "alice")?;
    // Dave's code: someone else answered it first.
    let dave = Identity::generate();
    let (d_invite, d_secret, d_cid, _) = accept(&mut fx, &dave, "dave")?;
    let d_room = fx.room_of(d_cid)?;
    assert_eq!(
        raw_blobs(&fx.store_file(), "SELECT sealed FROM invite_checks")?.len(),
        2
    );

    fx.deliver(
        a_invite.used_capability()?.mailbox_id(),
        &alice.invite_used_notice(&a_secret, &ours)?,
    )?;
    let (_, other) = Session::initiate(&Identity::generate(), &d_invite, b"first")?;
    fx.deliver(
        d_invite.used_capability()?.mailbox_id(),
        &dave.invite_used_notice(&d_secret, &other)?,
    )?;
    let events = fx.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ContactRemoved { id, .. } if id.0 == d_cid)),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ContactRemoved { id, .. } if id.0 == a_cid)),
        "{events:?}"
    );
    // Neither invite is watched any more; Dave's contact and session are gone, his room
    // stays without him.
    assert!(raw_blobs(&fx.store_file(), "SELECT sealed FROM invite_checks")?.is_empty());
    assert_eq!(
        raw_blobs(&fx.store_file(), "SELECT sealed FROM contacts")?.len(),
        1
    );
    assert_eq!(
        raw_blobs(&fx.store_file(), "SELECT sealed FROM sessions")?.len(),
        1
    );
    assert_eq!(fx.core()?.rooms.get(&d_room).map(|r| r.contact), Some(None));

    // The store is whole: it opens again, Dave's room closed with the event in its history.
    fx.reopen()?;
    let contacts: Vec<i64> = fx.core()?.contacts.iter().map(|(id, _)| *id).collect();
    assert_eq!(contacts, [a_cid]);
    assert!(fx.core()?.room_summary(d_room).is_some_and(|r| r.closed));
    fx.command(Command::LoadHistory {
        room: RoomId(d_room),
        before: None,
        limit: 10,
    })?;
    let history = fx
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::History { messages, .. } => Some(messages),
            _ => None,
        })
        .ok_or("no history")?;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].kind, MessageKind::Event);
    assert!(history[0].text.contains("already been used"), "{history:?}");
    Ok(())
}

/// Parts kept from before an upgrade of the envelope format (a revision 1 part carried 24
/// bytes more) do not stop what the same contact sends after it: each part size has its
/// own reassembly, and the old message can still finish.
#[test]
fn a_kept_part_of_another_size_does_not_block_the_contact() -> TestResult {
    /// Revision 1's 1:1 plaintext capacity (docs/PROTOCOL.md §3.10).
    const REVISION_1_CAPACITY: usize = 798;
    let mut fx = Fixture::new("part-sizes", options())?;
    let mut bob = fx.peer("bob")?;
    let room = fx.room_of(bob.cid)?;
    let before = enc(&AppMessage::Text {
        uid: random_uid()?,
        sent_at: fx.now.millis(),
        text: "b".repeat(1000),
    })?;
    let old_parts = split(random_u64()?, &before, REVISION_1_CAPACITY)?;
    assert_eq!(old_parts.len(), 2);
    let kept = PartRecord {
        room,
        sender: bob.cid.to_be_bytes().to_vec(),
        msg_id: part_msg_id(&old_parts[0])?,
        idx: 0,
        part: Zeroizing::new(old_parts[0].clone()),
    };
    fx.core()?.store.tx(|db| db.insert_part(&kept))?;
    fx.reopen()?;
    fx.events();
    bob.text(&mut fx, "after the upgrade")?;
    let texts: Vec<String> = fx
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.text),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["after the upgrade"]);
    // The old message's last part, in its own size, completes it.
    let (_, payload) = fx
        .core()?
        .reassembly
        .get_mut(&(room, kept.sender.clone(), REVISION_1_CAPACITY))
        .ok_or("the kept part was not taken back")?
        .insert(&old_parts[1])?
        .ok_or("the old message did not complete")?;
    assert_eq!(payload, *before);
    Ok(())
}

/// The kinds of the errors a face receives for each user mistake: the event says which
/// mistake it was, so faces and tests need not read its words.
#[test]
fn each_user_mistake_comes_back_as_its_own_kind() -> TestResult {
    let mut fx = Fixture::new("mistakes", options())?;
    let bob = fx.peer("bob")?;
    fx.events();
    let kind_of = |fx: &mut Fixture, c: Command| -> Result<Vec<ErrorKind>, EngineError> {
        fx.command(c)?;
        Ok(fx
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Error { kind, .. } => Some(kind),
                _ => None,
            })
            .collect())
    };
    let own = fx.invite_code()?;
    assert_eq!(
        kind_of(
            &mut fx,
            Command::AcceptInvite {
                code: own,
                name: None
            }
        )?,
        [ErrorKind::OwnInvite]
    );
    let (bobs, _) = bob
        .id
        .create_invite(&peer_relay().to_string(), 3600, fx.now.secs())?;
    assert_eq!(
        kind_of(
            &mut fx,
            Command::AcceptInvite {
                code: bobs.encode(),
                name: None
            }
        )?,
        [ErrorKind::AlreadyContact]
    );
    assert_eq!(
        kind_of(
            &mut fx,
            Command::AcceptInvite {
                code: "hello".into(),
                name: None
            }
        )?,
        [ErrorKind::Invite]
    );
    let nowhere = RoomId(9_999);
    assert_eq!(
        kind_of(
            &mut fx,
            Command::Send {
                room: nowhere,
                text: "hi".into()
            }
        )?,
        [ErrorKind::NoSuch(What::Room)]
    );
    let room = RoomId(fx.room_of(bob.cid)?);
    assert_eq!(
        kind_of(
            &mut fx,
            Command::Send {
                room,
                text: "   ".into()
            }
        )?,
        [ErrorKind::Empty]
    );
    assert_eq!(
        kind_of(
            &mut fx,
            Command::Send {
                room,
                text: "x".repeat(MAX_TEXT + 1)
            }
        )?,
        [ErrorKind::TooLong]
    );
    assert_eq!(
        kind_of(
            &mut fx,
            Command::RenameContact {
                contact: ContactId(9_999),
                name: "x".into()
            }
        )?,
        [ErrorKind::NoSuch(What::Contact)]
    );
    fx.command(Command::CreateGroup {
        name: "team".into(),
    })?;
    let (rid, _) = group_room(&mut fx)?;
    let add = Command::GroupAdd {
        room: RoomId(rid),
        contact: ContactId(bob.cid),
    };
    assert_eq!(kind_of(&mut fx, add.clone())?, []);
    assert_eq!(kind_of(&mut fx, add)?, [ErrorKind::AlreadyMember]);
    // A group's command on a 1:1 room.
    assert_eq!(
        kind_of(
            &mut fx,
            Command::GroupRename {
                room,
                name: "x".into()
            }
        )?,
        [ErrorKind::NoSuch(What::Group)]
    );
    Ok(())
}

// ----- the deposit pump, on the fake clock -----------------------------------------------

/// The texts among `msgs`, in order.
fn texts(msgs: &[AppMessage]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            AppMessage::Text { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// A fixture with one contact, bob (on the peer relay), whose relay answers only when the
/// test says so.
fn manual(
    tag: &str,
    options: EngineOptions,
) -> Result<(Fixture, Peer, RoomId), Box<dyn std::error::Error>> {
    let mut fx = Fixture::new(tag, options)?;
    let mut bob = fx.peer("bob")?;
    let room = RoomId(fx.room_of(bob.cid)?);
    // A first text opens and connects the link to bob's relay; bob receipts it.
    say(&mut fx, room, "hello")?;
    let got = bob.receive(&mut fx)?;
    assert_eq!(texts(&got), ["hello"]);
    let uids = got
        .iter()
        .filter_map(|m| match m {
            AppMessage::Text { uid, .. } => Some(*uid),
            _ => None,
        })
        .collect();
    bob.send(&mut fx, &AppMessage::Receipt { uids })?;
    fx.auto = false;
    fx.sent.clear();
    fx.events();
    Ok((fx, bob, room))
}

/// The one deposit sent and not answered yet; fails when there are none or several.
fn one_deposit(fx: &mut Fixture) -> Result<(RelayAddr, u32, MailboxId, Vec<u8>), String> {
    let mut d = fx.take_deposits();
    match d.len() {
        1 => d.pop().ok_or_else(|| "none".to_owned()),
        n => Err(format!("{n} deposits in flight, expected one")),
    }
}

/// Answers a deposit `Stored` and keeps it at the fake relay.
fn store(fx: &mut Fixture, d: (RelayAddr, u32, MailboxId, Vec<u8>)) -> Result<(), EngineError> {
    let (relay, tag, mailbox, envelope) = d;
    fx.deposits.push((mailbox, envelope));
    fx.handle(Input::Down {
        relay,
        op: Down::Stored { tag },
    })?;
    Ok(())
}

/// Answers the one deposit in flight `Stored`.
fn store_next(fx: &mut Fixture) -> TestResult {
    let d = one_deposit(fx)?;
    store(fx, d)?;
    Ok(())
}

fn say(fx: &mut Fixture, room: RoomId, text: &str) -> Result<(), EngineError> {
    fx.command(Command::Send {
        room,
        text: text.into(),
    })
}

#[test]
fn the_pump_keeps_one_deposit_in_flight_and_the_order() -> TestResult {
    let (mut fx, mut bob, room) = manual("pump", options())?;
    for i in 0..3 {
        say(&mut fx, room, &format!("m{i}"))?;
    }
    for _ in 0..3 {
        let d = one_deposit(&mut fx)?;
        assert_eq!(d.0, peer_relay(), "deposited where bob reads");
        // Nothing more leaves before the relay answers, whatever else happens.
        fx.wait(Duration::from_secs(5));
        fx.handle(Input::Timer)?;
        assert!(fx.take_deposits().is_empty(), "a second deposit in flight");
        store(&mut fx, d)?;
    }
    assert!(fx.take_deposits().is_empty());
    assert_eq!(texts(&bob.receive(&mut fx)?), ["m0", "m1", "m2"]);
    let sent = fx
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Delivery {
                    state: Delivery::Sent,
                    ..
                }
            )
        })
        .count();
    assert_eq!(sent, 3, "each message became sent once stored");
    Ok(())
}

#[test]
fn a_full_mailbox_waits_a_second_and_is_tried_again() -> TestResult {
    let (mut fx, mut bob, room) = manual("full", options())?;
    say(&mut fx, room, "m0")?;
    say(&mut fx, room, "m1")?;
    let (relay, tag, _, first) = one_deposit(&mut fx)?;
    fx.handle(Input::Down {
        relay,
        op: Down::Full { tag },
    })?;
    // The mailbox is full: neither message goes to it before the wait is out (m1 does
    // not overtake m0).
    assert!(fx.take_deposits().is_empty());
    fx.wait(FULL_RETRY / 2);
    fx.handle(Input::Timer)?;
    assert!(fx.take_deposits().is_empty(), "tried again too soon");
    fx.wait(FULL_RETRY);
    fx.handle(Input::Timer)?;
    let again = one_deposit(&mut fx)?;
    assert_eq!(again.3, first, "the same envelope is tried again");
    store(&mut fx, again)?;
    store_next(&mut fx)?;
    assert_eq!(texts(&bob.receive(&mut fx)?), ["m0", "m1"]);
    Ok(())
}

#[test]
fn a_stored_message_without_a_receipt_is_sent_again_each_time_twice_as_late() -> TestResult {
    let after = Duration::from_secs(600);
    let (mut fx, _bob, room) = manual(
        "resend",
        EngineOptions {
            resend_after: after,
            ..options()
        },
    )?;
    say(&mut fx, room, "are you there?")?;
    let d = one_deposit(&mut fx)?;
    let envelope = d.3.clone();
    store(&mut fx, d)?;
    let mut resent_at = Vec::new();
    let mut minutes = 0u64;
    // Five hours on the fake clock, a timer every minute.
    while minutes < 300 {
        fx.wait(Duration::from_secs(60));
        minutes += 1;
        fx.handle(Input::Timer)?;
        for d in fx.take_deposits() {
            assert_eq!(d.3, envelope, "only the unreceipted message goes again");
            resent_at.push(minutes);
            store(&mut fx, d)?;
        }
    }
    // After 10 minutes, then 20 more, then 40, 80, 160.
    assert_eq!(resent_at, [10, 30, 70, 150]);
    Ok(())
}

#[test]
fn a_relay_restart_is_told_from_a_reconnect_by_its_start() -> TestResult {
    let (mut fx, mut bob, room) = manual("restart", options())?;
    let relay = peer_relay();
    say(&mut fx, room, "stored")?;
    store_next(&mut fx)?;
    say(&mut fx, room, "in flight")?;
    let in_flight = one_deposit(&mut fx)?;
    // The link drops with a deposit unanswered and comes back to the same relay (same
    // start): only what it never confirmed goes again.
    fx.disconnect(&relay)?;
    fx.wait(Duration::from_secs(3));
    fx.connect(&relay, 0)?;
    let again = one_deposit(&mut fx)?;
    assert_eq!(again.3, in_flight.3);
    store(&mut fx, again)?;
    assert!(fx.take_deposits().is_empty(), "a stored message went again");
    // The relay restarted (it started a second ago) and lost everything: everything not
    // receipted goes again, in its order.
    fx.disconnect(&relay)?;
    fx.wait(Duration::from_secs(3));
    let started = fx.now.unix_micros - 1_000_000;
    fx.connect(&relay, started)?;
    store_next(&mut fx)?;
    store_next(&mut fx)?;
    assert!(fx.take_deposits().is_empty());
    // Bob reads each once (the copies are the same envelopes: they do not open twice).
    let mut got = Vec::new();
    let epoch = fx.core()?.epoch;
    let mine: Vec<MailboxId> = (epoch.saturating_sub(1)..=epoch + 1)
        .map(|e| bob.session.receive_capability(e).mailbox_id())
        .collect();
    for (mb, env) in std::mem::take(&mut fx.deposits) {
        if !mine.contains(&mb) {
            continue;
        }
        if let Ok(part) = bob.session.open(&Envelope::from_bytes(&env)?)
            && let Some((_, payload)) = bob.reassembler.insert(&part)?
        {
            got.push(postcard::from_bytes::<AppMessage>(&payload)?);
        }
    }
    assert_eq!(texts(&got), ["stored", "in flight"]);
    Ok(())
}

#[test]
fn a_new_epoch_subscribes_the_next_mailbox_and_drops_the_old_ones() -> TestResult {
    let (mut fx, mut bob, _) = manual("epoch", options())?;
    let epoch = fx.core()?.epoch;
    // Where bob deposits in epoch `e`: the core reads it.
    let cap = |e: u64| bob.session.send_mailbox(e);
    let (next, newest, last, current) =
        (cap(epoch + 2), cap(epoch + 1), cap(epoch - 1), cap(epoch));
    // Into the next epoch, and long enough after the old mailboxes were subscribed for
    // them to have drained (however close to midnight the test started).
    fx.pass((epoch + 1) * hum_shared::crypto::EPOCH_SECS);
    fx.wait(DRAIN_TIME);
    fx.handle(Input::Timer)?;
    assert_eq!(fx.core()?.epoch, epoch + 1);
    let subscribed: Vec<MailboxId> = fx
        .sent
        .iter()
        .filter_map(|(r, op)| match op {
            Up::Subscribe { capability, .. } if *r == home() => Some(capability.mailbox_id()),
            _ => None,
        })
        .collect();
    let dropped: Vec<MailboxId> = fx
        .sent
        .iter()
        .filter_map(|(r, op)| match op {
            Up::Unsubscribe { mailbox } if *r == home() => Some(*mailbox),
            _ => None,
        })
        .collect();
    assert!(
        subscribed.contains(&next),
        "the epoch after the new one is read"
    );
    assert!(
        !subscribed.contains(&newest),
        "a mailbox read already is not subscribed twice"
    );
    assert!(
        dropped.contains(&last),
        "an epoch before the last one is dropped"
    );
    assert!(!dropped.contains(&current) && !dropped.contains(&newest));
    // Bob writes into the new epoch's mailbox: it arrives.
    fx.auto = true;
    bob.text(&mut fx, "a new day")?;
    assert!(
        fx.events()
            .iter()
            .any(|e| matches!(e, Event::Message(m) if m.text == "a new day"))
    );
    Ok(())
}

#[test]
fn a_message_that_comes_twice_is_shown_once() -> TestResult {
    let mut fx = Fixture::new("dup", options())?;
    let mut bob = fx.peer("bob")?;
    fx.events();
    let msg = AppMessage::Text {
        uid: random_uid()?,
        sent_at: fx.now.millis(),
        text: "once".into(),
    };
    // Sent again (a re-send after a restart: new envelopes, the same message).
    bob.send(&mut fx, &msg)?;
    bob.send(&mut fx, &msg)?;
    // And the same envelope delivered twice (a relay delivering again).
    let bytes = enc(&msg)?;
    let part = split(random_u64()?, &bytes, Session::PLAINTEXT_CAPACITY)?;
    let env = bob.session.seal(&part[0])?;
    let mailbox = bob.session.send_mailbox(fx.core()?.epoch);
    fx.deliver(mailbox, &env)?;
    fx.deliver(mailbox, &env)?;
    let events = fx.events();
    let shown = events
        .iter()
        .filter(|e| matches!(e, Event::Message(m) if m.text == "once"))
        .count();
    assert_eq!(shown, 1, "{events:?}");
    assert!(
        !events.iter().any(|e| matches!(e, Event::Error { .. })),
        "{events:?}"
    );
    Ok(())
}

#[test]
fn receipts_go_back_and_mark_messages_delivered() -> TestResult {
    let mut fx = Fixture::new("receipts", options())?;
    let mut bob = fx.peer("bob")?;
    let room = RoomId(fx.room_of(bob.cid)?);
    // Bob's text is receipted on the next timer.
    let uid = random_uid()?;
    let sent_at = fx.now.millis();
    bob.send(
        &mut fx,
        &AppMessage::Text {
            uid,
            sent_at,
            text: "hi".into(),
        },
    )?;
    assert!(
        bob.receive(&mut fx)?
            .iter()
            .all(|m| !matches!(m, AppMessage::Receipt { .. }))
    );
    fx.input(Input::Timer)?;
    let receipts: Vec<Uid> = bob
        .receive(&mut fx)?
        .into_iter()
        .flat_map(|m| match m {
            AppMessage::Receipt { uids } => uids,
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(receipts, [uid]);
    // Our text: sent once stored, delivered once bob's receipt comes.
    fx.events();
    say(&mut fx, room, "and you?")?;
    let mine = bob
        .receive(&mut fx)?
        .into_iter()
        .find_map(|m| match m {
            AppMessage::Text { uid, .. } => Some(uid),
            _ => None,
        })
        .ok_or("bob got no text")?;
    let id = fx
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Delivery {
                id,
                state: Delivery::Sent,
                ..
            } => Some(id),
            _ => None,
        })
        .ok_or("not sent")?;
    bob.send(&mut fx, &AppMessage::Receipt { uids: vec![mine] })?;
    assert!(fx.events().iter().any(|e| matches!(
        e,
        Event::Delivery { id: i, state: Delivery::Delivered, .. } if *i == id
    )));
    Ok(())
}

#[test]
fn a_group_invite_left_in_the_inbox_by_a_crash_is_applied_at_start() -> TestResult {
    let mut fx = Fixture::new("inbox", options())?;
    let alice = fx.peer("alice")?;
    let state = GroupState::create();
    let invite = group_invite(&alice, &state, Vec::new())?;
    // The message was committed with its history, then the engine died before applying
    // it: only the inbox row is there.
    let rec = InboxRecord {
        origin: Origin::Contact(alice.cid),
        payload: enc(&invite)?,
    };
    fx.core()?.store.tx(|db| db.insert_inbox(&rec))?;
    assert!(group_room(&mut fx).is_err());
    fx.reopen()?;
    let (_, g) = group_room(&mut fx)?;
    assert_eq!(g.admin, alice.id.public().fingerprint());
    assert!(
        fx.core()?.store.db().inbox()?.is_empty(),
        "applied once, then gone"
    );
    // And not again at the next start.
    fx.reopen()?;
    let groups = fx
        .core()?
        .rooms
        .values()
        .filter(|r| r.group.is_some())
        .count();
    assert_eq!(groups, 1);
    Ok(())
}

#[test]
fn quitting_waits_for_the_outbox_to_drain_or_for_the_grace() -> TestResult {
    let (mut fx, _bob, room) = manual("quit", options())?;
    say(&mut fx, room, "last words")?;
    let d = one_deposit(&mut fx)?;
    assert!(
        fx.handle(Input::Command(Command::Quit))?,
        "stopped with a deposit in flight"
    );
    assert!(!fx.stopped);
    fx.wait(Duration::from_millis(500));
    assert!(fx.handle(Input::Timer)?);
    // Stored: nothing more can leave, the engine stops and stops its links.
    assert!(!fx.handle(Input::Down {
        relay: d.0,
        op: Down::Stored { tag: d.1 },
    })?);
    assert!(fx.stopped);

    // A relay that never answers is waited for as long as the grace, and no longer.
    let (mut fx, _bob, room) = manual("quit-silent", options())?;
    say(&mut fx, room, "nobody hears")?;
    assert!(fx.handle(Input::Command(Command::Quit))?);
    fx.wait(QUIT_GRACE - Duration::from_millis(1));
    assert!(fx.handle(Input::Timer)?);
    fx.wait(Duration::from_millis(1));
    assert!(!fx.handle(Input::Timer)?, "the grace is over");
    assert!(fx.stopped);

    // A relay that is down holds nothing up: what it would carry stays in the outbox.
    let (mut fx, _bob, room) = manual("quit-down", options())?;
    fx.disconnect(&peer_relay())?;
    say(&mut fx, room, "later")?;
    assert!(!fx.handle(Input::Command(Command::Quit))?);
    assert_eq!(
        fx.core()?.store.db().outbox()?.len(),
        1,
        "kept for the next start"
    );
    Ok(())
}

// ----- random interleavings --------------------------------------------------------------

/// What happens next, in a run of the fake world around the core.
#[derive(Debug, Clone)]
enum Step {
    /// The core's user writes to bob.
    Write,
    /// The relay answers the oldest deposit it was sent: stored (and held for bob), or
    /// full.
    Answer { full: bool },
    /// The connection to bob's relay drops and comes back; the deposit in flight, if any,
    /// was stored (its answer lost) or not.
    Drop { stored: bool },
    /// Bob's relay restarts and loses everything it held.
    Restart,
    /// Bob reads what his relay holds.
    Read,
    /// Bob receipts everything he read.
    Receipt,
    /// Bob writes; the home relay delivers it, `twice` delivers the same envelope again.
    BobWrites { twice: bool },
    /// Time passes (seconds), and the timer runs.
    Tick(u16),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        3 => Just(Step::Write),
        3 => Just(Step::Answer { full: false }),
        1 => Just(Step::Answer { full: true }),
        1 => any::<bool>().prop_map(|stored| Step::Drop { stored }),
        1 => Just(Step::Restart),
        2 => Just(Step::Read),
        1 => Just(Step::Receipt),
        2 => any::<bool>().prop_map(|twice| Step::BobWrites { twice }),
        2 => (1u16..900).prop_map(Step::Tick),
    ]
}

/// The fake relay of one run: what bob's relay holds, and what bob read from it.
#[derive(Default)]
struct World {
    /// Deposits sent by the core and not answered yet, oldest first.
    unanswered: Vec<(RelayAddr, u32, MailboxId, Vec<u8>)>,
    /// What bob's relay holds.
    held: Vec<Vec<u8>>,
    /// The texts bob read, with their ids, in the order he read them.
    read: Vec<(Uid, String)>,
    /// Their ids, to receipt.
    to_receipt: Vec<Uid>,
    /// When bob's relay started (unix microseconds).
    started: u128,
    written: usize,
    bob_written: usize,
}

impl World {
    fn take_sent(&mut self, fx: &mut Fixture) {
        let new = fx.take_deposits();
        self.unanswered.extend(new);
        fx.sent.clear();
    }

    fn bob_reads(&mut self, fx: &mut Fixture, bob: &mut Peer) -> TestResult {
        let _ = fx;
        for env in std::mem::take(&mut self.held) {
            // A copy of an envelope opened already does not open again.
            let Ok(part) = bob.session.open(&Envelope::from_bytes(&env)?) else {
                continue;
            };
            if let Some((_, payload)) = bob.reassembler.insert(&part)?
                && let AppMessage::Text { uid, text, .. } = postcard::from_bytes(&payload)?
            {
                self.read.push((uid, text));
                self.to_receipt.push(uid);
            }
        }
        Ok(())
    }

    fn run(&mut self, fx: &mut Fixture, bob: &mut Peer, room: RoomId, s: Step) -> TestResult {
        let relay = peer_relay();
        match s {
            Step::Write => {
                say(fx, room, &format!("m{}", self.written))?;
                self.written += 1;
            }
            Step::Answer { full } => {
                if !self.unanswered.is_empty() {
                    let (relay, tag, _, envelope) = self.unanswered.remove(0);
                    if !full {
                        self.held.push(envelope);
                    }
                    let op = if full {
                        Down::Full { tag }
                    } else {
                        Down::Stored { tag }
                    };
                    fx.handle(Input::Down { relay, op })?;
                }
            }
            Step::Drop { stored } => {
                if stored && let Some(d) = self.unanswered.first() {
                    self.held.push(d.3.clone());
                }
                self.unanswered.clear();
                fx.disconnect(&relay)?;
                fx.wait(Duration::from_secs(1));
                fx.connect(&relay, self.started)?;
            }
            Step::Restart => {
                self.unanswered.clear();
                self.held.clear();
                fx.disconnect(&relay)?;
                fx.wait(Duration::from_secs(3));
                self.started = fx.now.unix_micros - 1_000;
                fx.connect(&relay, self.started)?;
            }
            Step::Read => self.bob_reads(fx, bob)?,
            Step::Receipt => {
                let uids = std::mem::take(&mut self.to_receipt);
                if !uids.is_empty() {
                    bob.send(fx, &AppMessage::Receipt { uids })?;
                }
            }
            Step::BobWrites { twice } => {
                let msg = AppMessage::Text {
                    uid: random_uid()?,
                    sent_at: fx.now.millis(),
                    text: format!("b{}", self.bob_written),
                };
                self.bob_written += 1;
                let bytes = enc(&msg)?;
                let part = split(random_u64()?, &bytes, Session::PLAINTEXT_CAPACITY)?;
                let env = bob.session.seal(&part[0])?;
                let mailbox = bob.session.send_mailbox(fx.core()?.epoch);
                fx.deliver(mailbox, &env)?;
                if twice {
                    fx.deliver(mailbox, &env)?;
                }
            }
            Step::Tick(secs) => {
                fx.wait(Duration::from_secs(u64::from(secs)));
                fx.handle(Input::Timer)?;
            }
        }
        self.take_sent(fx);
        Ok(())
    }
}

/// What a run of [`interleaving`] came to.
struct Outcome {
    /// Texts the core's user wrote.
    written: usize,
    /// What bob read, copies dropped, in order.
    read: Vec<String>,
    /// Texts bob wrote.
    bob_written: usize,
    /// What the core showed of bob's texts, in order.
    shown: Vec<String>,
}

/// Runs `steps`, then lets everything settle.
fn interleaving(steps: Vec<Step>) -> Result<Outcome, Box<dyn std::error::Error>> {
    let (mut fx, mut bob, room) = manual("interleave", options())?;
    let mut world = World::default();
    for s in steps {
        world.run(&mut fx, &mut bob, room, s)?;
    }
    // The world settles: every deposit is stored and read, with a timer now and then for
    // whatever waits (a full mailbox, a re-send).
    for _ in 0..50 {
        while !world.unanswered.is_empty() {
            world.run(&mut fx, &mut bob, room, Step::Answer { full: false })?;
        }
        world.run(&mut fx, &mut bob, room, Step::Read)?;
        world.run(&mut fx, &mut bob, room, Step::Tick(2))?;
        if world.unanswered.is_empty() && fx.core()?.links.values().all(|l| l.pump.len() == 0) {
            break;
        }
    }
    // Bob drops copies of what he read already, by id.
    let mut seen = HashSet::new();
    let read: Vec<String> = world
        .read
        .iter()
        .filter(|(uid, _)| seen.insert(*uid))
        .map(|(_, t)| t.clone())
        .collect();
    let shown: Vec<String> = fx
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) if !m.from_me => Some(m.text),
            _ => None,
        })
        .collect();
    Ok(Outcome {
        written: world.written,
        read,
        bob_written: world.bob_written,
        shown,
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever the relay answers, drops or forgets, and whatever arrives twice: every
    /// message arrives, once, in the order it was written, both ways.
    #[test]
    fn nothing_is_lost_duplicated_or_reordered(steps in proptest::collection::vec(step(), 1..40)) {
        let Outcome { written, read, bob_written, shown } = interleaving(steps)
            .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
        let expected: Vec<String> = (0..written).map(|i| format!("m{i}")).collect();
        proptest::prop_assert_eq!(read, expected);
        let expected: Vec<String> = (0..bob_written).map(|i| format!("b{i}")).collect();
        proptest::prop_assert_eq!(shown, expected);
    }
}

/// Found by the property above: after a relay restart, a connection lost before the relay
/// answered the first deposit again left everything the relay had confirmed before the
/// restart unsent until the ten-minute re-send.
#[test]
fn a_drop_right_after_a_relay_restart_still_sends_everything_again() -> TestResult {
    let steps = vec![
        Step::Write,
        Step::Write,
        Step::Write,
        Step::Answer { full: false },
        Step::Restart,
        Step::Drop { stored: false },
    ];
    let out = interleaving(steps)?;
    assert_eq!(out.written, 3);
    assert_eq!(out.read, ["m0", "m1", "m2"]);
    Ok(())
}

/// A member who left is sent the admin's removal notice too (the admin removes whoever
/// leaves): it closes nothing more and writes no second event into the history.
#[test]
fn the_removal_notice_after_leaving_adds_nothing() -> TestResult {
    let mut fx = Fixture::new("left", options())?;
    let mut alice = fx.peer("alice")?;
    let state = GroupState::create();
    alice.send(&mut fx, &group_invite(&alice, &state, Vec::new())?)?;
    let (rid, _) = group_room(&mut fx)?;
    fx.command(Command::GroupLeave { room: RoomId(rid) })?;
    assert!(group_room(&mut fx)?.1.closed);
    alice.send(
        &mut fx,
        &AppMessage::GroupRemoved {
            uid: random_uid()?,
            group: state.group_id(),
        },
    )?;
    fx.events();
    fx.command(Command::LoadHistory {
        room: RoomId(rid),
        before: None,
        limit: 50,
    })?;
    let events: Vec<String> = fx
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::History { messages, .. } => Some(messages),
            _ => None,
        })
        .ok_or("no history")?
        .into_iter()
        .filter(|m| m.kind == MessageKind::Event)
        .map(|m| m.text)
        .collect();
    assert_eq!(events, ["alice added you", "you left the group"]);
    Ok(())
}

/// Where each side receives travels with the invite and the hello: the code names this
/// profile's home relay and delivery secret, an answer's hello gives the acceptor's, an
/// accepted code the inviter's, and all of them are kept across a restart.
#[test]
fn invites_and_hellos_say_where_each_side_receives() -> TestResult {
    let mut fx = Fixture::new("homes", options())?;
    let code = fx.invite_code()?;
    let invite = Invite::decode(&code, fx.now.secs())?;
    assert_eq!(invite.relay(), home().to_string());
    // A single relay suggests no other entry.
    assert_eq!(invite.entry(), None);
    assert_eq!(invite.delivery_secret(), &fx.core()?.delivery);

    let bob = fx.peer("bob")?;
    let bob_fp = bob.id.public().fingerprint();
    let carol = Identity::generate();
    let (carol_invite, _, _, _) = accept(&mut fx, &carol, "carol")?;
    let carol_fp = carol.public().fingerprint();
    let mine = fx.core()?.delivery.clone();
    fx.reopen()?;
    let core = fx.core()?;
    assert_eq!(core.delivery, mine, "the delivery secret changed on reopen");
    let bob_home = core.homes.get(&bob_fp).ok_or("bob's home was not kept")?;
    assert_eq!(
        (&bob_home.relay, *bob_home.delivery),
        (&peer_relay(), peer_delivery("bob"))
    );
    let carol_home = core
        .homes
        .get(&carol_fp)
        .ok_or("carol's home was not kept")?;
    assert_eq!(carol_home.relay, home());
    assert_eq!(
        &*carol_home.delivery,
        carol_invite.delivery_secret().expose_secret()
    );
    Ok(())
}

/// A group's member list carries every member's home: the admin's own and those it
/// knows, so a member learns where the members it has no contact with receive.
#[test]
fn member_lists_carry_each_members_home() -> TestResult {
    let mut fx = Fixture::new("member-homes", options())?;
    let mut alice = fx.peer("alice")?;
    let dave = Peer {
        id: Identity::generate(),
        ..fx.peer("placeholder")?
    };
    let dave_fp = dave.id.public().fingerprint();
    let state = GroupState::create();
    let invite = group_invite(&alice, &state, vec![dave.as_member("dave")])?;
    alice.send(&mut fx, &invite)?;
    let dave_home = fx
        .core()?
        .homes
        .get(&dave_fp)
        .ok_or("dave's home unknown")?;
    assert_eq!(*dave_home.delivery, peer_delivery("dave"));
    // A member list does not override what a contact said of itself.
    let alice_fp = alice.id.public().fingerprint();
    assert_eq!(
        fx.core()?.homes.get(&alice_fp).map(|h| *h.delivery),
        Some(peer_delivery("alice"))
    );

    // As an admin, this profile's invites name its own home and the members'.
    let mut bob = fx.peer("bob")?;
    fx.command(Command::CreateGroup {
        name: "team".into(),
    })?;
    let rid = fx
        .core()?
        .rooms
        .iter()
        .find(|(_, r)| r.name == "team")
        .map(|(&id, _)| id)
        .ok_or("no team room")?;
    fx.command(Command::GroupAdd {
        room: RoomId(rid),
        contact: ContactId(alice.cid),
    })?;
    fx.command(Command::GroupAdd {
        room: RoomId(rid),
        contact: ContactId(bob.cid),
    })?;
    let members = bob
        .receive(&mut fx)?
        .into_iter()
        .find_map(|m| match m {
            AppMessage::GroupInvite { members, .. } => Some(members),
            _ => None,
        })
        .ok_or("bob got no invite")?;
    let me = fx.core()?.me.public().to_bytes().to_vec();
    let mine = members
        .iter()
        .find(|m| m.identity == me)
        .and_then(|m| m.home.clone())
        .ok_or("the admin named no home of its own")?;
    assert_eq!(mine.relay, home().to_string());
    assert_eq!(&*mine.delivery, fx.core()?.delivery.expose_secret());
    let alices = members
        .iter()
        .find(|m| m.identity == alice.id.public().to_bytes().to_vec())
        .and_then(|m| m.home.clone())
        .ok_or("alice's home missing")?;
    assert_eq!(*alices.delivery, peer_delivery("alice"));
    Ok(())
}

/// What the hum/2 link will be told follows from what the core keeps: each contact's
/// sending direction and each open invite's answer are expected under the tag keys the
/// other side sends with, and a deposit for a contact goes to its home under this side's.
#[test]
fn route_expectations_and_deposits_pair_with_the_other_side() -> TestResult {
    use super::homes::Sender;
    use crate::engine::route_link::RouteOp;
    let mut fx = Fixture::new("route-ops", options())?;
    let bob = fx.peer("bob")?;
    let code = fx.invite_code()?;
    let invite = Invite::decode(&code, fx.now.secs())?;
    let core = fx.core()?;
    let expected: Vec<(Option<Sender>, hum_shared::route::TagKey)> = core
        .route_expectations()
        .into_iter()
        .filter_map(|op| match op {
            RouteOp::Expect { who, key, .. } | RouteOp::ExpectShared { who, key } => {
                Some((Sender::of(who), key))
            }
            _ => None,
        })
        .collect();
    assert!(
        expected
            .iter()
            .any(|(s, k)| *s == Some(Sender::Contact(bob.cid)) && *k == bob.session.send_tag_key()),
        "bob's direction is not expected"
    );
    assert!(
        expected
            .iter()
            .any(|(s, k)| matches!(s, Some(Sender::Invite(_))) && k == invite.tag_key()),
        "the open invite's answer is not expected"
    );
    let envelope = Envelope::from_bytes(&[9; hum_shared::crypto::ENVELOPE_LEN])?;
    let out = core
        .outgoing_to_contact(bob.cid, hum_shared::route::session::DepositId(1), envelope)
        .ok_or("no deposit for bob")?;
    assert_eq!(out.key, bob.session.receive_tag_key());
    assert_eq!(out.to.len(), 1);
    assert_eq!(out.to[0].home, peer_relay());
    assert_eq!(out.to[0].secret.expose_secret(), &peer_delivery("bob"));
    assert_eq!(core.my_card().secret, core.delivery);
    // The link's names stand for what they were made from, and nothing else.
    for s in [Sender::Contact(7), Sender::Invite(7), Sender::Contact(0)] {
        assert_eq!(Sender::of(s.expected()), Some(s));
    }
    assert_eq!(Sender::of(crate::engine::route_link::Expected(7)), None);
    Ok(())
}

/// With the hum/2 link on, the core opens one link, to the entry relay, its session
/// starting from the stored route state, and tells it every contact and open invite to
/// expect, and each new one as it comes; an invite forgotten is forgotten by the link. A
/// state the link reports is stored at once, and the next start begins from it.
#[test]
fn the_route_link_starts_from_the_stored_state_and_expects_everyone() -> TestResult {
    use super::homes::Sender;
    use crate::engine::route_link::{RouteOp, RouteReport};
    let mut fx = Fixture::new("route-open", route_options())?;
    assert_eq!(fx.routes.len(), 1);
    assert_eq!(fx.routes[0].relays.entry, home());
    assert_eq!(fx.routes[0].state.last_epoch(), None);
    let bob = fx.peer("bob")?;
    let expected = |ops: &[RouteOp]| -> Vec<Option<Sender>> {
        ops.iter()
            .filter_map(|op| match op {
                RouteOp::Expect { who, .. } | RouteOp::ExpectShared { who, .. } => {
                    Some(Sender::of(*who))
                }
                _ => None,
            })
            .collect()
    };
    // The invite bob answered, then bob himself, as each came.
    let told = expected(&fx.route_ops);
    assert!(told.contains(&Some(Sender::Contact(bob.cid))), "{told:?}");
    assert!(
        told.iter().any(|s| matches!(s, Some(Sender::Invite(_)))),
        "{told:?}"
    );
    let key = fx.route_ops.iter().find_map(|op| match op {
        RouteOp::Expect { who, key, .. } if Sender::of(*who) == Some(Sender::Contact(bob.cid)) => {
            Some(key.clone())
        }
        _ => None,
    });
    assert_eq!(key, Some(bob.session.send_tag_key()));

    // A single relay is named for what it is, once.
    fx.events();
    for _ in 0..2 {
        fx.input(Input::Route(RouteReport::Up {
            single: true,
            tick_micros: 1_000,
        }))?;
    }
    let said: Vec<Event> = fx
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Notice(n) if n == super::route::SINGLE_RELAY))
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");

    let mut state = hum_shared::route::session::SessionState::new();
    state.set_last_epoch(7);
    fx.input(Input::Route(RouteReport::State(state)))?;
    fx.command(Command::CreateInvite)?;
    let open = fx
        .core()?
        .invites
        .keys()
        .copied()
        .max()
        .ok_or("no invite")?;
    fx.reopen()?;
    assert_eq!(fx.routes.len(), 1, "one link per start");
    assert_eq!(fx.routes[0].state.last_epoch(), Some(7));
    let told = expected(&fx.route_ops);
    assert!(told.contains(&Some(Sender::Contact(bob.cid))), "{told:?}");
    assert!(told.contains(&Some(Sender::Invite(open))), "{told:?}");

    // An expired invite is forgotten by the link too.
    let expires = fx
        .core()?
        .invites
        .get(&open)
        .map(|s| s.expires_at())
        .ok_or("gone")?;
    fx.route_ops.clear();
    fx.pass(expires);
    fx.input(Input::Timer)?;
    assert!(
        fx.route_ops.iter().any(
            |op| matches!(op, RouteOp::Forget(w) if Sender::of(*w) == Some(Sender::Invite(open)))
        ),
        "{:?}",
        fx.route_ops
    );
    Ok(())
}

/// Without the hum/2 link (hum/1 still carries the messages), none is opened.
#[test]
fn no_route_link_unless_asked_for() -> TestResult {
    let mut fx = Fixture::new("route-off", options())?;
    fx.peer("bob")?;
    assert!(fx.routes.is_empty());
    assert!(fx.route_ops.is_empty());
    Ok(())
}

/// What the hum/2 link receives is opened and applied as what hum/1 delivers: an invite's
/// answer makes a contact, the contact's texts appear, one that comes twice is shown once,
/// and an item under a name the core never gave changes nothing.
#[test]
fn items_the_route_link_receives_are_opened_and_applied() -> TestResult {
    use super::homes::Sender;
    use crate::engine::route_link::{Expected, RouteReport};
    let mut fx = Fixture::new("route-receive", route_options())?;
    let received = |who: Expected, envelope: Envelope| {
        Input::Route(RouteReport::Received {
            who,
            envelope,
            tick: 0,
        })
    };
    let code = fx.invite_code()?;
    let id = fx
        .core()?
        .invites
        .keys()
        .copied()
        .max()
        .ok_or("no invite")?;
    let invite = Invite::decode(&code, fx.now.secs())?;
    let peer = Identity::generate();
    let (mut session, answer) = Session::initiate(&peer, &invite, &enc(&hello("carol"))?)?;
    fx.input(received(Sender::Invite(id).expected(), answer))?;
    let cid = fx
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Contact { id, name } if name == "carol" => Some(id.0),
            _ => None,
        })
        .ok_or("carol did not become a contact")?;

    let msg = AppMessage::Text {
        uid: random_uid()?,
        sent_at: fx.now.millis(),
        text: "over hum/2".into(),
    };
    let parts = split(random_u64()?, &enc(&msg)?, Session::PLAINTEXT_CAPACITY)?;
    let envelopes: Vec<Envelope> = parts
        .iter()
        .map(|p| session.seal(p))
        .collect::<Result<_, _>>()?;
    // A name the core never gave, then the real sender, then the same again.
    for e in &envelopes {
        fx.input(received(Expected(u64::MAX), e.clone()))?;
    }
    assert!(
        !fx.events().iter().any(|e| matches!(e, Event::Message(_))),
        "an unknown sender's item was applied"
    );
    for _ in 0..2 {
        for e in &envelopes {
            fx.input(received(Sender::Contact(cid).expected(), e.clone()))?;
        }
    }
    let shown: Vec<String> = fx
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.text),
            _ => None,
        })
        .collect();
    assert_eq!(shown, ["over hum/2"]);
    Ok(())
}

/// A route-link fixture's deposits queued on the hum/2 link since the last call, taken.
fn take_queued(fx: &mut Fixture) -> Vec<hum_shared::route::session::Outgoing> {
    use crate::engine::route_link::RouteOp;
    let (queued, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut fx.route_ops)
        .into_iter()
        .partition(|op| matches!(op, RouteOp::Queue(_)));
    fx.route_ops = rest;
    queued
        .into_iter()
        .filter_map(|op| match op {
            RouteOp::Queue(out) => Some(out),
            _ => None,
        })
        .collect()
}

/// With the hum/2 link, a contact's messages leave through it, not through hum/1's: to
/// the contact's home under this side's tag key, one in flight per contact and in order,
/// each sent once stored; a stored one without a receipt goes again (a fresh attempt)
/// after the re-send wait, and after a restart what was not receipted goes again.
/// A contact whose home is not known (as after a store-schema-1 migration) is told this
/// profile's over hum/1 at the start, not again while that waits; texts to them go over
/// hum/1 until they say theirs, then through the hum/2 link.
#[test]
fn a_contact_without_a_home_is_told_ours_and_moves_to_hum2_when_it_tells_its() -> TestResult {
    let mut fx = Fixture::new("homeless", route_options())?;
    // A contact of schema 1 wrote to us on our relay, the one hum/1's link may still go to.
    let mut bob = fx.peer_at_home("bob")?;
    let person = bob.id.public().fingerprint();
    fx.core()?.store.tx(|db| db.delete_home(&person))?;
    // Restarted while the telling waits (no relay took it): it is not told twice.
    fx.auto = false;
    fx.reopen()?;
    fx.reopen()?;
    fx.auto = true;
    fx.relay()?;
    let told: Vec<AppMessage> = bob.receive(&mut fx)?;
    let homes: Vec<(String, [u8; 32])> = told
        .iter()
        .filter_map(|m| match m {
            AppMessage::Home { relay, delivery } => Some((relay.clone(), **delivery)),
            _ => None,
        })
        .collect();
    let me = fx.core()?.my_home();
    assert_eq!(homes, [(me.relay, *me.delivery)], "told {told:?}");
    let room = RoomId(fx.room_of(bob.cid)?);
    take_queued(&mut fx);
    say(&mut fx, room, "over hum/1")?;
    assert!(take_queued(&mut fx).is_empty(), "no home, no hum/2 deposit");
    fx.relay()?;
    let got = bob.receive(&mut fx)?;
    assert!(
        got.iter()
            .any(|m| matches!(m, AppMessage::Text { text, .. } if text == "over hum/1")),
        "{got:?}"
    );
    // Bob says where he receives: the next text goes through the hum/2 link, to there.
    bob.send(
        &mut fx,
        &AppMessage::Home {
            relay: home().to_string(),
            delivery: Zeroizing::new(peer_delivery("bob")),
        },
    )?;
    say(&mut fx, room, "over hum/2")?;
    let queued = take_queued(&mut fx);
    assert!(queued.iter().any(|o| o.to[0].home == home()), "{queued:?}");
    Ok(())
}

/// Every deposit the hum/2 link is handed is stored at once, as it comes, until no more
/// come; returns them.
fn stored_all(
    fx: &mut Fixture,
) -> Result<Vec<hum_shared::route::session::Outgoing>, Box<dyn std::error::Error>> {
    let mut all = Vec::new();
    loop {
        let outs = take_queued(fx);
        if outs.is_empty() {
            return Ok(all);
        }
        for o in outs {
            fx.input(Input::Route(
                crate::engine::route_link::RouteReport::Stored(o.id),
            ))?;
            all.push(o);
        }
    }
}

/// A group this profile runs with Bob (homed at this profile's relay) and Carol (at the
/// peer relay), every deposit of its making stored; returns its room.
fn team_at_two_relays(fx: &mut Fixture) -> Result<i64, Box<dyn std::error::Error>> {
    let bob = fx.peer_at_home("bob")?;
    let carol = fx.peer("carol")?;
    fx.command(Command::CreateGroup {
        name: "team".into(),
    })?;
    let (rid, _) = group_room(fx)?;
    for cid in [bob.cid, carol.cid] {
        fx.command(Command::GroupAdd {
            room: RoomId(rid),
            contact: ContactId(cid),
        })?;
    }
    stored_all(fx)?;
    Ok(rid)
}

/// A group text that every member's relay stored waits for no receipt, but it stays in
/// the outbox (sealed) until the relays' time to live is over: it is not sent again on
/// the re-send schedule, nor when the profile starts again, but when one of those relays
/// restarts (losing what it held) it goes again, to that relay only.
#[test]
fn a_stored_group_text_is_kept_for_a_relay_that_restarts() -> TestResult {
    use crate::engine::route_link::RouteReport;
    use hum_shared::route::RelayId;
    let mut fx = Fixture::new("kept-group", route_options())?;
    let rid = team_at_two_relays(&mut fx)?;
    let groups = |outs: Vec<hum_shared::route::session::Outgoing>| -> Vec<_> {
        outs.into_iter().filter(|o| o.group.is_some()).collect()
    };
    say(&mut fx, RoomId(rid), "kept")?;
    let first = groups(stored_all(&mut fx)?);
    let mut relays: Vec<String> = first.iter().map(|o| o.to[0].home.to_string()).collect();
    relays.sort();
    let mut want = vec![home().to_string(), peer_relay().to_string()];
    want.sort();
    assert_eq!(relays, want, "one deposit per member relay");
    assert_eq!(fx.core()?.store.db().kept_outbox()?.len(), 1, "kept");

    // Not on the re-send schedule, nor at a start of the profile.
    fx.wait(Duration::from_secs(3 * 3600));
    fx.input(Input::Timer)?;
    assert!(groups(take_queued(&mut fx)).is_empty(), "no re-send");
    fx.reopen()?;
    let at_start = groups(stored_all(&mut fx)?);
    let kept_env = &first[0].envelope;
    assert!(
        !at_start.iter().any(|o| &o.envelope == kept_env),
        "none at the start: {} of {}",
        at_start.len(),
        fx.core()?.store.db().outbox()?.len()
    );

    // Carol's relay restarts: the text goes there again, and only there.
    let carols = RelayId::of_fingerprint(&peer_relay().fingerprint);
    fx.input(Input::Route(RouteReport::Restarted(carols)))?;
    let again = groups(stored_all(&mut fx)?);
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].to[0].home, peer_relay());
    let carols_first = first.iter().find(|o| o.to[0].home == peer_relay());
    assert_eq!(carols_first.map(|o| &o.envelope), Some(&again[0].envelope));
    assert_eq!(fx.core()?.store.db().kept_outbox()?.len(), 1, "kept again");

    // When the relays would have dropped it, it leaves the outbox.
    fx.wait(Duration::from_secs(7 * 24 * 3600));
    fx.input(Input::Timer)?;
    assert!(fx.core()?.store.db().kept_outbox()?.is_empty());
    let left: Vec<_> = fx
        .core()?
        .store
        .db()
        .outbox()?
        .into_iter()
        .filter(|(_, h)| matches!(h.dest, Some(Dest::Group(_))))
        .collect();
    assert!(left.is_empty(), "{} group rows left", left.len());
    fx.input(Input::Route(RouteReport::Restarted(carols)))?;
    assert!(
        groups(stored_all(&mut fx)?).is_empty(),
        "nothing after its time"
    );
    Ok(())
}

/// A relay that restarts while a group text's round of deposits is still out (its own
/// copy stored, another relay's not yet answered) gets the text again once the round is
/// over: its copy was lost with the restart. (Before, the row counted as stored
/// everywhere and that relay's members never got it.)
#[test]
fn a_restart_during_a_group_texts_round_gets_that_relay_its_copy_again() -> TestResult {
    use crate::engine::route_link::RouteReport;
    use hum_shared::route::RelayId;
    let mut fx = Fixture::new("kept-round", route_options())?;
    let rid = team_at_two_relays(&mut fx)?;
    say(&mut fx, RoomId(rid), "mid-round")?;
    let round: Vec<_> = take_queued(&mut fx)
        .into_iter()
        .filter(|o| o.group.is_some())
        .collect();
    assert_eq!(round.len(), 2);
    let carols = round
        .iter()
        .find(|o| o.to[0].home == peer_relay())
        .ok_or("no deposit for carol's relay")?;
    let bobs = round
        .iter()
        .find(|o| o.to[0].home == home())
        .ok_or("no deposit for bob's relay")?;
    // Carol's relay stores its copy, restarts, and only then does Bob's relay answer.
    fx.input(Input::Route(RouteReport::Stored(carols.id)))?;
    let carol_relay = RelayId::of_fingerprint(&peer_relay().fingerprint);
    fx.input(Input::Route(RouteReport::Restarted(carol_relay)))?;
    fx.input(Input::Route(RouteReport::Stored(bobs.id)))?;
    let again: Vec<_> = stored_all(&mut fx)?
        .into_iter()
        .filter(|o| o.group.is_some())
        .collect();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].to[0].home, peer_relay());
    assert_eq!(again[0].envelope, carols.envelope);
    Ok(())
}

/// When a member of a group this profile runs says where it receives, every member is
/// sent the member list again, now with that home in it: their texts reach it over hum/2.
#[test]
fn a_members_home_learnt_goes_to_the_groups_members() -> TestResult {
    let mut fx = Fixture::new("homeless-member", route_options())?;
    let mut bob = fx.peer_at_home("bob")?;
    let mut carol = fx.peer("carol")?;
    fx.command(Command::CreateGroup {
        name: "team".into(),
    })?;
    let (rid, _) = group_room(&mut fx)?;
    for cid in [bob.cid, carol.cid] {
        fx.command(Command::GroupAdd {
            room: RoomId(rid),
            contact: ContactId(cid),
        })?;
    }
    let person = bob.id.public().fingerprint();
    fx.core()?.store.tx(|db| db.delete_home(&person))?;
    fx.reopen()?;
    stored_all(&mut fx)?;
    bob.send(
        &mut fx,
        &AppMessage::Home {
            relay: home().to_string(),
            delivery: Zeroizing::new(peer_delivery("bob")),
        },
    )?;
    // Carol's copy of the list, through the hum/2 link to her home.
    let mut lists = Vec::new();
    for out in stored_all(&mut fx)? {
        if out.to[0].home != peer_relay() {
            continue;
        }
        let Ok(part) = carol.session.open(&out.envelope) else {
            continue;
        };
        if let Some((_, payload)) = carol.reassembler.insert(&part)?
            && let AppMessage::GroupUpdate { members, .. } = postcard::from_bytes(&payload)?
        {
            lists.push(members);
        }
    }
    let bobs: Vec<Option<String>> = lists
        .iter()
        .flatten()
        .filter(|m| m.identity == bob.id.public().to_bytes().to_vec())
        .map(|m| m.home.as_ref().map(|h| h.relay.clone()))
        .collect();
    assert_eq!(bobs, [Some(home().to_string())], "{} lists", lists.len());
    Ok(())
}

/// With the hum/2 link, hum/1's links go to no relay but the single relay this profile
/// uses as entry and home: writing to a contact homed elsewhere, or subscribing its
/// mailboxes, opens no connection there (the relay would see this client's address and
/// when it writes).
#[test]
fn no_hum1_link_goes_to_a_contacts_relay() -> TestResult {
    let mut fx = Fixture::new("no-hum1", route_options())?;
    let bob = fx.peer("bob")?;
    let room = RoomId(fx.room_of(bob.cid)?);
    say(&mut fx, room, "hello")?;
    fx.reopen()?;
    say(&mut fx, room, "again")?;
    assert!(
        fx.links.keys().all(|r| *r == home()),
        "links to {:?}",
        fx.links.keys().collect::<Vec<_>>()
    );
    assert_eq!(take_queued(&mut fx).len(), 1, "the hum/2 link carries it");
    Ok(())
}

/// A text the hum/2 link carries is counted as waiting on hum/1's link only until that
/// link sees it is not its own: the last count the faces were told is 0, not the 1 told
/// when the text was written.
#[test]
fn hum1s_link_does_not_keep_counting_what_the_hum2_link_took() -> TestResult {
    let mut fx = Fixture::new("route-count", route_options())?;
    // On one relay with the profile, where hum/1's link may run beside the hum/2 link.
    let bob = fx.peer_at_home("bob")?;
    let room = RoomId(fx.room_of(bob.cid)?);
    take_queued(&mut fx);
    fx.events();
    say(&mut fx, room, "one")?;
    assert_eq!(take_queued(&mut fx).len(), 1, "the hum/2 link took it");
    let counts: Vec<u32> = fx
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Link(l) => Some(l.queued),
            _ => None,
        })
        .collect();
    assert_eq!(counts.last(), Some(&0), "told {counts:?}");
    Ok(())
}

#[test]
fn a_contacts_messages_leave_through_the_route_link_one_at_a_time() -> TestResult {
    use crate::engine::route_link::RouteReport;
    let after = Duration::from_secs(600);
    let mut fx = Fixture::new(
        "route-send",
        EngineOptions {
            resend_after: after,
            ..route_options()
        },
    )?;
    let mut bob = fx.peer("bob")?;
    let room = RoomId(fx.room_of(bob.cid)?);
    take_queued(&mut fx);
    fx.events();
    let hum1 = fx.deposits.len();
    say(&mut fx, room, "one")?;
    say(&mut fx, room, "two")?;
    assert_eq!(
        fx.deposits.len(),
        hum1,
        "a contact's message went over hum/1"
    );
    let mut got = Vec::new();
    let mut open = |bob: &mut Peer, out: &hum_shared::route::session::Outgoing| -> TestResult {
        assert_eq!(out.key, bob.session.receive_tag_key());
        assert_eq!(out.to[0].home, peer_relay());
        let part = bob.session.open(&out.envelope)?;
        if let Some((_, payload)) = bob.reassembler.insert(&part)? {
            got.push(postcard::from_bytes::<AppMessage>(&payload)?);
        }
        Ok(())
    };
    let first = take_queued(&mut fx);
    assert_eq!(first.len(), 1, "one in flight per contact");
    open(&mut bob, &first[0])?;
    fx.input(Input::Route(RouteReport::Again(first[0].id)))?;
    assert!(
        take_queued(&mut fx).is_empty(),
        "the session retries by itself"
    );
    fx.input(Input::Route(RouteReport::Stored(first[0].id)))?;
    assert!(
        fx.events().iter().any(|e| matches!(
            e,
            Event::Delivery {
                state: Delivery::Sent,
                ..
            }
        )),
        "a stored message is sent"
    );
    let second = take_queued(&mut fx);
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].id, first[0].id);
    open(&mut bob, &second[0])?;
    fx.input(Input::Route(RouteReport::Stored(second[0].id)))?;
    assert_eq!(texts(&got), ["one", "two"]);
    assert!(take_queued(&mut fx).is_empty());

    // No receipt: both go again after the wait, one at a time, as fresh attempts.
    fx.wait(after + Duration::from_secs(1));
    fx.input(Input::Timer)?;
    let again = take_queued(&mut fx);
    assert_eq!(again.len(), 1);
    assert!(again[0].id != first[0].id && again[0].id != second[0].id);
    assert_eq!(again[0].envelope, first[0].envelope);

    // A restart sends what was not receipted again, from the first.
    fx.reopen()?;
    let restarted = take_queued(&mut fx);
    assert_eq!(restarted.len(), 1);
    assert_eq!(restarted[0].envelope, first[0].envelope);
    Ok(())
}

/// With the hum/2 link, a receipt does not leave the moment its message arrives: it waits
/// a random time (here a mean of a minute), or leaves with the next text to that contact,
/// just ahead of it.
#[test]
fn receipts_wait_a_random_time_or_go_with_the_next_text() -> TestResult {
    use super::homes::Sender;
    use crate::engine::route_link::RouteReport;
    let mut fx = Fixture::new(
        "route-receipts",
        EngineOptions {
            receipt_delay: Duration::from_secs(60),
            ..route_options()
        },
    )?;
    let mut bob = fx.peer("bob")?;
    let room = RoomId(fx.room_of(bob.cid)?);
    let cid = bob.cid;
    // Bob's texts come through the hum/2 link.
    let from_bob =
        |fx: &mut Fixture, bob: &mut Peer, text: &str| -> Result<Uid, Box<dyn std::error::Error>> {
            let uid = random_uid()?;
            let msg = AppMessage::Text {
                uid,
                sent_at: fx.now.millis(),
                text: text.into(),
            };
            for part in split(random_u64()?, &enc(&msg)?, Session::PLAINTEXT_CAPACITY)? {
                let envelope = bob.session.seal(&part)?;
                fx.input(Input::Route(RouteReport::Received {
                    who: Sender::Contact(cid).expected(),
                    envelope,
                    tick: 0,
                }))?;
            }
            Ok(uid)
        };
    let opened = |bob: &mut Peer,
                  out: &hum_shared::route::session::Outgoing|
     -> Result<Option<AppMessage>, Box<dyn std::error::Error>> {
        let part = bob.session.open(&out.envelope)?;
        Ok(match bob.reassembler.insert(&part)? {
            Some((_, payload)) => Some(postcard::from_bytes(&payload)?),
            None => None,
        })
    };
    take_queued(&mut fx);
    let first = from_bob(&mut fx, &mut bob, "hello")?;
    fx.input(Input::Timer)?;
    assert!(take_queued(&mut fx).is_empty(), "a receipt left at once");
    // Within the hour (a mean of a minute), it leaves.
    let mut queued = Vec::new();
    for _ in 0..3600 {
        fx.wait(Duration::from_secs(1));
        fx.input(Input::Timer)?;
        queued = take_queued(&mut fx);
        if !queued.is_empty() {
            break;
        }
    }
    assert_eq!(queued.len(), 1, "the receipt never left");
    match opened(&mut bob, &queued[0])? {
        Some(AppMessage::Receipt { uids }) => assert_eq!(uids, [first]),
        other => return Err(format!("not a receipt: {other:?}").into()),
    }
    fx.input(Input::Route(RouteReport::Stored(queued[0].id)))?;

    // A second text's receipt rides ahead of the reply.
    let second = from_bob(&mut fx, &mut bob, "again")?;
    fx.input(Input::Timer)?;
    assert!(take_queued(&mut fx).is_empty(), "a receipt left at once");
    say(&mut fx, room, "reply")?;
    let ahead = take_queued(&mut fx);
    assert_eq!(ahead.len(), 1);
    match opened(&mut bob, &ahead[0])? {
        Some(AppMessage::Receipt { uids }) => assert_eq!(uids, [second]),
        other => return Err(format!("not a receipt: {other:?}").into()),
    }
    fx.input(Input::Route(RouteReport::Stored(ahead[0].id)))?;
    let reply = take_queued(&mut fx);
    assert_eq!(reply.len(), 1);
    match opened(&mut bob, &reply[0])? {
        Some(AppMessage::Text { text, .. }) => assert_eq!(text, "reply"),
        other => return Err(format!("not the reply: {other:?}").into()),
    }
    Ok(())
}

/// With the hum/2 link, a group's members are expected under their speaker tag keys (from
/// the member list, before their sender keys come), and
/// a group text leaves as one deposit per destination relay of the members, under this
/// member's speaker tag key, wrapped for the group; it is sent once every deposit is
/// stored. A member's text through the link is opened and shown.
#[test]
fn group_texts_go_through_the_route_link_per_destination_relay() -> TestResult {
    use super::homes::Sender;
    use crate::engine::route_link::{RouteOp, RouteReport};
    let mut fx = Fixture::new("route-group", route_options())?;
    let mut alice = fx.peer("alice")?;
    let bob = fx.peer("bob")?;
    let mut state = GroupState::create();
    let invite = group_invite(&alice, &state, vec![bob.as_member("bob")])?;
    alice.send(&mut fx, &invite)?;
    let (rid, _) = group_room(&mut fx)?;
    let group = state.tag_key()?;
    // Bob, whose sender key has not come yet, is expected from the member list alone.
    let bobs_key = group.speaker(bob.id.public().fingerprint().as_bytes());
    assert!(
        fx.route_ops
            .iter()
            .any(|op| matches!(op, RouteOp::Expect { key, .. } if *key == bobs_key)),
        "bob is not expected before his sender key comes"
    );
    let alices_key = group.speaker(alice.id.public().fingerprint().as_bytes());
    let who = fx
        .route_ops
        .iter()
        .find_map(|op| match op {
            RouteOp::Expect {
                who,
                key,
                unwrap: hum_shared::route::session::Unwrap::Group(k),
            } if *key == alices_key && *k == group => Some(*who),
            _ => None,
        })
        .ok_or("alice is not expected under her speaker key")?;
    assert!(matches!(Sender::of(who), Some(Sender::Member { room, .. }) if room == rid));

    take_queued(&mut fx);
    fx.events();
    say(&mut fx, RoomId(rid), "hi all")?;
    let deposits: Vec<_> = take_queued(&mut fx)
        .into_iter()
        .filter(|o| o.group.is_some())
        .collect();
    // Alice and Bob are both homed at the peer relay: one deposit for both.
    assert_eq!(deposits.len(), 1);
    let d = &deposits[0];
    assert_eq!(d.group.as_ref(), Some(&group));
    let me = fx.core()?.me.public().fingerprint();
    assert_eq!(d.key, group.speaker(me.as_bytes()));
    let mut homes: Vec<[u8; 32]> = d.to.iter().map(|c| *c.secret.expose_secret()).collect();
    homes.sort_unstable();
    let mut want = [peer_delivery("alice"), peer_delivery("bob")];
    want.sort_unstable();
    assert_eq!(homes, want);
    fx.input(Input::Route(RouteReport::Stored(d.id)))?;
    assert!(
        fx.events().iter().any(|e| matches!(
            e,
            Event::Delivery {
                state: Delivery::Sent,
                ..
            }
        )),
        "a stored group text is sent"
    );
    // Nobody receipts it on hum/2: stored, it is done, and only kept for a relay that
    // restarts (no re-send waiting for a receipt that never comes).
    let left: Vec<i64> = fx
        .core()?
        .store
        .db()
        .outbox()?
        .into_iter()
        .filter(|(_, h)| h.dest == Some(Dest::Group(rid)))
        .map(|(id, _)| id)
        .collect();
    let kept: Vec<i64> = fx
        .core()?
        .store
        .db()
        .kept_outbox()?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        left, kept,
        "a stored group text is kept, nothing else waits"
    );
    assert_eq!(kept.len(), 1);

    let msg = AppMessage::Text {
        uid: random_uid()?,
        sent_at: fx.now.millis(),
        text: "from alice, over hum/2".into(),
    };
    let parts = split(
        random_u64()?,
        &enc(&msg)?,
        hum_shared::crypto::GroupSender::PLAINTEXT_CAPACITY,
    )?;
    let mut sealed = Vec::new();
    for p in parts {
        let envelope = state.seal(&p)?;
        sealed.push(envelope.clone());
        fx.input(Input::Route(RouteReport::Received {
            who,
            envelope,
            tick: 0,
        }))?;
    }
    assert!(
        fx.events()
            .iter()
            .any(|e| matches!(e, Event::Message(m) if m.text == "from alice, over hum/2")),
        "alice's group text was not shown"
    );
    // The same copies again (deposited anew after a relay restart): dropped, not kept
    // in the stash for a sender key, where they would push out envelopes that wait.
    for envelope in sealed {
        fx.input(Input::Route(RouteReport::Received {
            who,
            envelope,
            tick: 0,
        }))?;
    }
    assert_eq!(fx.core()?.stash.len(), 0, "a duplicate went to the stash");
    assert!(
        !fx.events().iter().any(|e| matches!(e, Event::Message(_))),
        "a duplicate was shown"
    );
    // And this side does not receipt alice's.
    let receipts = fx.core()?.store.db().receipts_out(100)?;
    assert!(
        receipts
            .iter()
            .all(|(_, r)| !matches!(r.dest, Dest::Group(_))),
        "a group text was receipted on hum/2"
    );
    Ok(())
}

/// A group text stays in the outbox while a member's home is unknown (its deposits
/// could not reach that member), so the re-send reaches the member once it is learnt.
#[test]
fn a_group_text_waits_in_the_outbox_for_a_member_without_a_home() -> TestResult {
    use crate::engine::route_link::RouteReport;
    let mut fx = Fixture::new("route-group-homeless", route_options())?;
    let mut alice = fx.peer("alice")?;
    let bob = fx.peer("bob")?;
    // Carol is no contact of this profile, and the list names no home for her.
    let homeless = Member {
        identity: Identity::generate().public().to_bytes().to_vec(),
        name: "carol".into(),
        home: None,
    };
    let state = GroupState::create();
    let invite = group_invite(&alice, &state, vec![bob.as_member("bob"), homeless])?;
    alice.send(&mut fx, &invite)?;
    let (rid, _) = group_room(&mut fx)?;
    take_queued(&mut fx);
    say(&mut fx, RoomId(rid), "hi all")?;
    let deposits: Vec<_> = take_queued(&mut fx)
        .into_iter()
        .filter(|o| o.group.is_some())
        .collect();
    assert!(!deposits.is_empty());
    for d in &deposits {
        fx.input(Input::Route(RouteReport::Stored(d.id)))?;
    }
    let left = fx
        .core()?
        .store
        .db()
        .outbox()?
        .into_iter()
        .filter(|(_, h)| h.dest == Some(Dest::Group(rid)))
        .count();
    assert!(
        left > 0,
        "the text left the outbox before carol could be reached"
    );
    Ok(())
}

/// With the hum/2 link, the answer to an accepted invite leaves through it, to the
/// inviter's home under the tag key the invite carried, and a text to the new contact
/// waits until it is stored: the inviter knows the contact before its first message.
#[test]
fn an_invite_answer_leaves_through_the_route_link_before_any_text() -> TestResult {
    use crate::engine::route_link::RouteReport;
    let mut fx = Fixture::new("route-answer", route_options())?;
    let inviter = Identity::generate();
    let (invite, _secret) = inviter.create_invite(&home().to_string(), 3600, fx.now.secs())?;
    take_queued(&mut fx);
    let hum1 = fx.deposits.len();
    fx.command(Command::AcceptInvite {
        code: invite.encode(),
        name: Some("dora".into()),
    })?;
    assert_eq!(fx.deposits.len(), hum1, "the answer went over hum/1");
    let cid = fx
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Contact { id, name } if name == "dora" => Some(id.0),
            _ => None,
        })
        .ok_or("no contact")?;
    let room = RoomId(fx.room_of(cid)?);
    say(&mut fx, room, "first text")?;
    let answer = take_queued(&mut fx);
    assert_eq!(answer.len(), 1, "the text did not wait for the answer");
    assert_eq!(&answer[0].key, invite.tag_key());
    assert_eq!(answer[0].to[0].home, home());
    assert_eq!(
        answer[0].to[0].secret.expose_secret(),
        invite.delivery_secret().expose_secret()
    );
    fx.input(Input::Route(RouteReport::Stored(answer[0].id)))?;
    let text = take_queued(&mut fx);
    assert_eq!(text.len(), 1);
    assert_ne!(&text[0].key, invite.tag_key());
    Ok(())
}

/// With the hum/2 link, a message's part count is padded to 1, 4 or 16 parts: a text two
/// parts long leaves as four deposits, and comes out whole.
#[test]
fn part_counts_are_padded_on_the_route_link() -> TestResult {
    use crate::engine::route_link::RouteReport;
    let mut fx = Fixture::new("route-pad", route_options())?;
    let mut bob = fx.peer("bob")?;
    let room = RoomId(fx.room_of(bob.cid)?);
    take_queued(&mut fx);
    let check = |fx: &mut Fixture,
                 bob: &mut Peer,
                 text: &str|
     -> Result<usize, Box<dyn std::error::Error>> {
        say(fx, room, text)?;
        let mut deposits = 0;
        for _ in 0..64 {
            let queued = take_queued(fx);
            let Some(out) = queued.first() else {
                break;
            };
            deposits += queued.len();
            let part = bob.session.open(&out.envelope)?;
            if let Some((_, payload)) = bob.reassembler.insert(&part)? {
                let msg: AppMessage = postcard::from_bytes(&payload)?;
                assert_eq!(texts(&[msg]), [text]);
            }
            fx.input(Input::Route(RouteReport::Stored(out.id)))?;
        }
        Ok(deposits)
    };
    assert_eq!(check(&mut fx, &mut bob, "short")?, 1);
    let long = "x".repeat(Session::PLAINTEXT_CAPACITY + 100);
    assert_eq!(check(&mut fx, &mut bob, &long)?, 4);
    Ok(())
}

/// A change of a group's members that keeps its generation tells the hum/2 link only the
/// difference: the member who left is forgotten, the one added expected, and those who
/// stay keep their names (so the session keeps how far it saw them). A new generation
/// tells every member afresh under the new keys.
#[test]
fn a_change_of_members_forgets_only_those_who_left() -> TestResult {
    use crate::engine::route_link::{Expected, RouteOp};
    let mut fx = Fixture::new("route-members", route_options())?;
    let mut alice = fx.peer("alice")?;
    let bob = fx.peer("bob")?;
    let carol = fx.peer("carol")?;
    let dave = fx.peer("dave")?;
    let mut state = GroupState::create();
    let invite = group_invite(
        &alice,
        &state,
        vec![bob.as_member("bob"), carol.as_member("carol")],
    )?;
    alice.send(&mut fx, &invite)?;
    let group = state.tag_key()?;
    let name_of = |ops: &[RouteOp], who: &Peer| -> Option<Expected> {
        let key = group.speaker(who.id.public().fingerprint().as_bytes());
        ops.iter().find_map(|op| match op {
            RouteOp::Expect { who, key: k, .. } if *k == key => Some(*who),
            _ => None,
        })
    };
    let ops = std::mem::take(&mut fx.route_ops);
    let (a, b, c) = (
        name_of(&ops, &alice).ok_or("alice not expected")?,
        name_of(&ops, &bob).ok_or("bob not expected")?,
        name_of(&ops, &carol).ok_or("carol not expected")?,
    );
    let forgotten = |ops: &[RouteOp]| -> Vec<Expected> {
        ops.iter()
            .filter_map(|op| match op {
                RouteOp::Forget(w) => Some(*w),
                _ => None,
            })
            .collect()
    };
    let expected = |ops: &[RouteOp]| {
        ops.iter()
            .filter(|op| matches!(op, RouteOp::Expect { .. }))
            .count()
    };

    // Bob leaves, Dave comes in; the admin has not rotated yet.
    let update = |members: Vec<Member>| -> Result<AppMessage, EngineError> {
        Ok(AppMessage::GroupUpdate {
            uid: random_uid()?,
            group: state.group_id(),
            name: "plans".into(),
            members,
            dist: None,
        })
    };
    alice.send(
        &mut fx,
        &update(vec![
            alice.as_member("alice"),
            carol.as_member("carol"),
            dave.as_member("dave"),
        ])?,
    )?;
    let ops = std::mem::take(&mut fx.route_ops);
    assert_eq!(forgotten(&ops), [b], "only bob is forgotten");
    assert_eq!(expected(&ops), 1, "only dave is expected anew");
    let d = name_of(&ops, &dave).ok_or("dave not expected")?;
    assert!(![a, c].contains(&d), "dave takes a name nobody holds");

    // Nothing changes: nothing is told.
    fx.handle(Input::Timer)?;
    assert!(
        !fx.route_ops
            .iter()
            .any(|op| matches!(op, RouteOp::Expect { .. } | RouteOp::Forget(_))),
        "{:?}",
        fx.route_ops
    );

    // A new generation: every member is told again under the new keys.
    let dist = state.rotate()?;
    alice.send(
        &mut fx,
        &AppMessage::GroupUpdate {
            uid: random_uid()?,
            group: state.group_id(),
            name: "plans".into(),
            members: vec![
                alice.as_member("alice"),
                carol.as_member("carol"),
                dave.as_member("dave"),
            ],
            dist: Some(dist.to_bytes()?),
        },
    )?;
    let ops = std::mem::take(&mut fx.route_ops);
    let mut gone = forgotten(&ops);
    gone.sort_by_key(|e| e.0);
    let mut all = vec![a, c, d];
    all.sort_by_key(|e| e.0);
    assert_eq!(gone, all);
    let group = state.tag_key()?;
    for who in [&alice, &carol, &dave] {
        let key = group.speaker(who.id.public().fingerprint().as_bytes());
        assert!(
            ops.iter()
                .any(|op| matches!(op, RouteOp::Expect { key: k, .. } if *k == key)),
            "a member is not expected under the new key"
        );
    }
    Ok(())
}

/// Where someone receives is learnt once: from a contact's own hello, or, for a member
/// who is not a contact, from the first member list that names them. A later list (of
/// another group, whose admin may be anyone) neither replaces a contact's home nor a
/// member's.
#[test]
fn a_member_list_does_not_replace_a_known_home() -> TestResult {
    let mut fx = Fixture::new("homes-kept", options())?;
    let mut alice = fx.peer("alice")?;
    let mut bob = fx.peer("bob")?;
    let eve = Identity::generate();
    let member = |identity: &Identity, name: &str, secret: &str| Member {
        identity: identity.public().to_bytes().to_vec(),
        name: name.into(),
        home: Some(crate::engine::wire::MemberHome {
            relay: peer_relay().to_string(),
            delivery: Zeroizing::new(peer_delivery(secret)),
        }),
    };
    let first = GroupState::create();
    alice.send(
        &mut fx,
        &group_invite(&alice, &first, vec![member(&eve, "eve", "eve")])?,
    )?;
    // Bob's group names Eve, and Alice (a contact), with homes of his choosing.
    let second = GroupState::create();
    bob.send(
        &mut fx,
        &group_invite(
            &bob,
            &second,
            vec![
                member(&eve, "eve", "bob's pick"),
                member(&alice.id, "alice", "bob's pick"),
            ],
        )?,
    )?;
    let core = fx.core()?;
    let eves = core
        .homes
        .get(&eve.public().fingerprint())
        .ok_or("eve's home was not learnt")?;
    assert_eq!(
        *eves.delivery,
        peer_delivery("eve"),
        "eve's home was replaced"
    );
    let alices = core
        .homes
        .get(&alice.id.public().fingerprint())
        .ok_or("alice's home is gone")?;
    assert_eq!(
        *alices.delivery,
        peer_delivery("alice"),
        "a contact's home was replaced"
    );
    Ok(())
}

/// With the hum/2 link, quitting waits for a deposit in flight while the link has not
/// come up yet (as at the end of a piped script, right after the start), and stops once
/// it is stored; a link that went down is not waited for, and what it would carry stays
/// in the outbox for the next start.
#[test]
fn quitting_waits_for_a_route_link_still_coming_up_but_not_for_one_down() -> TestResult {
    use crate::engine::route_link::RouteReport;
    let route = route_options();
    let mut fx = Fixture::new("route-quit", route)?;
    let bob = fx.peer("bob")?;
    let room = RoomId(fx.room_of(bob.cid)?);
    take_queued(&mut fx);
    say(&mut fx, room, "last words")?;
    let queued = take_queued(&mut fx);
    assert_eq!(queued.len(), 1);
    assert!(
        fx.handle(Input::Command(Command::Quit))?,
        "stopped before a link still coming up took the deposit"
    );
    fx.input(Input::Route(RouteReport::Up {
        single: true,
        tick_micros: 1_000,
    }))?;
    assert!(!fx.stopped);
    assert!(!fx.handle(Input::Route(RouteReport::Stored(queued[0].id)))?);
    assert!(fx.stopped);

    let mut fx = Fixture::new("route-quit-down", route)?;
    let bob = fx.peer("bob")?;
    let room = RoomId(fx.room_of(bob.cid)?);
    say(&mut fx, room, "later")?;
    assert!(fx.handle(Input::Command(Command::Quit))?);
    assert!(!fx.handle(Input::Route(RouteReport::Down {
        retry_in_ms: 100,
        cause: None,
    }))?);
    assert!(fx.stopped);
    assert!(
        !fx.core()?.store.db().outbox()?.is_empty(),
        "kept for the next start"
    );
    Ok(())
}
