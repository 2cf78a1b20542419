//! The client store on disk: profiles of the old schema and the old passphrase KDF
//! migrate on unlock (rows to schema 2, key to an Argon2id key slot) and keep talking,
//! and the migrated files no longer hold their metadata in clear.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hum::api::{Delivery, Event, MessageView, RoomId, RoomKind, RoomSummary};
use hum_shared::crypto::{KdfParams, StoreKey};
use hum_tests::harness::{Peer, TempDir, relay_config};

const WAIT: Duration = Duration::from_secs(30);

/// The fixture: three profiles written by hum with store schema 1.
fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/store-v1")
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Whether any file of the store (database, WAL) holds `needle`.
fn store_holds(profile: &Path, needle: &[u8]) -> Result<bool> {
    for e in std::fs::read_dir(profile)? {
        let e = e?;
        let name = e.file_name();
        if name.to_string_lossy().starts_with("store.db") {
            let bytes = std::fs::read(e.path())?;
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// What schema 1 kept in clear columns of `profile`: contact fingerprints, outbox relays
/// and mailboxes, cursor mailboxes.
fn plaintext_metadata(profile: &Path) -> Result<Vec<Vec<u8>>> {
    let c = rusqlite::Connection::open(profile.join("store.db"))?;
    let mut out = Vec::new();
    for sql in [
        "SELECT fingerprint FROM contacts",
        "SELECT CAST(relay AS BLOB) FROM outbox",
        "SELECT mailbox FROM outbox",
        "SELECT mailbox FROM cursors",
    ] {
        let mut st = c.prepare(sql)?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        for r in rows {
            out.push(r?);
        }
    }
    Ok(out)
}

async fn ready(p: &mut Peer) -> Result<(Vec<RoomSummary>, Vec<String>)> {
    p.wait(WAIT, "ready", |e| match e {
        Event::Ready {
            rooms, contacts, ..
        } => Some((
            rooms.clone(),
            contacts.iter().map(|(_, n)| n.clone()).collect(),
        )),
        _ => None,
    })
    .await
}

async fn history(p: &mut Peer, room: RoomId) -> Result<Vec<MessageView>> {
    p.history(room, 50).await
}

fn room(rooms: &[RoomSummary], name: &str) -> Result<RoomId> {
    rooms
        .iter()
        .find(|r| r.name == name)
        .map(|r| r.id)
        .with_context(|| format!("no room {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_of_store_schema_1_migrate_and_talk_on() -> Result<()> {
    let dir = TempDir::new("migrate-v1")?;
    copy_dir(&fixture(), dir.path())?;
    let mut needles = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let metadata = plaintext_metadata(&dir.path().join(name))?;
        ensure!(
            !metadata.is_empty(),
            "{name}'s fixture has no clear metadata"
        );
        for n in &metadata {
            ensure!(
                store_holds(&dir.path().join(name), n)?,
                "the search misses {n:02x?}"
            );
        }
        needles.push((name, metadata));
    }
    // The same relay as when the profiles were written: same address, same certificate.
    let mut config = relay_config(Duration::from_millis(20));
    config.state_dir = Some(dir.path().join("relay"));
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 47561));
    let relay = hum_relay::Relay::bind(config).await?.spawn();
    let addr = relay.address().to_string();

    let mut alice = Peer::reopen(dir.path(), "alice", &addr)?;
    let (rooms, contacts) = ready(&mut alice).await?;
    ensure!(
        contacts == ["bob", "carol"],
        "alice's contacts: {contacts:?}"
    );
    let (to_bob, to_carol, friends) = (
        room(&rooms, "bob")?,
        room(&rooms, "carol")?,
        room(&rooms, "friends")?,
    );
    let group = rooms.iter().find(|r| r.id == friends).context("friends")?;
    ensure!(group.kind == RoomKind::Group && group.members == ["bob", "carol"]);
    let h = history(&mut alice, to_bob).await?;
    let texts: Vec<(&str, bool, Option<Delivery>)> = h
        .iter()
        .map(|m| (m.text.as_str(), m.from_me, m.delivery))
        .collect();
    ensure!(
        texts
            == [
                ("hello bob", true, Some(Delivery::Delivered)),
                ("hi alice", false, None)
            ],
        "alice's history with bob: {texts:?}"
    );
    let h = history(&mut alice, friends).await?;
    ensure!(
        h.iter().map(|m| m.text.as_str()).collect::<Vec<_>>()
            == ["hello friends", "bob to friends"]
            && h[1].sender == "bob",
        "alice's group history: {h:?}"
    );
    let h = history(&mut alice, to_carol).await?;
    ensure!(
        h.len() == 1 && h[0].delivery == Some(Delivery::Sent),
        "alice's queued text to carol: {h:?}"
    );

    let mut bob = Peer::reopen(dir.path(), "bob", &addr)?;
    let (rooms, _) = ready(&mut bob).await?;
    let (bob_alice, bob_friends) = (room(&rooms, "alice")?, room(&rooms, "friends")?);
    ensure!(history(&mut bob, bob_alice).await?.len() == 2);
    ensure!(history(&mut bob, bob_friends).await?.len() == 2);
    // Carol was away: the text queued for her in the old outbox arrives now.
    let mut carol = Peer::reopen(dir.path(), "carol", &addr)?;
    ensure!(carol.next_text("alice").await? == "while you were away");
    alice.delivered_in(to_carol).await?;
    // The sessions and the group's keys came through the migration.
    alice.say(to_bob, "after the move").await?;
    ensure!(bob.next_text("alice").await? == "after the move");
    bob.say(bob_friends, "bob, migrated").await?;
    ensure!(alice.next_text("bob").await? == "bob, migrated");
    ensure!(carol.next_text("bob").await? == "bob, migrated");
    alice.quit().await?;
    bob.quit().await?;
    carol.quit().await?;
    relay.shutdown().await;

    // What schema 1 kept in clear is in neither file any more.
    for (name, metadata) in needles {
        for n in metadata {
            ensure!(
                !store_holds(&dir.path().join(name), &n)?,
                "{name}'s migrated store still holds {n:02x?}"
            );
        }
    }
    // The key migrated too: an Argon2id key slot (with the tests' parameters, the policy
    // they open with) in place of the Argon2i salt and parameters, in schema 2.
    for name in ["alice", "bob", "carol"] {
        let meta = meta(&dir.path().join(name))?;
        let value = |key: &str| meta.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        ensure!(
            value("schema").map(Vec::as_slice) == Some(&2i64.to_be_bytes()[..]),
            "{name}'s schema: {:?}",
            value("schema")
        );
        ensure!(
            value("salt").is_none() && value("kdf").is_none(),
            "{name} still has its Argon2i salt or parameters"
        );
        let slot = value("key").with_context(|| format!("{name} has no key slot"))?;
        ensure!(StoreKey::slot_params(slot)? == KdfParams::INSECURE_FAST);
    }
    // And the profile opens through it.
    let relay = hum_relay::Relay::bind(relay_config(Duration::from_millis(20)))
        .await?
        .spawn();
    let mut alice = Peer::reopen(dir.path(), "alice", &relay.address().to_string())?;
    let (_, contacts) = ready(&mut alice).await?;
    ensure!(contacts == ["bob", "carol"], "alice reopened: {contacts:?}");
    alice.quit().await?;
    relay.shutdown().await;
    Ok(())
}

/// The clear meta values of a closed profile's store.
fn meta(profile: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let c = rusqlite::Connection::open(profile.join("store.db"))?;
    let mut st = c.prepare("SELECT key, value FROM meta")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
