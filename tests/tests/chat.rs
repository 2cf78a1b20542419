//! Whole-system chat tests: in-process relays and engines over real TLS on loopback.

use std::time::Duration;

use anyhow::{Result, ensure};
use hum::api::{Command, Delivery, Event, MessageKind, RoomKind};
use hum_tests::harness::{Peer, TempDir, befriend, relay_config};

const TICK: Duration = Duration::from_millis(5);
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_one_with_receipts_and_long_messages() -> Result<()> {
    let dir = TempDir::new("one-to-one")?;
    let relay = hum_relay::Relay::bind(relay_config(TICK)).await?.spawn();
    let addr = relay.address().to_string();
    let mut alice = Peer::create(dir.path(), "alice", &addr)?;
    let mut bob = Peer::create(dir.path(), "bob", &addr)?;
    let ((_, alice_room), (_, bob_room)) = befriend(&mut alice, &mut bob).await?;

    bob.send(Command::Send {
        room: bob_room,
        text: "hi alice".into(),
    })
    .await?;
    let id = bob
        .wait(WAIT, "own message queued", |e| match e {
            Event::Message(m) if m.from_me && m.delivery == Some(Delivery::Queued) => Some(m.id),
            _ => None,
        })
        .await?;
    let got = alice
        .wait(WAIT, "bob's message", |e| match e {
            Event::Message(m) if !m.from_me => Some(m.clone()),
            _ => None,
        })
        .await?;
    ensure!(got.text == "hi alice" && got.sender == "bob" && got.room == alice_room);
    bob.wait(WAIT, "sent", |e| {
        matches!(e, Event::Delivery { id: i, state: Delivery::Sent, .. } if *i == id).then_some(())
    })
    .await?;
    bob.wait(WAIT, "delivered", |e| {
        matches!(e, Event::Delivery { id: i, state: Delivery::Delivered, .. } if *i == id)
            .then_some(())
    })
    .await?;

    // A long message is split into many parts and comes back whole.
    let long: String = (0..4000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect::<String>()
        + " ✓ 日本語";
    alice
        .send(Command::Send {
            room: alice_room,
            text: long.clone(),
        })
        .await?;
    let got = bob
        .wait(WAIT, "the long message", |e| match e {
            Event::Message(m) if !m.from_me => Some(m.text.clone()),
            _ => None,
        })
        .await?;
    ensure!(got == long, "long message differs");

    // History pages come back from the store, oldest first.
    bob.send(Command::LoadHistory {
        room: bob_room,
        before: None,
        limit: 10,
    })
    .await?;
    let page = bob
        .wait(WAIT, "history", |e| match e {
            Event::History { messages, .. } => Some(messages.clone()),
            _ => None,
        })
        .await?;
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
    let msg = bob
        .wait(WAIT, "an error", |e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .await?;
    ensure!(msg.contains("damaged"), "unexpected error: {msg}");
    bob.send(Command::AcceptInvite {
        code: "hello".into(),
        name: None,
    })
    .await?;
    let msg = bob
        .wait(WAIT, "an error", |e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .await?;
    ensure!(!msg.is_empty());
    // Accepting one's own invite is refused with a reason.
    alice
        .send(Command::AcceptInvite { code, name: None })
        .await?;
    let msg = alice
        .wait(WAIT, "an error", |e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .await?;
    ensure!(msg.contains("your own invite"), "unexpected error: {msg}");
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
    let text_from = |who: &'static str| {
        move |e: &Event| match e {
            Event::Message(m) if !m.from_me && m.kind == MessageKind::Text && m.sender == who => {
                Some(m.text.clone())
            }
            _ => None,
        }
    };
    // Everyone talks at once, right after joining: an envelope that arrives before its
    // sender's key (still on its way through Alice) is kept and opened when the key comes.
    carol
        .send(Command::Send {
            room: carol_group,
            text: "carol here".into(),
        })
        .await?;
    bob.send(Command::Send {
        room: bob_group,
        text: "bob here".into(),
    })
    .await?;
    alice
        .send(Command::Send {
            room: group,
            text: "hello group".into(),
        })
        .await?;
    ensure!(bob.wait(WAIT, "alice in group", text_from("alice")).await? == "hello group");
    ensure!(
        carol
            .wait(WAIT, "alice in group", text_from("alice"))
            .await?
            == "hello group"
    );
    ensure!(carol.wait(WAIT, "bob in group", text_from("bob")).await? == "bob here");
    ensure!(alice.wait(WAIT, "bob in group", text_from("bob")).await? == "bob here");
    ensure!(bob.wait(WAIT, "carol in group", text_from("carol")).await? == "carol here");
    // Alice's group message is delivered once both members have receipted it.
    alice
        .wait(WAIT, "group delivery", |e| {
            matches!(e, Event::Delivery { room, state: Delivery::Delivered, .. } if *room == group)
                .then_some(())
        })
        .await?;

    // Remove Carol: she is told, and reads nothing sent afterwards.
    alice
        .send(Command::GroupRemove {
            room: group,
            contact: carol_id,
        })
        .await?;
    carol
        .wait(WAIT, "removal", |e| match e {
            Event::Room(r) if r.id == carol_group && r.closed => Some(()),
            _ => None,
        })
        .await?;
    bob.wait(WAIT, "the new member list", |e| match e {
        Event::Room(r) if r.id == bob_group && r.members.len() == 1 => Some(()),
        _ => None,
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice
        .send(Command::Send {
            room: group,
            text: "after carol".into(),
        })
        .await?;
    ensure!(bob.wait(WAIT, "after removal", text_from("alice")).await? == "after carol");
    bob.send(Command::Send {
        room: bob_group,
        text: "bob after".into(),
    })
    .await?;
    ensure!(
        alice
            .wait(WAIT, "bob after removal", text_from("bob"))
            .await?
            == "bob after"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_on_different_relays_talk_through_both() -> Result<()> {
    let dir = TempDir::new("two-relays")?;
    let relay_a = hum_relay::Relay::bind(relay_config(TICK)).await?.spawn();
    let relay_b = hum_relay::Relay::bind(relay_config(TICK)).await?.spawn();
    let mut alice = Peer::create(dir.path(), "alice", &relay_a.address().to_string())?;
    let mut bob = Peer::create(dir.path(), "bob", &relay_b.address().to_string())?;
    let ((_, alice_room), (_, bob_room)) = befriend(&mut alice, &mut bob).await?;
    let incoming = |e: &Event| match e {
        Event::Message(m) if !m.from_me => Some(m.text.clone()),
        _ => None,
    };
    alice
        .send(Command::Send {
            room: alice_room,
            text: "to bob's relay".into(),
        })
        .await?;
    ensure!(bob.wait(WAIT, "alice's message", incoming).await? == "to bob's relay");
    bob.send(Command::Send {
        room: bob_room,
        text: "to alice's relay".into(),
    })
    .await?;
    ensure!(alice.wait(WAIT, "bob's message", incoming).await? == "to alice's relay");
    // Each client keeps a link to both relays, and both relays stored envelopes.
    let (a, b) = (relay_a.stats(), relay_b.stats());
    ensure!(
        a.clients == 2 && b.clients == 2,
        "links: {} and {}",
        a.clients,
        b.clients
    );
    ensure!(
        a.deposits >= 1 && b.deposits >= 1,
        "deposits: {} and {}",
        a.deposits,
        b.deposits
    );
    relay_a.shutdown().await;
    relay_b.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_silent_member_completes_delivery() -> Result<()> {
    let Trio {
        relay,
        mut alice,
        mut bob,
        carol,
        carol_id,
        group,
        ..
    } = trio("silent-member").await?;
    // Carol goes quiet for good; Alice writes.
    carol.quit().await?;
    alice
        .send(Command::Send {
            room: group,
            text: "anyone?".into(),
        })
        .await?;
    bob.wait(WAIT, "the message", |e| {
        matches!(e, Event::Message(m) if m.text == "anyone?").then_some(())
    })
    .await?;
    let delivered = |e: &Event| {
        matches!(e, Event::Delivery { room, state: Delivery::Delivered, .. } if *room == group)
            .then_some(())
    };
    ensure!(
        alice
            .wait(
                Duration::from_secs(1),
                "no delivery while carol is silent",
                delivered
            )
            .await
            .is_err(),
        "delivered before every member receipted"
    );
    // Removing Carol leaves only Bob to hear from: the message is delivered.
    alice
        .send(Command::GroupRemove {
            room: group,
            contact: carol_id,
        })
        .await?;
    alice
        .wait(WAIT, "delivery after the removal", delivered)
        .await?;
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
    let dir = TempDir::new(tag)?;
    let relay = hum_relay::Relay::bind(relay_config(TICK)).await?.spawn();
    let addr = relay.address().to_string();
    let mut alice = Peer::create(dir.path(), "alice", &addr)?;
    let mut bob = Peer::create(dir.path(), "bob", &addr)?;
    let mut carol = Peer::create(dir.path(), "carol", &addr)?;
    let ((bob_id, _), _) = befriend(&mut alice, &mut bob).await?;
    let ((carol_id, _), _) = befriend(&mut alice, &mut carol).await?;
    alice
        .send(Command::CreateGroup { name: "ops".into() })
        .await?;
    let group = alice
        .wait(WAIT, "the group", |e| match e {
            Event::Room(r) if r.kind == RoomKind::Group && r.name == "ops" => Some(r.id),
            _ => None,
        })
        .await?;
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
    let joined = |e: &Event| match e {
        Event::Room(r) if r.kind == RoomKind::Group && r.name == "ops" && r.members.len() == 2 => {
            Some(r.id)
        }
        _ => None,
    };
    let bob_group = bob.wait(WAIT, "bob in the group", joined).await?;
    let carol_group = carol.wait(WAIT, "carol in the group", joined).await?;
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
    let err = bob
        .wait(WAIT, "an error", |e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .await?;
    ensure!(err.contains("creator"), "unexpected error: {err}");
    alice
        .send(Command::GroupRename {
            room: group,
            name: "ops-2".into(),
        })
        .await?;
    for (p, room) in [(&mut bob, bob_group), (&mut carol, carol_group)] {
        p.wait(WAIT, "the new name", |e| match e {
            Event::Room(r) if r.id == room && r.name == "ops-2" => Some(()),
            _ => None,
        })
        .await?;
    }
    // Bob leaves: his room closes, Alice and Carol see two members become one.
    bob.send(Command::GroupLeave { room: bob_group }).await?;
    bob.wait(WAIT, "bob's room closed", |e| match e {
        Event::Room(r) if r.id == bob_group && r.closed => Some(()),
        _ => None,
    })
    .await?;
    alice
        .wait(WAIT, "alice sees bob gone", |e| match e {
            Event::Room(r) if r.id == group && r.members == vec!["carol".to_owned()] => Some(()),
            _ => None,
        })
        .await?;
    carol
        .wait(WAIT, "carol sees bob gone", |e| match e {
            Event::Room(r) if r.id == carol_group && r.members == vec!["alice".to_owned()] => {
                Some(())
            }
            _ => None,
        })
        .await?;
    // And the group goes on without him.
    alice
        .send(Command::Send {
            room: group,
            text: "after bob".into(),
        })
        .await?;
    let got = carol
        .wait(WAIT, "a message after bob left", |e| match e {
            Event::Message(m) if !m.from_me && m.kind == MessageKind::Text => Some(m.text.clone()),
            _ => None,
        })
        .await?;
    ensure!(got == "after bob");
    relay.shutdown().await;
    Ok(())
}

/// The events in a room's history, oldest first.
async fn events(p: &mut Peer, room: hum::api::RoomId) -> Result<Vec<String>> {
    p.send(Command::LoadHistory {
        room,
        before: None,
        limit: 100,
    })
    .await?;
    p.wait(WAIT, "the history", |e| match e {
        Event::History {
            room: r, messages, ..
        } if *r == room => Some(
            messages
                .iter()
                .filter(|m| m.kind == MessageKind::Event)
                .map(|m| m.text.clone())
                .collect(),
        ),
        _ => None,
    })
    .await
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
        .wait(WAIT, "carol removed", |e| match e {
            Event::Room(r) if r.id == carol_group && r.closed => Some(()),
            _ => None,
        })
        .await?;
    bob.wait(WAIT, "bob sees carol gone", |e| match e {
        Event::Room(r) if r.id == bob_group && r.name == "ops-2" && r.members == ["alice"] => {
            Some(())
        }
        _ => None,
    })
    .await?;
    bob.send(Command::GroupLeave { room: bob_group }).await?;
    alice
        .wait(WAIT, "alice sees bob gone", |e| match e {
            Event::Room(r) if r.id == group && r.name == "ops-2" && r.members.is_empty() => {
                Some(())
            }
            _ => None,
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
