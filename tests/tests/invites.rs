//! An invite code is used once: whoever answers it after the first learns that it was
//! used, their client takes the contact back, and the inviter hears of the attempt.

use std::time::Duration;

use anyhow::{Result, ensure};
use hum::api::{Command, ErrorKind, Event, What};
use hum_tests::harness::{Peer, TempDir, befriend, relay_config};

const TICK: Duration = Duration::from_millis(20);
const WAIT: Duration = Duration::from_secs(30);
const TRIED: &str = "someone answered an invite code of yours that was already used";

/// Waits until `p` is told that alice's code had been used, and its contact is gone.
async fn told_it_was_used(p: &mut Peer) -> Result<()> {
    let (cid, room) = p.contact("alice").await?;
    let (kind, error) = p.next_error(WAIT).await?;
    ensure!(kind == ErrorKind::InviteUsed, "{kind:?}: {error}");
    ensure!(
        error
            == "alice's invite code had already been used by someone else, so alice was not added: ask alice for a new code",
        "{error}"
    );
    p.wait(WAIT, "the contact removed", |e| match e {
        Event::ContactRemoved { id, .. } if *id == cid => Some(()),
        _ => None,
    })
    .await?;
    p.wait(WAIT, "the room closed", |e| match e {
        Event::Room(r) if r.id == room && r.closed => Some(()),
        _ => None,
    })
    .await?;
    // Writing there fails instead of going nowhere.
    p.send(Command::Send {
        room,
        text: "anyone?".into(),
    })
    .await?;
    let (kind, error) = p.next_error(WAIT).await?;
    // The room's contact is gone: there is no one to write to.
    ensure!(kind == ErrorKind::NoSuch(What::Room), "{kind:?}: {error}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_invite_code_tells_later_acceptors_and_the_inviter() -> Result<()> {
    let dir = TempDir::new("used-invite")?;
    let relay = hum_relay::Relay::bind(relay_config(TICK)).await?.spawn();
    let addr = relay.address().to_string();
    let mut alice = Peer::create(dir.path(), "alice", &addr)?;
    let mut bob = Peer::create(dir.path(), "bob", &addr)?;
    let mut carol = Peer::create(dir.path(), "carol", &addr)?;

    let code = alice.invite().await?;
    bob.send(Command::AcceptInvite {
        code: code.clone(),
        name: None,
    })
    .await?;
    let (_, bob_room) = bob.contact("alice").await?;
    let (_, alice_room) = alice.contact("bob").await?;

    // Carol was handed the same code.
    carol
        .send(Command::AcceptInvite {
            code: code.clone(),
            name: None,
        })
        .await?;
    told_it_was_used(&mut carol).await?;
    alice
        .wait(WAIT, "the attempt", |e| match e {
            Event::Notice(n) if n.starts_with(TRIED) => Some(()),
            _ => None,
        })
        .await?;

    // Bob, who used it, is not told anything of the sort, and he and Alice talk.
    bob.say(bob_room, "hi alice").await?;
    let got = alice.next_message().await?;
    ensure!(got.room == alice_room && got.text == "hi alice", "{got:?}");
    ensure!(bob.errors().is_empty(), "bob: {:?}", bob.errors());

    // After a restart Alice still reads the used invite, and Dave is told too.
    alice.quit().await?;
    let mut alice = Peer::reopen(dir.path(), "alice", &addr)?;
    let mut dave = Peer::create(dir.path(), "dave", &addr)?;
    dave.send(Command::AcceptInvite {
        code: code.clone(),
        name: None,
    })
    .await?;
    told_it_was_used(&mut dave).await?;
    alice
        .wait(WAIT, "dave's attempt", |e| match e {
            Event::Notice(n) if n.starts_with(TRIED) => Some(()),
            _ => None,
        })
        .await?;

    // Carol asks for a new code, and that one works.
    let (_, _) = befriend(&mut alice, &mut carol).await?;
    ensure!(carol.errors().is_empty(), "carol: {:?}", carol.errors());
    for p in [alice, bob, carol, dave] {
        p.quit().await?;
    }
    relay.shutdown().await;
    Ok(())
}
