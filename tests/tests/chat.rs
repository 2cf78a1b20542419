//! Whole-system chat tests: in-process relays and engines over real TLS on loopback.

use std::time::Duration;

use anyhow::{Result, ensure};
use hum::api::{Command, Delivery, ErrorKind, Event, MessageKind, RoomKind, RoomSummary};
use hum_tests::harness::{Peer, TempDir, befriend, relay_config};

const TICK: Duration = Duration::from_millis(20);
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_one_with_receipts_and_long_messages() -> Result<()> {
    let dir = TempDir::new("one-to-one")?;
    let relay = hum_relay::Relay::bind(relay_config(TICK)).await?.spawn();
    let addr = relay.address().to_string();
    let mut alice = Peer::create(dir.path(), "alice", &addr)?;
    let mut bob = Peer::create(dir.path(), "bob", &addr)?;
    let ((_, alice_room), (_, bob_room)) = befriend(&mut alice, &mut bob).await?;

    let id = bob.say_queued(bob_room, "hi alice").await?;
    let got = alice.next_message().await?;
    ensure!(got.text == "hi alice" && got.sender == "bob" && got.room == alice_room);
    bob.delivery(id, Delivery::Sent).await?;
    bob.delivery(id, Delivery::Delivered).await?;

    // A long message is split into many parts and comes back whole.
    let long: String = (0..4000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect::<String>()
        + " ✓ 日本語";
    alice.say(alice_room, long.clone()).await?;
    ensure!(
        bob.next_text("alice").await? == long,
        "long message differs"
    );

    // History pages come back from the store, oldest first.
    let page = bob.history(bob_room, 10).await?;
    ensure!(page.len() == 2 && page[0].text == "hi alice" && page[1].text == long);
    alice.quit().await?;
    bob.quit().await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_invite_codes_say_what_is_wrong() -> Result<()> {
    let dir = TempDir::new("bad-invite")?;
    let relay = hum_relay::Relay::bind(relay_config(TICK)).await?.spawn();
    let addr = relay.address().to_string();
    let mut alice = Peer::create(dir.path(), "alice", &addr)?;
    let mut bob = Peer::create(dir.path(), "bob", &addr)?;
    let code = alice.invite().await?;
    // One character changed: the checksum catches it.
    let mut damaged: Vec<char> = code.chars().collect();
    let i = damaged.len() / 2;
    damaged[i] = if damaged[i] == 'q' { 'p' } else { 'q' };
    let damaged: String = damaged.into_iter().collect();
    bob.send(Command::AcceptInvite {
        code: damaged,
        name: None,
    })
    .await?;
    let (kind, msg) = bob.next_error(WAIT).await?;
    ensure!(
        kind == ErrorKind::Invite && msg.contains("damaged"),
        "unexpected error: {kind:?} {msg}"
    );
    bob.send(Command::AcceptInvite {
        code: "hello".into(),
        name: None,
    })
    .await?;
    let (kind, msg) = bob.next_error(WAIT).await?;
    ensure!(
        kind == ErrorKind::Invite && !msg.is_empty(),
        "{kind:?} {msg}"
    );
    // Accepting one's own invite is refused with a reason.
    alice
        .send(Command::AcceptInvite { code, name: None })
        .await?;
    let (kind, msg) = alice.next_error(WAIT).await?;
    ensure!(
        kind == ErrorKind::OwnInvite && msg.contains("your own invite"),
        "unexpected error: {kind:?} {msg}"
    );
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_add_talk_remove() -> Result<()> {
    let Trio {
        relay,
        mut alice,
        mut bob,
        mut carol,
        carol_id,
        group,
        bob_group,
        carol_group,
        ..
    } = trio("groups").await?;

    // Bob and Carol are not contacts of each other: their sender keys travel via Alice.
    // Everyone talks at once, right after joining: an envelope that arrives before its
    // sender's key (still on its way through Alice) is kept and opened when the key comes.
    carol.say(carol_group, "carol here").await?;
    bob.say(bob_group, "bob here").await?;
    alice.say(group, "hello group").await?;
    ensure!(bob.next_text("alice").await? == "hello group");
    ensure!(carol.next_text("alice").await? == "hello group");
    ensure!(carol.next_text("bob").await? == "bob here");
    ensure!(alice.next_text("bob").await? == "bob here");
    ensure!(bob.next_text("carol").await? == "carol here");
    // Alice's group message is sent once both members' relays stored it (on hum/2 no
    // member receipts a group text: that would tell the relays who read it).
    alice.sent_in(group).await?;

    // Remove Carol: she is told, and reads nothing sent afterwards.
    alice
        .send(Command::GroupRemove {
            room: group,
            contact: carol_id,
        })
        .await?;
    carol
        .room_where("removal", |r| r.id == carol_group && r.closed)
        .await?;
    bob.room_where("the new member list", |r| {
        r.id == bob_group && r.members.len() == 1
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice.say(group, "after carol").await?;
    ensure!(bob.next_text("alice").await? == "after carol");
    bob.say(bob_group, "bob after").await?;
    ensure!(alice.next_text("bob").await? == "bob after");
    let leaked = carol
        .wait(Duration::from_secs(2), "nothing", |e| match e {
            Event::Message(m)
                if !m.from_me && m.kind == MessageKind::Text && m.room == carol_group =>
            {
                Some(m.text.clone())
            }
            _ => None,
        })
        .await;
    ensure!(leaked.is_err(), "a removed member read {leaked:?}");
    // Adding and removing re-keys the group; keys of a replaced generation still on
    // their way are dropped quietly.
    for p in [&alice, &bob, &carol] {
        ensure!(p.errors().is_empty(), "{}: {:?}", p.name, p.errors());
    }
    relay.shutdown().await;
    Ok(())
}

/// Two relays in a mesh: Alice enters at A and is homed at B, Bob the other way round.
/// Both deliver both ways through their own entry relay only: each relay holds exactly one
/// client connection, and each relay's mailbox role stored what the other's home role
/// forwarded to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_on_different_relays_talk_through_both() -> Result<()> {
    let dir = TempDir::new("two-relays")?;
    let mut mesh = hum_tests::mesh::Mesh::new("two-relays", 2).await?;
    let (relay_a, relay_b) = mesh.start_pair(&relay_config(TICK), 8).await?;
    let (a, b) = (mesh.addrs[0].clone(), mesh.addrs[1].clone());
    let options = hum::engine::EngineOptions {
        route_link: true,
        ..hum_tests::harness::options()
    };
    let mut alice = Peer::create_mesh(dir.path(), "alice", &a, &b, options)?;
    let mut bob = Peer::create_mesh(dir.path(), "bob", &b, &a, options)?;
    let ((_, alice_room), (_, bob_room)) = befriend(&mut alice, &mut bob).await?;
    alice.say(alice_room, "to bob's relay").await?;
    ensure!(bob.next_text("alice").await? == "to bob's relay");
    bob.say(bob_room, "to alice's relay").await?;
    ensure!(alice.next_text("bob").await? == "to alice's relay");
    let (a, b) = (relay_a.stats().route, relay_b.stats().route);
    ensure!(
        a.clients == 1 && b.clients == 1,
        "hum/2 clients: {} and {}",
        a.clients,
        b.clients
    );
    ensure!(
        a.forwarded >= 1 && b.forwarded >= 1 && a.stored >= 1 && b.stored >= 1,
        "forwarded {} and {}, stored {} and {}",
        a.forwarded,
        b.forwarded,
        a.stored,
        b.stored
    );
    alice.quit().await?;
    bob.quit().await?;
    relay_a.shutdown().await;
    relay_b.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_away_reads_the_group_text_when_back() -> Result<()> {
    let Trio {
        _dir: dir,
        relay,
        mut alice,
        mut bob,
        carol,
        carol_group,
        group,
        ..
    } = trio("away-member").await?;
    // Carol goes away; Alice writes. The text is sent once every member's relay holds
    // it, Carol's absence does not hold it up, and nobody waits on a receipt from her.
    carol.quit().await?;
    let id = alice.say_queued(group, "anyone?").await?;
    ensure!(bob.next_text("alice").await? == "anyone?");
    alice.delivery(id, Delivery::Sent).await?;
    // Carol comes back and reads what was written while she was away, from her relay.
    let mut carol = Peer::reopen(dir.path(), "carol", &relay.address().to_string())?;
    let m = carol
        .wait(WAIT, "the text from while away", |e| match e {
            Event::Message(m) if !m.from_me && m.kind == MessageKind::Text => Some(m.clone()),
            _ => None,
        })
        .await?;
    ensure!(m.text == "anyone?" && m.room == carol_group, "{m:?}");
    for p in [&alice, &bob, &carol] {
        ensure!(p.errors().is_empty(), "{}: {:?}", p.name, p.errors());
    }
    relay.shutdown().await;
    Ok(())
}

/// Alice, Bob and Carol on one relay; Bob and Carol are Alice's contacts, not each
/// other's; Alice's group "ops" holds all three.
struct Trio {
    _dir: TempDir,
    relay: hum_relay::RelayHandle,
    alice: Peer,
    bob: Peer,
    carol: Peer,
    carol_id: hum::api::ContactId,
    group: hum::api::RoomId,
    bob_group: hum::api::RoomId,
    carol_group: hum::api::RoomId,
}

async fn trio(tag: &str) -> Result<Trio> {
    trio_with(tag, TICK, hum_tests::harness::options()).await
}

async fn trio_with(tag: &str, tick: Duration, options: hum::engine::EngineOptions) -> Result<Trio> {
    let dir = TempDir::new(tag)?;
    let relay = hum_relay::Relay::bind(relay_config(tick)).await?.spawn();
    let addr = relay.address().to_string();
    let mut alice = Peer::create_with(dir.path(), "alice", &addr, options)?;
    let mut bob = Peer::create_with(dir.path(), "bob", &addr, options)?;
    let mut carol = Peer::create_with(dir.path(), "carol", &addr, options)?;
    let ((bob_id, _), _) = befriend(&mut alice, &mut bob).await?;
    let ((carol_id, _), _) = befriend(&mut alice, &mut carol).await?;
    alice
        .send(Command::CreateGroup { name: "ops".into() })
        .await?;
    let group = alice
        .room_where("the group", |r| {
            r.kind == RoomKind::Group && r.name == "ops"
        })
        .await?
        .id;
    alice
        .send(Command::GroupAdd {
            room: group,
            contact: bob_id,
        })
        .await?;
    alice
        .send(Command::GroupAdd {
            room: group,
            contact: carol_id,
        })
        .await?;
    let joined =
        |r: &RoomSummary| r.kind == RoomKind::Group && r.name == "ops" && r.members.len() == 2;
    let bob_group = bob.room_where("bob in the group", joined).await?.id;
    let carol_group = carol.room_where("carol in the group", joined).await?.id;
    Ok(Trio {
        _dir: dir,
        relay,
        alice,
        bob,
        carol,
        carol_id,
        group,
        bob_group,
        carol_group,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_leave_and_the_admin_renames() -> Result<()> {
    let Trio {
        relay,
        mut alice,
        mut bob,
        mut carol,
        group,
        bob_group,
        carol_group,
        ..
    } = trio("leave-rename").await?;
    // Only the admin renames; everyone sees the new name.
    bob.send(Command::GroupRename {
        room: bob_group,
        name: "mine".into(),
    })
    .await?;
    let (kind, err) = bob.next_error(WAIT).await?;
    ensure!(
        kind == ErrorKind::NotAdmin && err.contains("creator"),
        "unexpected error: {kind:?} {err}"
    );
    alice
        .send(Command::GroupRename {
            room: group,
            name: "ops-2".into(),
        })
        .await?;
    for (p, room) in [(&mut bob, bob_group), (&mut carol, carol_group)] {
        p.room_where("the new name", |r| r.id == room && r.name == "ops-2")
            .await?;
    }
    // Bob leaves: his room closes, Alice and Carol see two members become one.
    bob.send(Command::GroupLeave { room: bob_group }).await?;
    bob.room_where("bob's room closed", |r| r.id == bob_group && r.closed)
        .await?;
    alice
        .room_where("alice sees bob gone", |r| {
            r.id == group && r.members == ["carol"]
        })
        .await?;
    carol
        .room_where("carol sees bob gone", |r| {
            r.id == carol_group && r.members == ["alice"]
        })
        .await?;
    // And the group goes on without him.
    alice.say(group, "after bob").await?;
    ensure!(carol.next_message().await?.text == "after bob");
    relay.shutdown().await;
    Ok(())
}

/// The events in a room's history, oldest first.
async fn events(p: &mut Peer, room: hum::api::RoomId) -> Result<Vec<String>> {
    Ok(p.history(room, 100)
        .await?
        .into_iter()
        .filter(|m| m.kind == MessageKind::Event)
        .map(|m| m.text)
        .collect())
}

async fn members(p: &mut Peer, room: hum::api::RoomId) -> Result<Vec<hum::api::MemberView>> {
    p.send(Command::Members { room }).await?;
    p.wait(WAIT, "the members", |e| match e {
        Event::Members { room: r, members } if *r == room => Some(members.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_changes_are_in_the_history_and_members_are_listed() -> Result<()> {
    let Trio {
        relay,
        mut alice,
        mut bob,
        mut carol,
        carol_id,
        group,
        bob_group,
        carol_group,
        ..
    } = trio("group-history").await?;

    // Bob's list: himself, Alice (his contact, the admin), and Carol, whom only Alice
    // vouches for: not his contact, shown with her fingerprint.
    let carols = members(&mut carol, carol_group).await?;
    let carol_fp = carols
        .iter()
        .find(|m| m.you)
        .map(|m| m.fingerprint.clone())
        .unwrap_or_default();
    let list = members(&mut bob, bob_group).await?;
    let seen: Vec<(&str, bool, bool, bool)> = list
        .iter()
        .map(|m| (m.name.as_str(), m.you, m.admin, m.contact.is_some()))
        .collect();
    ensure!(
        seen == [
            ("bob", true, false, false),
            ("alice", false, true, true),
            ("carol", false, false, false)
        ],
        "{list:?}"
    );
    ensure!(
        list[2].fingerprint == carol_fp && carol_fp.len() == 39,
        "{list:?}"
    );
    let admins = members(&mut alice, group).await?;
    ensure!(
        admins.iter().all(|m| m.you || m.contact.is_some()) && admins[0].admin,
        "{admins:?}"
    );

    alice
        .send(Command::GroupRename {
            room: group,
            name: "ops-2".into(),
        })
        .await?;
    alice
        .send(Command::GroupRemove {
            room: group,
            contact: carol_id,
        })
        .await?;
    carol
        .room_where("carol removed", |r| r.id == carol_group && r.closed)
        .await?;
    bob.room_where("bob sees carol gone", |r| {
        r.id == bob_group && r.name == "ops-2" && r.members == ["alice"]
    })
    .await?;
    bob.send(Command::GroupLeave { room: bob_group }).await?;
    alice
        .room_where("alice sees bob gone", |r| {
            r.id == group && r.name == "ops-2" && r.members.is_empty()
        })
        .await?;

    let got = events(&mut alice, group).await?;
    ensure!(
        got == [
            "you created the group ops",
            "you added bob",
            "you added carol",
            "you renamed the group from ops to ops-2",
            "you removed carol",
            "bob left",
        ],
        "{got:?}"
    );
    let got = events(&mut bob, bob_group).await?;
    ensure!(
        got == [
            "alice added you",
            "alice added carol",
            "alice renamed the group from ops to ops-2",
            "carol is no longer in the group",
            "you left the group",
        ],
        "{got:?}"
    );
    let got = events(&mut carol, carol_group).await?;
    ensure!(
        got == [
            "alice added you",
            "alice renamed the group from ops to ops-2",
            "alice removed you from the group, or closed it",
        ],
        "{got:?}"
    );
    relay.shutdown().await;
    Ok(())
}

/// With the hum/2 link on, two contacts on a single relay talk through it: texts both
/// ways, each sent once stored and delivered once its receipt (itself a message through
/// the link) comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_talk_over_the_hum2_link() -> Result<()> {
    let dir = TempDir::new("hum2-chat")?;
    let relay = hum_relay::Relay::bind(relay_config(Duration::from_millis(20)))
        .await?
        .spawn();
    let addr = relay.address().to_string();
    let options = hum::engine::EngineOptions {
        route_link: true,
        receipt_delay: Duration::from_millis(100),
        ..Default::default()
    };
    let mut alice = Peer::create_with(dir.path(), "alice", &addr, options)?;
    let mut bob = Peer::create_with(dir.path(), "bob", &addr, options)?;
    let ((_, alice_room), (_, bob_room)) = befriend(&mut alice, &mut bob).await?;
    let id = bob.say_queued(bob_room, "over hum/2").await?;
    ensure!(alice.next_text("bob").await? == "over hum/2");
    bob.delivery(id, Delivery::Sent).await?;
    bob.delivery(id, Delivery::Delivered).await?;
    let id = alice.say_queued(alice_room, "and back").await?;
    ensure!(bob.next_text("alice").await? == "and back");
    alice.delivery(id, Delivery::Delivered).await?;
    alice.quit().await?;
    bob.quit().await?;
    relay.shutdown().await;
    Ok(())
}

/// With the hum/2 link on, a group of three on a single relay talks through it: everyone
/// at once right after joining, each text read by both others, the admin's sent once
/// stored and never receipted by the members (HUM2: no per-member receipts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_talk_over_the_hum2_link() -> Result<()> {
    let options = hum::engine::EngineOptions {
        route_link: true,
        receipt_delay: Duration::from_millis(100),
        ..Default::default()
    };
    let Trio {
        relay,
        mut alice,
        mut bob,
        mut carol,
        group,
        bob_group,
        carol_group,
        ..
    } = trio_with("hum2-groups", Duration::from_millis(20), options).await?;
    carol.say(carol_group, "carol here").await?;
    bob.say(bob_group, "bob here").await?;
    let id = alice.say_queued(group, "hello group").await?;
    ensure!(bob.next_text("alice").await? == "hello group");
    ensure!(carol.next_text("alice").await? == "hello group");
    ensure!(carol.next_text("bob").await? == "bob here");
    ensure!(alice.next_text("bob").await? == "bob here");
    ensure!(bob.next_text("carol").await? == "carol here");
    ensure!(alice.next_text("carol").await? == "carol here");
    // Sent once every member's relay stored it; no member receipts a group text on
    // hum/2, so it stays sent (20 receipt delays later, nothing says delivered).
    alice.delivery(id, Delivery::Sent).await?;
    let delivered = alice
        .wait(Duration::from_secs(2), "no delivery", |e| {
            matches!(e, Event::Delivery { id: i, state: Delivery::Delivered, .. } if *i == id)
                .then_some(())
        })
        .await;
    ensure!(
        delivered.is_err(),
        "a member receipted a group text on hum/2"
    );
    for p in [&alice, &bob, &carol] {
        ensure!(p.errors().is_empty(), "{}: {:?}", p.name, p.errors());
    }
    relay.shutdown().await;
    Ok(())
}
