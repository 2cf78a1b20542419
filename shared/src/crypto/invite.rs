//! Invite codes: compact, copy-pasteable text carrying everything needed to start a session
//! (docs/PROTOCOL.md, section 3.3).

use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::identity::{Identity, PublicIdentity};
use super::kdf::{self, L_INVITE_CHECKSUM, L_INVITE_SIG};
use super::mailbox::{Capability, MailboxId};
use crate::route::{DeliverySecret, TagKey};

/// The invite format this build writes and reads (2: hum/2's delivery secret, tag key and
/// suggested entry relay).
const INVITE_VERSION: u8 = 2;
/// Text prefix before the version digits.
const PREFIX: &str = "hum";
/// Base32 alphabet (Crockford's: no i, l, o, u).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Checksum length in bytes.
const CHECKSUM_LEN: usize = 5;
/// Fixed part of the payload: version, expiry, identity, prekey, mailbox, tag key,
/// delivery secret.
const FIXED_LEN: usize = 1 + 8 + PublicIdentity::LEN + 32 + 32 + 32 + 32;
/// The variable fields: home relay, suggested entry relay, nickname.
const FIELDS: usize = 3;
/// Longest relay address or nickname.
const MAX_FIELD: usize = 255;

/// What is wrong with a damaged invite code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// The code does not start with `hum<version>-`.
    MissingPrefix,
    /// A character outside the code's alphabet, at this position (counting from 1, ignoring
    /// spaces and line breaks).
    InvalidCharacter {
        /// Position of the character, from 1.
        position: usize,
        /// The character found.
        character: char,
    },
    /// The code is shorter than any invite can be: part of it was not copied.
    Truncated,
    /// The checksum does not match: some characters were changed.
    Checksum,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::MissingPrefix => f.write_str("it does not start with \"hum2-\""),
            Damage::InvalidCharacter {
                position,
                character,
            } => write!(
                f,
                "character {position} ({character:?}) cannot appear in a code"
            ),
            Damage::Truncated => f.write_str("it is too short; part of it was not copied"),
            Damage::Checksum => f.write_str("its checksum does not match; some characters changed"),
        }
    }
}

/// Why an invite code was refused. Each variant says what the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteError {
    /// The text was damaged in transit (bad character, truncated, checksum mismatch).
    #[error("invite code is damaged: {0}. Copy the whole code again")]
    Damaged(Damage),
    /// The invite's validity ended at this unix time.
    #[error("invite code expired on {}. Ask for a new one", utc_date(*expired_at))]
    Expired {
        /// Unix time (seconds) at which it expired.
        expired_at: u64,
    },
    /// The signature does not verify: the code was altered or was not made by the
    /// identity it names.
    #[error("invite code is forged: its signature does not verify. Do not use it")]
    Forged,
    /// The code was written by a newer version of hum.
    #[error(
        "invite code has version {0}, this hum reads version 2. Update hum or ask for a new code"
    )]
    UnsupportedVersion(u8),
    /// The code was written by an older hum, whose invites do not say where the inviter
    /// receives on hum/2.
    #[error("invite code was made by an older hum: ask for a new code")]
    Outdated(u8),
    /// The code decodes but its contents are invalid (for example a prekey of small
    /// order), or a field given to create one is too long.
    #[error("invite code is malformed. Ask for a new one")]
    Malformed,
}

/// `2026-11-24 13:05 UTC` for a unix time in seconds.
fn utc_date(secs: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

/// An invite, as decoded from a code: the inviter's home relay and a suggested entry
/// relay, the inviter's identity and delivery secret, a signed one-time prekey, the
/// invite's one-time mailbox id and the tag key of the answer.
///
/// Only [`Invite::decode`] and [`Identity::create_invite`] make one, so a value of this type
/// always carries a verified signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Invite {
    relay: String,
    entry: Option<String>,
    inviter: PublicIdentity,
    prekey: [u8; 32],
    mailbox: MailboxId,
    tag_key: TagKey,
    delivery: DeliverySecret,
    expires_at: u64,
    nickname: Option<String>,
    signature: [u8; 64],
}

/// Where the inviter receives, for [`Identity::create_invite_with`].
#[derive(Debug, Clone, Copy)]
pub struct InviteHome<'a> {
    /// The inviter's home relay, `hum://host:port#fingerprint`.
    pub relay: &'a str,
    /// An entry relay the acceptor may use (`None`: the home relay is a single relay, or
    /// the acceptor chooses).
    pub entry: Option<&'a str>,
    /// The inviter's delivery secret (docs/PROTOCOL.md, hum/2 §H3.3).
    pub delivery: &'a DeliverySecret,
}

/// The inviter's secret half of an invite: the one-time prekey secret and the capability of
/// the one-time mailbox. Keep it (sealed) until the invite is answered or expires, then delete
/// it: it must be used once only.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct InviteSecret {
    prekey_secret: [u8; 32],
    capability: Capability,
    expires_at: u64,
}

impl InviteSecret {
    /// The capability that fetches answers from the invite's one-time mailbox.
    pub fn capability(&self) -> &Capability {
        &self.capability
    }

    /// The tag key the answer's deposit is tagged with (the invite carries it).
    pub fn tag_key(&self) -> TagKey {
        invite_tag_key(&self.capability)
    }

    /// When the invite expires (unix seconds); delete the secret after that.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Serializes for the store.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(72));
        out.extend_from_slice(&self.prekey_secret);
        out.extend_from_slice(self.capability.expose_secret());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out
    }

    /// Parses what [`InviteSecret::to_bytes`] produced.
    ///
    /// # Errors
    /// [`InviteError::Malformed`] for a wrong length.
    pub fn from_bytes(bytes: &[u8]) -> Result<InviteSecret, InviteError> {
        if bytes.len() != 72 {
            return Err(InviteError::Malformed);
        }
        let m = |_| InviteError::Malformed;
        Ok(InviteSecret {
            prekey_secret: kdf::array_at::<32>(bytes, 0).map_err(m)?,
            capability: Capability::from_bytes(kdf::array_at::<32>(bytes, 32).map_err(m)?),
            expires_at: u64::from_be_bytes(kdf::array_at::<8>(bytes, 64).map_err(m)?),
        })
    }

    pub(crate) fn prekey_secret(&self) -> &[u8; 32] {
        &self.prekey_secret
    }
}

impl std::fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InviteSecret {{ expires_at: {} }}", self.expires_at)
    }
}

/// The tag key of an invite's answer: `B2b256("hum/2 invite tag"; C)` of the invite's
/// random capability, so the inviter keeps nothing more than the capability (and, once
/// the invite is used, still knows later answers by it).
pub fn invite_tag_key(capability: &Capability) -> TagKey {
    TagKey::from_bytes(crate::route::kdf::b2b(
        crate::route::kdf::L_INVITE_TAG,
        &[capability.expose_secret()],
    ))
}

impl Identity {
    /// Makes an invite valid for `ttl_secs` from `now_unix`, with a fresh one-time prekey and
    /// mailbox. Returns the invite to share and the secret to keep.
    ///
    /// `relay` is the relay address with its certificate fingerprint,
    /// `hum://host:port#fingerprint`. The invite carries a fresh delivery secret, which
    /// suits an identity that keeps none (tests, tools); a profile uses
    /// [`Identity::create_invite_with`] with its own.
    ///
    /// # Errors
    /// [`InviteError::Malformed`] if `relay` is longer than 255 bytes.
    pub fn create_invite(
        &self,
        relay: &str,
        ttl_secs: u64,
        now_unix: u64,
    ) -> Result<(Invite, InviteSecret), InviteError> {
        self.create_invite_with_nickname(relay, None, ttl_secs, now_unix)
    }

    /// Like [`Identity::create_invite`], with a nickname hint shown to whoever pastes it.
    ///
    /// # Errors
    /// [`InviteError::Malformed`] if `relay` or `nickname` is longer than 255 bytes.
    pub fn create_invite_with_nickname(
        &self,
        relay: &str,
        nickname: Option<&str>,
        ttl_secs: u64,
        now_unix: u64,
    ) -> Result<(Invite, InviteSecret), InviteError> {
        let delivery = DeliverySecret::generate();
        let home = InviteHome {
            relay,
            entry: None,
            delivery: &delivery,
        };
        self.create_invite_with(&home, nickname, ttl_secs, now_unix)
    }

    /// Makes an invite naming where the inviter receives (`home`), with an optional
    /// nickname hint, valid for `ttl_secs` from `now_unix`.
    ///
    /// # Errors
    /// [`InviteError::Malformed`] if a relay address or `nickname` is longer than 255
    /// bytes.
    pub fn create_invite_with(
        &self,
        home: &InviteHome<'_>,
        nickname: Option<&str>,
        ttl_secs: u64,
        now_unix: u64,
    ) -> Result<(Invite, InviteSecret), InviteError> {
        let relay = home.relay;
        if relay.len() > MAX_FIELD
            || nickname.is_some_and(|n| n.len() > MAX_FIELD)
            || home.entry.is_some_and(|e| e.len() > MAX_FIELD)
        {
            return Err(InviteError::Malformed);
        }
        let prekey_secret = StaticSecret::random_from_rng(&mut kdf::rng());
        let capability = Capability::generate();
        let expires_at = now_unix.saturating_add(ttl_secs);
        let mut invite = Invite {
            relay: relay.to_owned(),
            // An empty entry is written as none, as an empty nickname is.
            entry: home.entry.filter(|e| !e.is_empty()).map(str::to_owned),
            inviter: self.public(),
            prekey: PublicKey::from(&prekey_secret).to_bytes(),
            mailbox: capability.mailbox_id(),
            tag_key: invite_tag_key(&capability),
            delivery: home.delivery.clone(),
            expires_at,
            // An empty nickname is written as no nickname; say so here too, so the invite
            // is the one its code decodes to.
            nickname: nickname.filter(|n| !n.is_empty()).map(str::to_owned),
            signature: [0u8; 64],
        };
        let unsigned = invite.unsigned_bytes();
        invite.signature = self.sign(&[L_INVITE_SIG, &unsigned].concat()).to_bytes();
        let secret = InviteSecret {
            prekey_secret: prekey_secret.to_bytes(),
            capability,
            expires_at,
        };
        Ok((invite, secret))
    }
}

impl Invite {
    /// The inviter's home relay, `hum://host:port#fingerprint`.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// The entry relay the inviter suggests, if any.
    pub fn entry(&self) -> Option<&str> {
        self.entry.as_deref()
    }

    /// The inviter's delivery secret: its bucket, wrap and detection keys follow from it.
    pub fn delivery_secret(&self) -> &DeliverySecret {
        &self.delivery
    }

    /// The tag key of the answer's deposit.
    pub fn tag_key(&self) -> &TagKey {
        &self.tag_key
    }

    /// Who made the invite.
    pub fn inviter(&self) -> &PublicIdentity {
        &self.inviter
    }

    /// The one-time mailbox to deposit the answer (the handshake envelope) into.
    pub fn mailbox(&self) -> MailboxId {
        self.mailbox
    }

    /// Unix time (seconds) after which the invite is refused.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The inviter's nickname hint, if any (unauthenticated by anything but the invite's
    /// signature: a hint, not a name).
    pub fn nickname(&self) -> Option<&str> {
        self.nickname.as_deref()
    }

    pub(crate) fn prekey(&self) -> &[u8; 32] {
        &self.prekey
    }

    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + 2 + self.relay.len() + 64);
        out.push(INVITE_VERSION);
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&self.inviter.to_bytes());
        out.extend_from_slice(&self.prekey);
        out.extend_from_slice(self.mailbox.as_bytes());
        out.extend_from_slice(self.tag_key.expose_secret());
        out.extend_from_slice(self.delivery.expose_secret());
        for field in [
            Some(self.relay.as_str()),
            self.entry.as_deref(),
            self.nickname.as_deref(),
        ] {
            let field = field.unwrap_or("");
            // Lengths are checked at creation and at parsing.
            out.push(u8::try_from(field.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    /// Encodes as text: `hum2-` followed by Crockford base32 of the signed payload and a
    /// 5-byte BLAKE2b checksum.
    pub fn encode(&self) -> String {
        let mut payload = self.unsigned_bytes();
        payload.extend_from_slice(&self.signature);
        encode_payload(INVITE_VERSION, &payload)
    }

    /// Decodes and verifies an invite code. Spaces, line breaks and case are ignored.
    ///
    /// # Errors
    /// [`InviteError::UnsupportedVersion`], [`InviteError::Damaged`], [`InviteError::Malformed`],
    /// [`InviteError::Forged`] or [`InviteError::Expired`], checked in that order.
    pub fn decode(code: &str, now_unix: u64) -> Result<Invite, InviteError> {
        let payload = decode_payload(code)?;
        let invite = parse_payload(&payload)?;
        if now_unix >= invite.expires_at {
            return Err(InviteError::Expired {
                expired_at: invite.expires_at,
            });
        }
        Ok(invite)
    }
}

impl Invite {
    /// The text code of any payload bytes, with a valid checksum, so a fuzz target reaches
    /// the parser and the signature check behind it. For fuzz targets only: the `fuzzing`
    /// feature, which no build of hum enables.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn fuzz_code(payload: &[u8]) -> String {
        encode_payload(INVITE_VERSION, payload)
    }
}

impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invite")
            .field("relay", &self.relay)
            .field("entry", &self.entry)
            .field("inviter", &self.inviter)
            .field("expires_at", &self.expires_at)
            .field("nickname", &self.nickname)
            .finish_non_exhaustive()
    }
}

fn checksum(version: u8, payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = kdf::blake2b_256(L_INVITE_CHECKSUM, &[&[version], payload])
        .expect("BLAKE2b with a short key and 32-byte output cannot fail");
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

fn encode_payload(version: u8, payload: &[u8]) -> String {
    let mut data = payload.to_vec();
    data.extend_from_slice(&checksum(version, payload));
    let mut out = format!("{PREFIX}{version}-");
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in data {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

fn symbol_value(c: char) -> Option<u32> {
    let c = match c.to_ascii_lowercase() {
        'o' => '0',
        'i' | 'l' => '1',
        other => other,
    };
    ALPHABET
        .iter()
        .position(|&a| char::from(a) == c)
        .and_then(|p| u32::try_from(p).ok())
}

fn decode_payload(code: &str) -> Result<Vec<u8>, InviteError> {
    let text: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix(PREFIX)
        .ok_or(InviteError::Damaged(Damage::MissingPrefix))?;
    let (version, body) = rest
        .split_once('-')
        .ok_or(InviteError::Damaged(Damage::MissingPrefix))?;
    let version: u8 = version
        .parse()
        .map_err(|_| InviteError::Damaged(Damage::MissingPrefix))?;
    check_version(version)?;
    let offset = PREFIX.len() + rest.len() - body.len();
    let mut data = Vec::with_capacity(body.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (i, c) in body.chars().enumerate() {
        let v = symbol_value(c).ok_or(InviteError::Damaged(Damage::InvalidCharacter {
            position: offset + i + 1,
            character: c,
        }))?;
        acc = ((acc << 5) | v) & 0xFFFF;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            data.push(((acc >> bits) & 0xFF) as u8);
        }
    }
    if data.len() < FIXED_LEN + FIELDS + 64 + CHECKSUM_LEN {
        return Err(InviteError::Damaged(Damage::Truncated));
    }
    let (payload, sum) = data.split_at(data.len() - CHECKSUM_LEN);
    if sum != checksum(version, payload) {
        return Err(InviteError::Damaged(Damage::Checksum));
    }
    Ok(payload.to_vec())
}

/// An older code says so (it cannot be used: it names no delivery secret), a newer one
/// asks for an update.
fn check_version(version: u8) -> Result<(), InviteError> {
    match version {
        INVITE_VERSION => Ok(()),
        v if v < INVITE_VERSION => Err(InviteError::Outdated(v)),
        v => Err(InviteError::UnsupportedVersion(v)),
    }
}

fn parse_payload(payload: &[u8]) -> Result<Invite, InviteError> {
    let m = |_| InviteError::Malformed;
    let version = *payload.first().ok_or(InviteError::Malformed)?;
    check_version(version)?;
    let expires_at = u64::from_be_bytes(kdf::array_at::<8>(payload, 1).map_err(m)?);
    let inviter = PublicIdentity::from_bytes(
        payload
            .get(9..9 + PublicIdentity::LEN)
            .ok_or(InviteError::Malformed)?,
    )
    .map_err(|_| InviteError::Forged)?;
    let prekey = kdf::array_at::<32>(payload, 9 + PublicIdentity::LEN).map_err(m)?;
    if kdf::is_low_order(&prekey) {
        // Every DH with it would be the same for any secret: not a key anyone chose.
        return Err(InviteError::Malformed);
    }
    let mailbox =
        MailboxId::from_bytes(kdf::array_at::<32>(payload, 41 + PublicIdentity::LEN).map_err(m)?);
    let tag_key =
        TagKey::from_bytes(kdf::array_at::<32>(payload, 73 + PublicIdentity::LEN).map_err(m)?);
    let delivery = DeliverySecret::from_bytes(
        kdf::array_at::<32>(payload, 105 + PublicIdentity::LEN).map_err(m)?,
    );
    let mut at = FIXED_LEN;
    let mut fields = Vec::with_capacity(FIELDS);
    for _ in 0..FIELDS {
        let len = usize::from(*payload.get(at).ok_or(InviteError::Malformed)?);
        let bytes = payload
            .get(at + 1..at + 1 + len)
            .ok_or(InviteError::Malformed)?;
        fields.push(String::from_utf8(bytes.to_vec()).map_err(|_| InviteError::Malformed)?);
        at += 1 + len;
    }
    let signed_len = at;
    let signature = kdf::array_at::<64>(payload, signed_len).map_err(m)?;
    if payload.len() != signed_len + 64 {
        return Err(InviteError::Malformed);
    }
    kdf::verify_strict(
        inviter.verifying_key(),
        &[L_INVITE_SIG, &payload[..signed_len]].concat(),
        &signature,
    )
    .map_err(|_| InviteError::Forged)?;
    let nickname = fields.pop().filter(|n| !n.is_empty());
    let entry = fields.pop().filter(|e| !e.is_empty());
    let relay = fields.pop().ok_or(InviteError::Malformed)?;
    Ok(Invite {
        relay,
        entry,
        inviter,
        prekey,
        mailbox,
        tag_key,
        delivery,
        expires_at,
        nickname,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const RELAY: &str = "hum://relay.example:7447#0123456789abcdef";

    fn fresh() -> Result<(Identity, Invite, String), InviteError> {
        let id = Identity::generate();
        let (invite, _secret) = id.create_invite_with_nickname(RELAY, Some("ada"), 3600, NOW)?;
        let code = invite.encode();
        Ok((id, invite, code))
    }

    #[test]
    fn round_trip() -> Result<(), InviteError> {
        let (id, invite, code) = fresh()?;
        assert!(code.starts_with("hum2-"));
        let back = Invite::decode(&code, NOW + 1)?;
        assert_eq!(back, invite);
        assert_eq!(back.inviter(), &id.public());
        assert_eq!(back.relay(), RELAY);
        assert_eq!(back.entry(), None);
        assert_eq!(back.nickname(), Some("ada"));
        // Tolerates upper case and line breaks.
        let wrapped: String = code
            .to_ascii_uppercase()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| if i % 60 == 59 { vec![c, '\n'] } else { vec![c] })
            .collect();
        assert_eq!(Invite::decode(&wrapped, NOW)?, invite);
        Ok(())
    }

    #[test]
    fn damaged_codes_say_so() -> Result<(), InviteError> {
        let (_, _, code) = fresh()?;
        // A changed character.
        let mut chars: Vec<char> = code.chars().collect();
        chars[40] = if chars[40] == 'a' { 'b' } else { 'a' };
        let changed: String = chars.iter().collect();
        assert_eq!(
            Invite::decode(&changed, NOW),
            Err(InviteError::Damaged(Damage::Checksum))
        );
        // A character outside the alphabet.
        let bad = format!("{}!{}", &code[..30], &code[31..]);
        assert_eq!(
            Invite::decode(&bad, NOW),
            Err(InviteError::Damaged(Damage::InvalidCharacter {
                position: 31,
                character: '!'
            }))
        );
        // Truncations.
        assert_eq!(
            Invite::decode(&code[..100], NOW),
            Err(InviteError::Damaged(Damage::Truncated))
        );
        assert_eq!(
            Invite::decode(&code[..code.len() - 3], NOW),
            Err(InviteError::Damaged(Damage::Checksum))
        );
        assert_eq!(
            Invite::decode("hello", NOW),
            Err(InviteError::Damaged(Damage::MissingPrefix))
        );
        Ok(())
    }

    #[test]
    fn expired() -> Result<(), InviteError> {
        let (_, invite, code) = fresh()?;
        let err = Invite::decode(&code, NOW + 3600);
        assert_eq!(
            err,
            Err(InviteError::Expired {
                expired_at: invite.expires_at()
            })
        );
        Ok(())
    }

    #[test]
    fn forged() -> Result<(), InviteError> {
        let (_, invite, _) = fresh()?;
        // Extend the expiry without re-signing, with a valid checksum.
        let mut forged = invite.clone();
        forged.expires_at += 1_000_000;
        assert_eq!(
            Invite::decode(&forged.encode(), NOW),
            Err(InviteError::Forged)
        );
        // Substitute another identity.
        let mut swapped = invite;
        swapped.inviter = Identity::generate().public();
        assert_eq!(
            Invite::decode(&swapped.encode(), NOW),
            Err(InviteError::Forged)
        );
        Ok(())
    }

    /// A signed invite whose prekey has small order (Wycheproof's list) is refused: the
    /// handshake's DH1 and DH3 would not depend on the inviter's secret.
    #[test]
    fn small_order_prekeys_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let id = Identity::generate();
        let (invite, _) = id.create_invite(RELAY, 3600, NOW)?;
        for low in super::super::testdata::low_order_points()? {
            let mut bad = invite.clone();
            bad.prekey = low;
            let unsigned = bad.unsigned_bytes();
            bad.signature = id.sign(&[L_INVITE_SIG, &unsigned].concat()).to_bytes();
            assert_eq!(
                Invite::decode(&bad.encode(), NOW),
                Err(InviteError::Malformed)
            );
        }
        Ok(())
    }

    /// Found by the invite fuzz target: an invite made with an empty nickname differed
    /// from the one its code decodes to (no nickname).
    #[test]
    fn fuzz_an_empty_nickname_is_no_nickname() -> Result<(), InviteError> {
        let id = Identity::generate();
        let (invite, _) =
            id.create_invite_with_nickname("", Some(""), 7_885_073_971_316_523_007, 11_520)?;
        assert_eq!(invite.nickname(), None);
        assert_eq!(Invite::decode(&invite.encode(), 11_520)?, invite);
        Ok(())
    }

    #[test]
    fn unsupported_version() -> Result<(), InviteError> {
        let (_, _, code) = fresh()?;
        let v3 = code.replacen("hum2-", "hum3-", 1);
        assert_eq!(
            Invite::decode(&v3, NOW),
            Err(InviteError::UnsupportedVersion(3))
        );
        Ok(())
    }

    /// The home and entry relays, the delivery secret and the answer's tag key travel in
    /// the code; the inviter derives the same tag key from what it keeps.
    #[test]
    fn the_code_says_where_the_inviter_receives() -> Result<(), InviteError> {
        let id = Identity::generate();
        let delivery = DeliverySecret::generate();
        let home = InviteHome {
            relay: RELAY,
            entry: Some("hum://entry.example:7447#fedcba9876543210"),
            delivery: &delivery,
        };
        let (invite, secret) = id.create_invite_with(&home, None, 3600, NOW)?;
        let back = Invite::decode(&invite.encode(), NOW)?;
        assert_eq!(back.relay(), RELAY);
        assert_eq!(back.entry(), home.entry);
        assert_eq!(back.delivery_secret(), &delivery);
        assert_eq!(back.tag_key(), &secret.tag_key());
        assert_eq!(back.nickname(), None);
        // Another invite of the same identity has another tag key.
        let (other, _) = id.create_invite_with(&home, None, 3600, NOW)?;
        assert_ne!(other.tag_key(), back.tag_key());
        let long = "x".repeat(300);
        let too_long = InviteHome {
            entry: Some(&long),
            ..home
        };
        assert_eq!(
            id.create_invite_with(&too_long, None, 3600, NOW).err(),
            Some(InviteError::Malformed)
        );
        Ok(())
    }

    /// A code of the first format (hum/1 only) is refused with a clear error, even when
    /// its checksum and signature are good.
    #[test]
    fn an_older_code_asks_for_a_new_one() -> Result<(), InviteError> {
        let id = Identity::generate();
        let (invite, _) = id.create_invite(RELAY, 3600, NOW)?;
        // The first format's payload: no tag key, no delivery secret, no entry relay.
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&invite.expires_at.to_be_bytes());
        v1.extend_from_slice(&invite.inviter.to_bytes());
        v1.extend_from_slice(&invite.prekey);
        v1.extend_from_slice(invite.mailbox.as_bytes());
        for field in [RELAY, ""] {
            v1.push(u8::try_from(field.len()).map_err(|_| InviteError::Malformed)?);
            v1.extend_from_slice(field.as_bytes());
        }
        let signature = id.sign(&[L_INVITE_SIG, &v1].concat()).to_bytes();
        v1.extend_from_slice(&signature);
        let old = encode_payload(1, &v1);
        assert!(old.starts_with("hum1-"));
        let err = Invite::decode(&old, NOW);
        assert_eq!(err, Err(InviteError::Outdated(1)));
        assert_eq!(
            err.err().map(|e| e.to_string()).as_deref(),
            Some("invite code was made by an older hum: ask for a new code")
        );
        Ok(())
    }

    #[test]
    fn malformed() -> Result<(), InviteError> {
        let (_, invite, _) = fresh()?;
        let mut payload = invite.unsigned_bytes();
        payload.extend_from_slice(&invite.signature);
        payload.extend_from_slice(b"trailing");
        assert_eq!(
            Invite::decode(&encode_payload(INVITE_VERSION, &payload), NOW),
            Err(InviteError::Malformed)
        );
        assert!(
            Identity::generate()
                .create_invite(&"x".repeat(300), 10, NOW)
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn messages_are_actionable() {
        let e = InviteError::Expired { expired_at: 5 }.to_string();
        assert!(e.contains("Ask for a new one"));
        // A date a person reads, not a unix time.
        let e = InviteError::Expired {
            expired_at: 1_795_525_500,
        }
        .to_string();
        assert_eq!(
            e,
            "invite code expired on 2026-11-24 13:05 UTC. Ask for a new one"
        );
        assert!(
            InviteError::Expired { expired_at: 0 }
                .to_string()
                .contains("1970-01-01 00:00 UTC")
        );
        let d = InviteError::Damaged(Damage::Checksum).to_string();
        assert!(d.contains("Copy the whole code again"));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn encode_decode_round_trip(
                relay in "[ -~]{0,255}",
                nickname in proptest::option::of("\\PC{0,40}"),
                ttl in 1u64..1_000_000,
            ) {
                let id = Identity::generate();
                let nickname = nickname.filter(|n| n.len() <= 255);
                let (invite, _) = id
                    .create_invite_with_nickname(&relay, nickname.as_deref(), ttl, NOW)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(Invite::decode(&invite.encode(), NOW), Ok(invite));
            }

            #[test]
            fn arbitrary_text_never_panics(text in "\\PC{0,600}") {
                let _ = Invite::decode(&text, NOW);
                let _ = Invite::decode(&format!("hum2-{text}"), NOW);
            }
        }
    }
}
