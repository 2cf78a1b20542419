//! One process per profile (docs/PROTOCOL.md §6.1): an exclusive lock on the profile
//! folder's `lock` file, held for as long as the profile is open.
//!
//! Two processes on one profile would each advance their own copy of every ratchet and
//! sender key and seal different messages under the same keys. The lock is the operating
//! system's (`flock` on Unix, `LockFileEx` on Windows), so it goes with its process: a
//! killed hum leaves no stale lock behind. The file holds the holder's pid and program
//! name, for the error the next one sees.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::EngineError;

/// The lock file's name inside the profile folder.
const LOCK_FILE: &str = "lock";

/// The held lock; released when dropped (or when the process ends, however it ends).
pub(crate) struct ProfileLock {
    _file: File,
}

impl std::fmt::Debug for ProfileLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProfileLock")
    }
}

impl ProfileLock {
    /// Takes the lock of the profile `name` kept in `dir`, without waiting.
    ///
    /// # Errors
    /// [`EngineError::InUse`] when another process holds it, naming that process;
    /// [`EngineError::Profile`] when the lock file cannot be opened.
    pub(crate) fn acquire(dir: &Path, name: &str) -> Result<Self, EngineError> {
        let path = dir.join(LOCK_FILE);
        let io = |e: std::io::Error| super::profile::io_error(&path, e);
        let mut options = OpenOptions::new();
        // Not truncated on open: until the lock is ours, its contents are the holder's.
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let (pid, program) = parse_holder(&text);
                return Err(EngineError::InUse {
                    profile: name.to_owned(),
                    pid,
                    program,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}\n{}", std::process::id(), program_name()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// This program's name, as the lock file records it.
fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| clean(&s))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "hum".to_owned())
}

fn clean(s: &str) -> String {
    crate::api::DisplayName::clean(s)
}

/// Reads `pid \n program \n` as written by [`ProfileLock::acquire`]; anything else (a
/// holder that has not written yet, a damaged file) names nobody.
fn parse_holder(text: &str) -> (Option<u32>, Option<String>) {
    let mut lines = text.lines();
    let pid = lines.next().and_then(|l| l.trim().parse().ok());
    let program = lines
        .next()
        .map(|l| clean(l.trim()))
        .filter(|s| !s.is_empty());
    (pid, program)
}

/// How [`EngineError::InUse`] names the holder: "another hum (pid 1234)".
pub(crate) fn holder_text(program: &Option<String>, pid: &Option<u32>) -> String {
    match (program, pid) {
        (Some(p), Some(pid)) => format!("another {p} (pid {pid})"),
        (None, Some(pid)) => format!("another program (pid {pid})"),
        (Some(p), None) => format!("another {p}"),
        (None, None) => "another program".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_read_back_and_garbage_names_nobody() {
        assert_eq!(
            parse_holder("1234\nhum\n"),
            (Some(1234), Some("hum".to_owned()))
        );
        assert_eq!(parse_holder(""), (None, None));
        assert_eq!(parse_holder("x\n\u{7}\n"), (None, None));
        assert_eq!(
            holder_text(&Some("hum".into()), &Some(1234)),
            "another hum (pid 1234)"
        );
        assert_eq!(holder_text(&None, &None), "another program");
    }
}
