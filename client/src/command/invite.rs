//! Invite codes in what is typed or pasted, and `/invite FILE`'s file.

use std::path::{Path, PathBuf};

use hum_shared::crypto::{Invite, InviteError};

/// The code's characters after `hum2-` (Crockford base32, either case).
fn code_char(c: char) -> bool {
    c.is_ascii_digit()
        || (c.is_ascii_alphabetic() && !matches!(c.to_ascii_lowercase(), 'i' | 'l' | 'o' | 'u'))
}

/// Whether a word starts like an invite code: `hum`, a version number, `-`.
fn starts_like_code(word: &str) -> bool {
    let Some(rest) = word.get(..3).filter(|p| p.eq_ignore_ascii_case("hum")) else {
        return false;
    };
    let rest = &word[rest.len()..];
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && rest[digits..].starts_with('-')
}

/// The invite code in `text` when the text is nothing but a code, perhaps copied off a
/// terminal over several lines (spaces and line breaks inside it are dropped).
pub fn invite_code(text: &str) -> Option<String> {
    let code: String = text.split_whitespace().collect();
    let body = code.split_once('-').map(|(_, b)| b)?;
    (starts_like_code(&code) && body.len() >= 32 && body.chars().all(code_char)).then_some(code)
}

/// Split the words after `/accept` into the code and the contact's name. A code copied off
/// the screen arrives in pieces, one per row: the code is the most leading words that join
/// into a code whose checksum holds; the words after it are the name. When no such code is
/// there (a damaged one), the words up to the first that cannot be part of a code are taken,
/// so the engine can say what is wrong with it.
pub fn split_accept(rest: &str, now_unix: u64) -> (String, Option<String>) {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let name_of = |k: usize| {
        let n = words[k..].join(" ");
        (!n.is_empty()).then_some(n)
    };
    for k in (1..=words.len()).rev() {
        let code: String = words[..k].concat();
        // These answers come only once the checksum held.
        if matches!(
            Invite::decode(&code, now_unix),
            Ok(_) | Err(InviteError::Expired { .. } | InviteError::Forged | InviteError::Malformed)
        ) {
            return (code, name_of(k));
        }
    }
    let k = if words.first().is_some_and(|w| starts_like_code(w)) {
        1 + words[1..]
            .iter()
            .take_while(|w| w.chars().all(code_char) && w.len() > 3)
            .count()
    } else {
        1
    };
    let k = k.min(words.len());
    (words[..k].concat(), name_of(k))
}

/// A path as typed: `~/` is the home folder.
pub fn typed_path(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), directories::BaseDirs::new()) {
        (Some(rest), Some(b)) => b.home_dir().join(rest),
        _ => PathBuf::from(p),
    }
}

/// Write an invite code to a new file that only this user can read.
///
/// # Errors
/// The file exists already, or cannot be created or written (the message names it).
pub fn write_invite(path: &Path, code: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    writeln!(f, "{code}")
}

/// What to say once an invite code was written to `path`, or was not: a notice (`Ok`) or
/// an error (`Err`), in the same words on both faces.
///
/// # Errors
/// The error's words when `result` is one.
pub fn saved_note(path: &Path, result: Result<(), String>) -> Result<String, String> {
    match result {
        Ok(()) => Ok(format!("invite code saved to {}", path.display())),
        Err(e) => Err(format!("the invite code was not saved: {e}")),
    }
}

/// The seconds since 1970 now (0 when the clock is before it).
pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
