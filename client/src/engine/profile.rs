//! Profiles: one identity per folder, its store sealed with a passphrase.
//!
//! Data lives in `$HUM_HOME/NAME/` when `HUM_HOME` is set, otherwise in the XDG data
//! directory (`~/.local/share/hum/NAME/`). The profile's config file is
//! `$HUM_HOME/NAME/config.toml` or `~/.config/hum/NAME.toml`.
//!
//! A profile is open in one process at a time: creating or unlocking one takes its lock
//! (docs/PROTOCOL.md §6.1), and the store keeps it until it closes.

use std::path::{Path, PathBuf};

use hum_shared::crypto::{CryptoError, Identity, KdfParams, KdfPolicy, StoreKey};
use hum_shared::route::DeliverySecret;
use serde::{Deserialize, Serialize};

use super::lock::ProfileLock;
use super::store::{ProfileStore, StoreFile, open, seal};
use super::{EngineError, ProfileError, StoreError};

/// Where one profile keeps its store and its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePaths {
    /// The profile's name.
    pub name: String,
    /// The folder holding the store.
    pub dir: PathBuf,
    /// The config file.
    pub config: PathBuf,
}

impl ProfilePaths {
    /// The paths of a profile kept entirely in `dir` (config file included).
    pub fn in_dir(name: &str, dir: PathBuf) -> Self {
        Self {
            name: name.to_owned(),
            config: dir.join("config.toml"),
            dir,
        }
    }

    /// The paths of profile `name`, from `HUM_HOME` or the XDG directories.
    ///
    /// # Errors
    /// [`EngineError::Profile`] for a name that is not a plain folder name, or when no home
    /// directory is known.
    pub fn resolve(name: &str) -> Result<Self, EngineError> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ProfileError::BadName(name.to_owned()).into());
        }
        if let Some(home) = std::env::var_os("HUM_HOME") {
            let dir = PathBuf::from(home).join(name);
            return Ok(Self {
                name: name.to_owned(),
                config: dir.join("config.toml"),
                dir,
            });
        }
        let dirs = directories::ProjectDirs::from("", "", "hum").ok_or(ProfileError::NoHome)?;
        Ok(Self {
            name: name.to_owned(),
            dir: dirs.data_dir().join(name),
            config: dirs.config_dir().join(format!("{name}.toml")),
        })
    }

    /// The store file.
    pub fn store(&self) -> PathBuf {
        self.dir.join("store.db")
    }

    /// Whether a profile exists here.
    pub fn exists(&self) -> bool {
        self.store().exists()
    }
}

/// The profile's config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileConfig {
    /// A single relay, entry and home at once, `hum://HOST:PORT#FINGERPRINT`.
    pub relay: Option<String>,
    /// In a mesh: the relay to connect to (with `home`).
    pub entry: Option<String>,
    /// In a mesh: the relay that holds what others send this profile (with `entry`).
    pub home: Option<String>,
    /// The TUI theme's name.
    pub theme: Option<String>,
    /// Ring the terminal bell on a mention.
    pub bell: Option<bool>,
    /// Capture the mouse.
    pub mouse: Option<bool>,
}

impl ProfileConfig {
    /// Reads the config file; a missing file is the default config.
    ///
    /// # Errors
    /// [`EngineError::Profile`] when the file exists but is not valid.
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                ProfileError::Config {
                    path: path.to_owned(),
                    source: Box::new(e),
                }
                .into()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(io_error(path, e)),
        }
    }

    /// Writes the config file.
    ///
    /// # Errors
    /// [`EngineError::Profile`] when it cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), EngineError> {
        let text = toml::to_string(self).map_err(ProfileError::from)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        std::fs::write(path, text).map_err(|e| io_error(path, e))
    }
}

/// An open, unlocked profile.
pub struct Unlocked {
    pub(crate) store: ProfileStore,
    pub(crate) identity: Identity,
    pub(crate) name: String,
    /// The delivery secret contacts find this profile's buckets with (hum/2).
    pub(crate) delivery: DeliverySecret,
}

impl std::fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unlocked")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Unlocked {
    /// The profile owner's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The profile's identity fingerprint, for display.
    pub fn fingerprint(&self) -> String {
        self.identity.fingerprint().to_string()
    }
}

const CHECK: &[u8] = b"hum profile v1";

/// The passphrase KDF of profiles this build creates, and the weakest it opens.
///
/// Builds with debug assertions (`cargo build`, `cargo test`) honour
/// `HUM_INSECURE_FAST_KDF`, so that tests which drive the real binary stay fast. Release
/// builds do not contain this code: they always create with [`KdfParams::DEFAULT`] and
/// open only what [`KdfPolicy::Standard`] accepts (docs/PROTOCOL.md, section 3.8).
fn build_kdf() -> (KdfParams, KdfPolicy) {
    #[cfg(debug_assertions)]
    if std::env::var_os("HUM_INSECURE_FAST_KDF").is_some() {
        return (KdfParams::INSECURE_FAST, KdfPolicy::InsecureForTests);
    }
    (KdfParams::DEFAULT, KdfPolicy::Standard)
}

/// A file or folder of the profile failed.
pub(super) fn io_error(path: &Path, source: std::io::Error) -> EngineError {
    ProfileError::Io {
        path: path.to_owned(),
        source,
    }
    .into()
}

fn kdf_error(e: CryptoError) -> EngineError {
    match e {
        CryptoError::StoreOpenFailed => EngineError::WrongPassphrase,
        CryptoError::KdfParamsOutOfRange { .. } | CryptoError::Malformed => {
            StoreError::KeySlot(e).into()
        }
        e => EngineError::Crypto(e),
    }
}

/// Creates a profile: a fresh identity, sealed under `passphrase`.
///
/// # Errors
/// [`EngineError::Profile`] when one exists already or the folder cannot be made;
/// [`EngineError::InUse`] when another process is creating it; [`EngineError::Store`]
/// when the store cannot be written.
pub fn create(
    paths: &ProfilePaths,
    display_name: &str,
    passphrase: &[u8],
) -> Result<Unlocked, EngineError> {
    create_with(paths, display_name, passphrase, build_kdf().0)
}

/// Like [`create`], with explicit passphrase KDF parameters (tests use weak ones; the
/// demo's throwaway profiles too). Parameters up to [`KdfParams::MAX`] are accepted here,
/// but only [`unlock_with`] and [`KdfPolicy::InsecureForTests`] open a weak profile again.
///
/// # Errors
/// As [`create`]; [`EngineError::Store`] for parameters above the maximum.
pub fn create_with(
    paths: &ProfilePaths,
    display_name: &str,
    passphrase: &[u8],
    params: KdfParams,
) -> Result<Unlocked, EngineError> {
    if paths.exists() {
        return Err(ProfileError::Exists(paths.dir.clone()).into());
    }
    let display_name = crate::api::DisplayName::new(display_name)
        .ok_or(ProfileError::EmptyName)?
        .into_string();
    let key = StoreKey::generate();
    let slot = key
        .wrap(passphrase, &params, KdfPolicy::InsecureForTests)
        .map_err(kdf_error)?;
    std::fs::create_dir_all(&paths.dir).map_err(|e| io_error(&paths.dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&paths.dir, std::fs::Permissions::from_mode(0o700));
    }
    let lock = ProfileLock::acquire(&paths.dir, &paths.name)?;
    let identity = Identity::generate();
    let delivery = DeliverySecret::generate();
    let mut store = StoreFile::open(&paths.store(), lock)?;
    let check = seal(&key, CHECK, "check")?;
    let sealed_identity = seal(&key, &identity.to_bytes(), "identity")?;
    let name = seal(&key, display_name.as_bytes(), "name")?;
    let sealed_delivery = seal(&key, delivery.expose_secret(), "delivery")?;
    store.set_metas(&[
        ("key", &slot),
        ("check", &check),
        ("identity", &sealed_identity),
        ("name", &name),
        ("delivery", &sealed_delivery),
    ])?;
    Ok(Unlocked {
        store: store.unlock(key)?,
        identity,
        name: display_name,
        delivery,
    })
}

/// Opens and unlocks an existing profile, accepting only the KDF parameters this build
/// accepts (a release build: [`KdfPolicy::Standard`]).
///
/// A profile made before key slots (its store key derived with Argon2i, its parameters
/// stored unauthenticated) still opens, and is migrated on the spot: its key is wrapped in
/// an Argon2id key slot, and the old salt and parameters are deleted. A store of schema 1
/// is then rewritten as schema 2 (docs/PROTOCOL.md §6). Each migration is one transaction
/// of its own, so a profile stopped between them opens again through its key slot and
/// finishes the second.
///
/// # Errors
/// [`EngineError::WrongPassphrase`] when the passphrase does not open it,
/// [`EngineError::Profile`] when there is none, [`EngineError::InUse`] when another
/// process has it open, [`EngineError::Store`] when it is damaged or its KDF parameters
/// are out of range (the KDF is not run).
pub fn unlock(paths: &ProfilePaths, passphrase: &[u8]) -> Result<Unlocked, EngineError> {
    unlock_with(paths, passphrase, build_kdf().1)
}

/// Like [`unlock`], with an explicit KDF policy: tests open their weak profiles with
/// [`KdfPolicy::InsecureForTests`].
///
/// # Errors
/// As [`unlock`].
pub fn unlock_with(
    paths: &ProfilePaths,
    passphrase: &[u8],
    policy: KdfPolicy,
) -> Result<Unlocked, EngineError> {
    if !paths.exists() {
        return Err(ProfileError::Missing(paths.dir.clone()).into());
    }
    let lock = ProfileLock::acquire(&paths.dir, &paths.name)?;
    let mut store = StoreFile::open(&paths.store(), lock)?;
    let key = match store.meta("key")? {
        Some(slot) => StoreKey::unwrap(passphrase, &slot, policy).map_err(kdf_error)?,
        None => migrate_legacy_key(&mut store, passphrase, policy)?,
    };
    let check = store
        .meta("check")?
        .ok_or(StoreError::Missing("check value"))?;
    if key.open(&check, b"check").is_err() {
        return Err(EngineError::WrongPassphrase);
    }
    let id = store
        .meta("identity")?
        .ok_or(StoreError::Missing("identity"))?;
    let id = open(&key, &id, "identity")?;
    let identity = Identity::from_bytes(&id).map_err(EngineError::from)?;
    let name = store.meta("name")?.ok_or(StoreError::Missing("name"))?;
    let name = String::from_utf8(open(&key, &name, "name")?.to_vec())
        .map_err(|_| StoreError::Missing("name"))?;
    let delivery = delivery_secret(&mut store, &key)?;
    Ok(Unlocked {
        store: store.unlock(key)?,
        identity,
        name,
        delivery,
    })
}

/// The profile's delivery secret; a profile made before hum/2 gets one on its first open.
fn delivery_secret(store: &mut StoreFile, key: &StoreKey) -> Result<DeliverySecret, EngineError> {
    if let Some(sealed) = store.meta("delivery")? {
        // Opened into a wiped buffer and copied straight into the secret.
        let bytes = open(key, &sealed, "delivery")?;
        return DeliverySecret::from_slice(&bytes)
            .map_err(|_| StoreError::Missing("delivery secret").into());
    }
    let delivery = DeliverySecret::generate();
    let sealed = seal(key, delivery.expose_secret(), "delivery")?;
    store.set_metas(&[("delivery", &sealed)])?;
    Ok(delivery)
}

/// Opens the store key of a profile made before key slots (`salt` and `kdf` in the meta
/// table, the key Argon2i of the passphrase) and wraps it in an Argon2id key slot with
/// `policy`'s migration parameters, deleting the old salt and parameters in the same
/// transaction. The store's rows stay sealed under the same key.
fn migrate_legacy_key(
    store: &mut StoreFile,
    passphrase: &[u8],
    policy: KdfPolicy,
) -> Result<StoreKey, EngineError> {
    let salt = store
        .meta("salt")?
        .ok_or(StoreError::Missing("key slot or salt"))?;
    let kdf = store
        .meta("kdf")?
        .ok_or(StoreError::Missing("KDF parameters"))?;
    let word = |i: usize| {
        kdf.get(i..i + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or(StoreError::Missing("KDF parameters"))
    };
    if kdf.len() != 8 {
        return Err(StoreError::Missing("KDF parameters").into());
    }
    let params = KdfParams {
        iterations: word(0)?,
        memory_kib: word(4)?,
    };
    let key = StoreKey::derive_legacy_argon2i(passphrase, &salt, &params).map_err(kdf_error)?;
    let check = store
        .meta("check")?
        .ok_or(StoreError::Missing("check value"))?;
    if key.open(&check, b"check").is_err() {
        return Err(EngineError::WrongPassphrase);
    }
    let slot = key
        .wrap(passphrase, &policy.migration_params(), policy)
        .map_err(kdf_error)?;
    store.replace_legacy_kdf(&slot)?;
    Ok(key)
}

/// Fills a profile with a contact-less room of `n` messages, for benchmarks of history
/// loading. Returns the room's name.
///
/// # Errors
/// Store errors.
#[doc(hidden)]
pub fn seed_history(profile: &mut Unlocked, n: usize) -> Result<String, EngineError> {
    use super::records::{MessageRecord, RoomRecord};
    use super::wire::StoredMessage;

    let name = "history".to_owned();
    let rec = RoomRecord {
        name: name.clone(),
        group: None,
        contact: None,
        unread: 0,
        mentions: 0,
    };
    profile.store.tx(|db| {
        let room = db.insert_room(&rec)?;
        for i in 0..n {
            let mut uid = [0u8; 16];
            uid[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let body = StoredMessage {
                sender: if i % 3 == 0 {
                    "you".into()
                } else {
                    "someone".into()
                },
                text: format!("message {i}: the quick brown fox jumps over the lazy dog"),
                sent_at: 1_700_000_000_000 + i64::try_from(i).unwrap_or(0) * 1000,
                uid,
                event: false,
            };
            db.insert_message(
                room,
                &MessageRecord {
                    from_me: false,
                    delivery: None,
                    receipts_needed: 0,
                    receipts: Vec::new(),
                    body,
                },
            )?;
        }
        Ok(())
    })?;
    Ok(name)
}

/// What one replacement of key material costs the store, for the figures: the mean time
/// to commit a replaced session row, and the mean time of a checkpoint that truncates the
/// WAL after one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub struct ReplacementCost {
    /// Committing the new row (WAL append and fsync).
    pub commit: std::time::Duration,
    /// Copying the WAL into the database file and truncating it.
    pub checkpoint: std::time::Duration,
}

/// Times `n` replacements of a session row, each committed, then `n` more each followed by
/// a checkpoint; see [`ReplacementCost`].
///
/// # Errors
/// Store and crypto errors.
#[doc(hidden)]
pub fn time_key_replacement(
    profile: &mut Unlocked,
    n: u32,
) -> Result<ReplacementCost, EngineError> {
    use std::time::Instant;

    use hum_shared::crypto::{Invite, Session};

    let peer = Identity::generate();
    let relay = format!("hum://relay.example:7447#{}", "ab".repeat(32));
    let (invite, _) = peer
        .create_invite(&relay, 3600, 1_800_000_000)
        .map_err(EngineError::from)?;
    let invite = Invite::decode(&invite.encode(), 1_800_000_000).map_err(EngineError::from)?;
    let (mut session, _) =
        Session::initiate(&profile.identity, &invite, b"figures").map_err(EngineError::from)?;
    let n = n.max(1);
    let mut step = |store: &mut ProfileStore| -> Result<(), EngineError> {
        session
            .seal(b"one more message")
            .map_err(EngineError::from)?;
        store.tx(|db| db.put_session(1, &session))
    };
    let start = Instant::now();
    for _ in 0..n {
        step(&mut profile.store)?;
    }
    let commit = start.elapsed() / n;
    let start = Instant::now();
    for _ in 0..n {
        step(&mut profile.store)?;
        profile.store.checkpoint()?;
    }
    let both = start.elapsed() / n;
    Ok(ReplacementCost {
        commit,
        checkpoint: both.saturating_sub(commit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::What;
    use crate::engine::records::RoomRecord;
    use crate::engine::scratch::Scratch;

    const FAST: KdfPolicy = KdfPolicy::InsecureForTests;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn paths(dir: &Scratch) -> ProfilePaths {
        ProfilePaths::in_dir("p", dir.0.join("p"))
    }

    fn create_fast(dir: &Scratch) -> Result<Unlocked, EngineError> {
        create_with(&paths(dir), "ada", b"pw", KdfParams::INSECURE_FAST)
    }

    /// The store file of a closed profile, with its lock, for reading and changing its
    /// meta values.
    fn store_file(paths: &ProfilePaths) -> Result<StoreFile, EngineError> {
        std::fs::create_dir_all(&paths.dir).map_err(|e| io_error(&paths.dir, e))?;
        let lock = ProfileLock::acquire(&paths.dir, &paths.name)?;
        StoreFile::open(&paths.store(), lock)
    }

    /// The parameters of a closed profile's key slot.
    fn slot_params(paths: &ProfilePaths) -> Result<KdfParams, EngineError> {
        let slot = store_file(paths)?
            .meta("key")?
            .ok_or(EngineError::NoSuch(What::KeySlot))?;
        StoreKey::slot_params(&slot).map_err(EngineError::from)
    }

    /// A profile as hum wrote them before key slots (in store schema 2): the store key is
    /// Argon2i of the passphrase, its salt and parameters in clear in the meta table.
    fn create_legacy(
        paths: &ProfilePaths,
        passphrase: &[u8],
        kdf: &[u8],
        params: &KdfParams,
    ) -> Result<Identity, EngineError> {
        let salt = [5u8; 16];
        let key = StoreKey::derive_legacy_argon2i(passphrase, &salt, params)
            .map_err(EngineError::from)?;
        let identity = Identity::generate();
        let store = store_file(paths)?;
        store.set_meta("salt", &salt)?;
        store.set_meta("kdf", kdf)?;
        store.set_meta("check", &seal(&key, CHECK, "check")?)?;
        store.set_meta("identity", &seal(&key, &identity.to_bytes(), "identity")?)?;
        store.set_meta("name", &seal(&key, b"old", "name")?)?;
        let mut store = store.unlock(key)?;
        store.tx(|db| {
            db.insert_room(&RoomRecord {
                name: "from before".into(),
                group: None,
                contact: None,
                unread: 0,
                mentions: 0,
            })
        })?;
        Ok(identity)
    }

    /// The names of a profile's rooms, as its store reads them.
    fn room_names(profile: &Unlocked) -> Result<Vec<String>, EngineError> {
        Ok(profile
            .store
            .db()
            .rooms()?
            .into_iter()
            .map(|(_, r)| r.name)
            .collect())
    }

    fn legacy_kdf(params: &KdfParams) -> Vec<u8> {
        let mut kdf = params.iterations.to_be_bytes().to_vec();
        kdf.extend_from_slice(&params.memory_kib.to_be_bytes());
        kdf
    }

    fn set_slot_params(paths: &ProfilePaths, t: u32, m: u32) -> Result<(), EngineError> {
        let store = store_file(paths)?;
        let mut slot = store
            .meta("key")?
            .ok_or(EngineError::NoSuch(What::KeySlot))?;
        slot[2..6].copy_from_slice(&t.to_be_bytes());
        slot[6..10].copy_from_slice(&m.to_be_bytes());
        store.set_meta("key", &slot)
    }

    /// A profile keeps one delivery secret; one made before hum/2 gets its own on first
    /// open, and keeps that one.
    #[test]
    fn the_delivery_secret_is_made_once_and_kept() -> Result<(), EngineError> {
        let dir = Scratch::new("delivery");
        let made = create_fast(&dir)?.delivery.clone();
        let again = unlock_with(&paths(&dir), b"pw", FAST)?.delivery.clone();
        assert_eq!(made, again);
        // It is sealed: its bytes are nowhere in the store file.
        let file = std::fs::read(paths(&dir).store()).map_err(|e| io_error(&paths(&dir).dir, e))?;
        assert!(!file.windows(32).any(|w| w == made.expose_secret()));

        let old = ProfilePaths::in_dir("old", dir.0.join("old"));
        let params = KdfParams::INSECURE_FAST;
        create_legacy(&old, b"pw", &legacy_kdf(&params), &params)?;
        assert_eq!(store_file(&old)?.meta("delivery")?, None);
        let first = unlock_with(&old, b"pw", FAST)?.delivery.clone();
        let second = unlock_with(&old, b"pw", FAST)?.delivery.clone();
        assert_eq!(first, second);
        assert_ne!(first, made);
        Ok(())
    }

    #[test]
    fn a_profile_is_open_in_one_place_at_a_time() -> Result<(), EngineError> {
        let dir = Scratch::new("lock");
        let paths = ProfilePaths::in_dir("alice", dir.0.join("alice"));
        let first = create_with(&paths, "Alice", b"pw", KdfParams::INSECURE_FAST)?;
        // A second open while the first holds the profile is refused, naming the holder.
        let second = unlock(&paths, b"pw").map(|_| ());
        assert!(second.is_err(), "the profile opened twice");
        let Err(err) = second else {
            return Ok(());
        };
        let EngineError::InUse {
            profile,
            pid,
            program,
        } = &err
        else {
            return Err(err);
        };
        assert_eq!(profile, "alice");
        assert_eq!(*pid, Some(std::process::id()));
        assert!(program.is_some());
        let text = err.to_string();
        assert!(
            text.starts_with("profile alice is in use by another ")
                && text.ends_with(&format!("(pid {})", std::process::id())),
            "{text}"
        );
        // Creating over it is refused the same way, and so is a wrong passphrase's attempt:
        // nobody gets as far as the store.
        assert!(matches!(
            unlock(&paths, b"wrong"),
            Err(EngineError::InUse { .. })
        ));
        drop(first);
        let again = unlock_with(&paths, b"pw", FAST)?;
        assert_eq!(again.name(), "Alice");
        Ok(())
    }

    #[test]
    fn a_profile_opens_with_its_passphrase_only() -> Result<(), EngineError> {
        let dir = Scratch::new("open");
        let made = create_with(&paths(&dir), "ada", b"pw", KdfParams::INSECURE_FAST)?;
        let fingerprint = made.fingerprint();
        drop(made);
        let opened = unlock_with(&paths(&dir), b"pw", FAST)?;
        assert_eq!(opened.fingerprint(), fingerprint);
        assert_eq!(opened.name(), "ada");
        drop(opened);
        assert!(matches!(
            unlock_with(&paths(&dir), b"wrong", FAST).map(|_| ()),
            Err(EngineError::WrongPassphrase)
        ));
        Ok(())
    }

    /// What a release build opens: a test-weak profile is refused with a clear error, and
    /// the KDF never runs on it.
    #[test]
    fn the_standard_policy_refuses_a_weak_profile() -> Result<(), EngineError> {
        let dir = Scratch::new("weak");
        drop(create_fast(&dir)?);
        let err = unlock_with(&paths(&dir), b"pw", KdfPolicy::Standard).map(|_| ());
        assert!(
            matches!(
                &err,
                Err(EngineError::Store(StoreError::KeySlot(
                    CryptoError::KdfParamsOutOfRange { .. }
                )))
            ),
            "{err:?}"
        );
        Ok(())
    }

    /// Parameters changed in the store: a huge memory cost is refused before the KDF (a
    /// clear error, no 4 TiB allocation); a changed set in range does not unlock.
    #[test]
    fn tampered_kdf_parameters_do_not_unlock() -> Result<(), EngineError> {
        let dir = Scratch::new("tamper");
        drop(create_fast(&dir)?);
        set_slot_params(&paths(&dir), 1, u32::MAX)?;
        let err = unlock_with(&paths(&dir), b"pw", FAST).map(|_| ());
        assert!(
            matches!(&err, Err(e @ EngineError::Store(StoreError::KeySlot(_))) if e.to_string().contains("m = 4294967295 KiB")),
            "{err:?}"
        );
        set_slot_params(&paths(&dir), 2, 8)?;
        assert!(matches!(
            unlock_with(&paths(&dir), b"pw", FAST).map(|_| ()),
            Err(EngineError::WrongPassphrase)
        ));
        set_slot_params(&paths(&dir), 1, 8)?;
        unlock_with(&paths(&dir), b"pw", FAST)?;
        Ok(())
    }

    /// A profile from before key slots opens and is migrated to an Argon2id key slot; its
    /// rows stay readable and the old salt and parameters are gone.
    #[test]
    fn a_legacy_argon2i_profile_opens_and_is_migrated() -> Result<(), EngineError> {
        let dir = Scratch::new("legacy");
        let paths = paths(&dir);
        let params = KdfParams::INSECURE_FAST;
        let identity = create_legacy(&paths, b"pw", &legacy_kdf(&params), &params)?;
        assert!(matches!(
            unlock_with(&paths, b"wrong", FAST).map(|_| ()),
            Err(EngineError::WrongPassphrase)
        ));
        let opened = unlock_with(&paths, b"pw", FAST)?;
        assert_eq!(opened.fingerprint(), identity.fingerprint().to_string());
        assert_eq!(opened.name(), "old");
        assert_eq!(room_names(&opened)?, ["from before"]);
        drop(opened);
        assert_eq!(slot_params(&paths)?, KdfParams::INSECURE_FAST);
        let file = store_file(&paths)?;
        assert_eq!(file.meta("salt")?, None);
        assert_eq!(file.meta("kdf")?, None);
        drop(file);
        // Opened again, through the key slot this time.
        let again = unlock_with(&paths, b"pw", FAST)?;
        assert_eq!(room_names(&again)?, ["from before"]);
        Ok(())
    }

    /// The fixture's profile `name` (store schema 1, its key Argon2i of `test passphrase`
    /// with the default parameters, written by hum before the sealed store and key slots),
    /// copied into `dir`.
    fn fixture(dir: &Scratch, name: &str) -> Result<ProfilePaths, Box<dyn std::error::Error>> {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/store-v1")
            .join(name)
            .join("store.db");
        let paths = paths(dir);
        std::fs::create_dir_all(&paths.dir)?;
        std::fs::copy(from, paths.store())?;
        Ok(paths)
    }

    fn schema(paths: &ProfilePaths) -> Result<Option<Vec<u8>>, EngineError> {
        store_file(paths)?.meta("schema")
    }

    /// A profile from before both the key slot and the sealed store goes through both
    /// migrations in one unlock: its key into an Argon2id key slot, its rows into schema 2.
    #[test]
    fn a_schema_1_argon2i_profile_migrates_its_key_and_its_store() -> TestResult {
        let dir = Scratch::new("fixture-both");
        let paths = fixture(&dir, "bob")?;
        assert_eq!(schema(&paths)?, Some(1i64.to_be_bytes().to_vec()));
        let bob = unlock_with(&paths, b"test passphrase", FAST)?;
        assert_eq!(bob.name(), "bob");
        let mut rooms = room_names(&bob)?;
        rooms.sort();
        assert_eq!(rooms, ["alice", "friends"]);
        drop(bob);
        assert_eq!(schema(&paths)?, Some(2i64.to_be_bytes().to_vec()));
        assert_eq!(slot_params(&paths)?, KdfParams::INSECURE_FAST);
        let file = store_file(&paths)?;
        assert_eq!((file.meta("salt")?, file.meta("kdf")?), (None, None));
        drop(file);
        assert_eq!(unlock_with(&paths, b"test passphrase", FAST)?.name(), "bob");
        Ok(())
    }

    /// A schema 1 store whose key is already in a key slot (a profile stopped between the
    /// two migrations, or made by a hum with key slots and the old store) opens through
    /// the slot and migrates its rows.
    #[test]
    fn a_schema_1_store_with_a_key_slot_migrates_its_rows() -> TestResult {
        let dir = Scratch::new("fixture-slot");
        let paths = fixture(&dir, "bob")?;
        let mut file = store_file(&paths)?;
        migrate_legacy_key(&mut file, b"test passphrase", FAST)?;
        drop(file);
        assert_eq!(schema(&paths)?, Some(1i64.to_be_bytes().to_vec()));
        assert!(matches!(
            unlock_with(&paths, b"wrong", FAST).map(|_| ()),
            Err(EngineError::WrongPassphrase)
        ));
        let bob = unlock_with(&paths, b"test passphrase", FAST)?;
        let mut rooms = room_names(&bob)?;
        rooms.sort();
        assert_eq!(rooms, ["alice", "friends"]);
        drop(bob);
        assert_eq!(schema(&paths)?, Some(2i64.to_be_bytes().to_vec()));
        Ok(())
    }

    /// Under the standard policy a weak legacy profile still opens (it has to: older
    /// builds made such profiles) and is re-wrapped with the default parameters.
    #[test]
    fn a_weak_legacy_profile_is_migrated_to_the_default_kdf() -> Result<(), EngineError> {
        let dir = Scratch::new("legacy-weak");
        let paths = paths(&dir);
        let params = KdfParams::INSECURE_FAST;
        create_legacy(&paths, b"pw", &legacy_kdf(&params), &params)?;
        drop(unlock_with(&paths, b"pw", KdfPolicy::Standard)?);
        assert_eq!(slot_params(&paths)?, KdfParams::DEFAULT);
        Ok(())
    }

    /// A legacy profile whose unauthenticated parameters were raised to a huge memory cost
    /// gives a clear error instead of exhausting memory, and is left as it was.
    #[test]
    fn a_tampered_legacy_profile_gives_a_clear_error() -> Result<(), EngineError> {
        let dir = Scratch::new("legacy-huge");
        let paths = paths(&dir);
        let params = KdfParams::INSECURE_FAST;
        let huge = KdfParams {
            iterations: 1,
            memory_kib: u32::MAX,
        };
        create_legacy(&paths, b"pw", &legacy_kdf(&huge), &params)?;
        let err = unlock_with(&paths, b"pw", FAST).map(|_| ());
        assert!(
            matches!(
                &err,
                Err(EngineError::Store(StoreError::KeySlot(
                    CryptoError::KdfParamsOutOfRange { .. }
                )))
            ),
            "{err:?}"
        );
        let store = store_file(&paths)?;
        assert_eq!(store.meta("key")?, None);
        assert!(store.meta("salt")?.is_some());
        Ok(())
    }
}
