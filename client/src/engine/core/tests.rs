//! The core driven directly, without sockets: a fake relay answers its deposits, and fake
//! peers hold the other side of each session, so a test can see and forge exactly what
//! travels.

use std::path::PathBuf;

use hum_shared::crypto::{KdfParams, KdfPolicy, MailboxId};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::*;
use crate::engine::scratch::Scratch;
use crate::engine::{EngineOptions, ProfilePaths};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Queues = Arc<Mutex<HashMap<String, Arc<Mutex<VecDeque<Up>>>>>>;

fn home() -> String {
    format!("hum://home.relay.test:7447#{}", "cd".repeat(32))
}

fn peer_relay() -> String {
    format!("hum://peer.relay.test:7447#{}", "ef".repeat(32))
}

/// One engine core on a fake relay.
struct Fixture {
    core: Option<Core>,
    events: UnboundedReceiver<Event>,
    queues: Queues,
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
        let (tx, events) = unbounded_channel();
        let mut fx = Self {
            core: None,
            events,
            queues: Arc::new(Mutex::new(HashMap::new())),
            deposits: Vec::new(),
            seq: 0,
            paths,
            options,
            dir,
        };
        fx.start(unlocked, tx)?;
        Ok(fx)
    }

    fn start(
        &mut self,
        unlocked: crate::engine::Unlocked,
        events: tokio::sync::mpsc::UnboundedSender<Event>,
    ) -> Result<(), EngineError> {
        let queues = self.queues.clone();
        let spawn: LinkSpawner = Box::new(move |relay, queue, _stop| {
            if let Ok(mut q) = queues.lock() {
                q.insert(relay.to_owned(), queue);
            }
        });
        let mut core = Core::new(unlocked, home(), events, spawn, self.options)?;
        core.start()?;
        self.core = Some(core);
        self.relay()
    }

    /// Stops the core (closing the store) and opens the profile again.
    fn reopen(&mut self) -> Result<(), EngineError> {
        self.core = None;
        let unlocked = crate::engine::unlock_with(&self.paths, b"pw", KdfPolicy::InsecureForTests)?;
        let (tx, events) = unbounded_channel();
        self.events = events;
        self.start(unlocked, tx)
    }

    fn core(&mut self) -> Result<&mut Core, EngineError> {
        self.core
            .as_mut()
            .ok_or_else(|| EngineError::Store("the core is stopped".into()))
    }

    fn input(&mut self, input: Input) -> Result<(), EngineError> {
        self.core()?.handle(input)?;
        self.relay()
    }

    fn command(&mut self, c: Command) -> Result<(), EngineError> {
        self.input(Input::Command(c))
    }

    /// The fake relay: takes what every link queued, stores each deposit and answers
    /// `Stored`, until nothing more is queued.
    fn relay(&mut self) -> Result<(), EngineError> {
        loop {
            // Every link the core opened connects at once.
            let down: Vec<String> = self
                .core()?
                .links
                .iter()
                .filter(|(_, l)| !l.up)
                .map(|(r, _)| r.clone())
                .collect();
            for relay in down {
                self.core()?.handle(Input::LinkUp {
                    relay,
                    tick: 0,
                    tick_micros: 1_000,
                })?;
            }
            let ops: Vec<(String, Up)> = {
                let queues = self
                    .queues
                    .lock()
                    .map_err(|_| EngineError::Store("poisoned".into()))?;
                queues
                    .iter()
                    .flat_map(|(relay, q)| {
                        q.lock()
                            .map(|mut q| q.drain(..).map(|op| (relay.clone(), op)).collect())
                            .unwrap_or_else(|_| Vec::new())
                    })
                    .collect()
            };
            if ops.is_empty() {
                return Ok(());
            }
            for (relay, op) in ops {
                if let Up::Deposit {
                    tag,
                    mailbox,
                    envelope,
                    ..
                } = op
                {
                    self.deposits.push((mailbox, envelope));
                    self.core()?.handle(Input::Down {
                        relay,
                        op: Down::Stored { tag },
                    })?;
                }
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
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
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
        let code = self.invite_code()?;
        let peer = Identity::generate();
        let invite = Invite::decode(&code, now_secs())?;
        let hello = enc(&Hello {
            name: name.into(),
            relay: peer_relay(),
        })?;
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
            .ok_or(EngineError::Unknown("contact"))
    }

    fn store_file(&self) -> PathBuf {
        self.paths.store()
    }

    /// Waits until `expires_at` (unix seconds) has passed, runs the timer once (the fake
    /// relay does not answer), and says whether the home link was told to unsubscribe
    /// `mailbox`.
    fn unsubscribed_after(
        &mut self,
        expires_at: u64,
        mailbox: MailboxId,
    ) -> Result<bool, Box<dyn std::error::Error>> {
        while now_secs() <= expires_at {
            std::thread::sleep(Duration::from_millis(100));
        }
        let queue = self
            .queues
            .lock()
            .map_err(|_| "poisoned")?
            .get(&home())
            .cloned()
            .ok_or("no home link")?;
        self.core()?.handle(Input::Timer)?;
        let unsubscribed = queue
            .lock()
            .map_err(|_| "poisoned")?
            .iter()
            .any(|op| matches!(op, Up::Unsubscribe { mailbox: m } if *m == mailbox));
        Ok(unsubscribed)
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
                sent_at: now_millis(),
                text: text.into(),
            },
        )
    }

    fn as_member(&self, name: &str) -> Member {
        Member {
            identity: self.id.public().to_bytes().to_vec(),
            name: name.into(),
        }
    }
}

fn options() -> EngineOptions {
    EngineOptions::default()
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
    let invite = Invite::decode(&code, now_secs())?;
    let bob_id = Identity::generate();
    let hello = enc(&Hello {
        name: "bob".into(),
        relay: peer_relay(),
    })?;
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
    std::thread::sleep(every + Duration::from_millis(50));
    // (The fake relay does not answer this time: its answers would be new writes.)
    fx.core()?.handle(Input::Timer)?;
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
        matches!(&err, EngineError::Store(m) if m.contains("bob is with someone else")),
        "{err}"
    );
    Ok(())
}

#[test]
fn an_invite_answered_after_it_expired_is_refused_and_expired_ones_are_forgotten() -> TestResult {
    let mut fx = Fixture::new(
        "expiry",
        EngineOptions {
            invite_ttl: Duration::from_secs(1),
            ..options()
        },
    )?;
    let code = fx.invite_code()?;
    let created = now_secs();
    // The acceptor read the code while it was valid; the answer comes after its expiry.
    let invite = Invite::decode(&code, created)?;
    while now_secs() <= invite.expires_at() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let hello = enc(&Hello {
        name: "late".into(),
        relay: peer_relay(),
    })?;
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
    let mailbox = Invite::decode(&code, now_secs())?.mailbox();
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
        group: *state.group_id().as_bytes(),
        name: "plans".into(),
        relay: home(),
        members: [vec![admin.as_member("alice")], members].concat(),
        dist: state.distribution().to_bytes().map_err(crypto)?,
    })
}

fn group_room(fx: &mut Fixture) -> Result<(i64, GroupRecord), EngineError> {
    fx.core()?
        .rooms
        .iter()
        .find_map(|(&id, r)| r.group.clone().map(|g| (id, g)))
        .ok_or(EngineError::Unknown("group"))
}

#[test]
fn only_the_admin_reopens_a_closed_group() -> TestResult {
    let mut fx = Fixture::new("reopen", options())?;
    let mut alice = fx.peer("alice")?;
    let mut bob = fx.peer("bob")?;
    let alice_fp = *alice.id.public().fingerprint().as_bytes();
    let mut state = GroupState::create();
    let invite = group_invite(&alice, &state, vec![bob.as_member("bob")])?;
    alice.send(&mut fx, &invite)?;
    let (rid, g) = group_room(&mut fx)?;
    assert_eq!((g.admin, g.closed), (alice_fp, false));
    alice.send(
        &mut fx,
        &AppMessage::GroupRemoved {
            uid: random_uid()?,
            group: *state.group_id().as_bytes(),
        },
    )?;
    assert!(group_room(&mut fx)?.1.closed);
    fx.events();

    // Bob, a member until then, holds the group's id and keys and claims the room.
    let bobs = GroupState::from_distribution(&state.distribution(), &alice.id.fingerprint())?;
    let takeover = AppMessage::GroupInvite {
        uid: random_uid()?,
        group: *bobs.group_id().as_bytes(),
        name: "bob's now".into(),
        relay: peer_relay(),
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
            .any(|e| matches!(e, Event::Error { message } if message.contains("only its admin"))),
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
    let before = GroupState::from_bytes(&g.state)?;
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
    let now = GroupState::from_bytes(&group_room(&mut fx)?.1.state)?;
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
        matches!(&err, EngineError::Store(m) if m.contains("sessions row does not open")),
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
            .any(|e| matches!(e, Event::Error { message } if message.contains("1 message(s)"))),
        "{events:?}"
    );
    Ok(())
}

#[test]
fn a_used_invite_is_kept_sealed_and_forgotten_when_it_expires() -> TestResult {
    let mut fx = Fixture::new(
        "used-expiry",
        EngineOptions {
            invite_ttl: Duration::from_secs(1),
            ..options()
        },
    )?;
    let code = fx.invite_code()?;
    let invite = Invite::decode(&code, now_secs())?;
    let hello = enc(&Hello {
        name: "bob".into(),
        relay: peer_relay(),
    })?;
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
    let (invite, secret) = inviter.create_invite(&home(), 3600, now_secs())?;
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
    let contacts: Vec<i64> = fx.core()?.contacts.keys().copied().collect();
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
        sent_at: now_millis(),
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
