//! What a network observer recorded: one line per TLS record,
//! `CONN DIR MS SIZE` separated by white space, where CONN is the client's end of the
//! connection as `IP:PORT` (what the observer sees, and what the ground truth's sessions
//! name), DIR is `up` (client to relay) or `down`, MS the unix time in milliseconds
//! (fractions allowed) and SIZE the record's length on the wire in bytes. Blank lines and
//! lines starting with `#` are skipped.

use std::collections::HashMap;

use super::error::AttackError;
use super::field::each_line;

/// One TLS record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WireRecord {
    /// Index into [`WireLog::conns`].
    pub(crate) conn: u32,
    pub(crate) up: bool,
    pub(crate) ms: f64,
    pub(crate) size: u32,
}

/// An observer's record file.
#[derive(Debug, Default)]
pub struct WireLog {
    pub(crate) records: Vec<WireRecord>,
    /// The connections' names (`IP:PORT`), by index.
    pub(crate) conns: Vec<String>,
}

impl WireLog {
    /// Reads an observer's record file.
    ///
    /// # Errors
    /// A line without four fields, with a direction other than `up` or `down`, or with a
    /// time or size that does not parse; or a read error. Each names its line.
    pub fn read<R: std::io::BufRead>(input: R) -> Result<Self, AttackError> {
        let mut log = WireLog::default();
        let mut index: HashMap<String, u32> = HashMap::new();
        each_line(input, |line, text| {
            if text.starts_with('#') {
                return Ok(());
            }
            let invalid =
                |field: &'static str, why: String| AttackError::Invalid { line, field, why };
            let f: Vec<&str> = text.split_whitespace().collect();
            let [conn, dir, ms, size] = f[..] else {
                return Err(invalid(
                    "line",
                    format!("has {} fields, not 4 (CONN DIR MS SIZE)", f.len()),
                ));
            };
            let up = match dir {
                "up" => true,
                "down" => false,
                other => return Err(invalid("DIR", format!("is {other:?}, not up or down"))),
            };
            let ms: f64 = ms
                .parse()
                .ok()
                .filter(|m: &f64| m.is_finite())
                .ok_or_else(|| invalid("MS", format!("is {ms:?}, not a number")))?;
            let size: u32 = size
                .parse()
                .map_err(|_| invalid("SIZE", format!("is {size:?}, not a byte count")))?;
            let next = index.len() as u32;
            let conn = *index.entry(conn.to_owned()).or_insert_with(|| {
                log.conns.push(conn.to_owned());
                next
            });
            log.records.push(WireRecord { conn, up, ms, size });
            Ok(())
        })?;
        Ok(log)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_names_a_bad_line() -> Result<(), AttackError> {
        let text = "# observer\n127.0.0.2:4000 down 1000.5 1302\n127.0.0.2:4000 up 1002.25 1302\n\n127.0.0.3:4001 up 1003 1318\n";
        let w = WireLog::read(text.as_bytes())?;
        assert_eq!(w.len(), 3);
        assert_eq!(w.conns, vec!["127.0.0.2:4000", "127.0.0.3:4001"]);
        assert!(!w.records[0].up && w.records[1].up);
        assert_eq!((w.records[2].conn, w.records[2].size), (1, 1318));
        for (bad, want) in [
            (
                "127.0.0.2:4000 sideways 1 1",
                "line 2: `DIR` is \"sideways\"",
            ),
            ("127.0.0.2:4000 up soon 1", "line 2: `MS` is \"soon\""),
            ("127.0.0.2:4000 up 1 -5", "line 2: `SIZE` is \"-5\""),
            ("127.0.0.2:4000 up 1", "line 2: `line` has 3 fields"),
        ] {
            let text = format!("127.0.0.2:4000 down 1 1302\n{bad}\n");
            match WireLog::read(text.as_bytes()) {
                Ok(_) => unreachable!("{bad} was accepted"),
                Err(e) => assert!(e.to_string().starts_with(want), "{bad}: {e}"),
            }
        }
        Ok(())
    }
}
