//! Reading the fields of one JSON line: required fields name themselves when missing, and
//! digests and relay ids are checked to be 16 hexadecimal digits.

use std::borrow::Cow;

use serde::Deserialize;

use super::error::AttackError;

/// The line and event a field belongs to, for errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) line: usize,
    pub(crate) ev: &'a str,
}

impl At<'_> {
    /// `value`, or the error naming `field` as missing.
    pub(crate) fn need<T>(&self, field: &'static str, value: Option<T>) -> Result<T, AttackError> {
        value.ok_or_else(|| AttackError::Missing {
            line: self.line,
            ev: self.ev.to_owned(),
            field,
        })
    }

    /// A required digest or relay id (16 hexadecimal digits).
    pub(crate) fn hex(
        &self,
        field: &'static str,
        value: Option<&Cow<'_, str>>,
    ) -> Result<u64, AttackError> {
        let v = self.need(field, value)?;
        self.parse_hex(field, v)
    }

    /// An optional (nullable) digest.
    pub(crate) fn opt_hex(
        &self,
        field: &'static str,
        value: Option<&Cow<'_, str>>,
    ) -> Result<Option<u64>, AttackError> {
        value.map(|v| self.parse_hex(field, v)).transpose()
    }

    fn parse_hex(&self, field: &'static str, v: &str) -> Result<u64, AttackError> {
        if v.len() != 16 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.invalid(field, format!("is {v:?}, not 16 hexadecimal digits")));
        }
        u64::from_str_radix(v, 16).map_err(|e| self.invalid(field, e.to_string()))
    }

    /// One of `names`, as its index.
    pub(crate) fn choice(
        &self,
        field: &'static str,
        value: Option<&Cow<'_, str>>,
        names: &[&str],
    ) -> Result<usize, AttackError> {
        let v = self.need(field, value)?;
        names.iter().position(|n| *n == v.as_ref()).ok_or_else(|| {
            self.invalid(field, format!("is {v:?}, not one of {}", names.join(", ")))
        })
    }

    pub(crate) fn invalid(&self, field: &'static str, why: String) -> AttackError {
        AttackError::Invalid {
            line: self.line,
            field,
            why,
        }
    }
}

/// A user or group name: the ground truth may write them as numbers or strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Name<'a> {
    /// A number.
    Num(u64),
    /// A string.
    Str(#[serde(borrow)] Cow<'a, str>),
}

impl Name<'_> {
    /// The name as a string key.
    pub(crate) fn key(&self) -> Cow<'_, str> {
        match self {
            Name::Num(n) => Cow::Owned(n.to_string()),
            Name::Str(s) => Cow::Borrowed(s.as_ref()),
        }
    }
}

/// Reads `input` line by line into `f` (line number, text), skipping blank lines.
///
/// # Errors
/// A read error, or whatever `f` returns.
pub(crate) fn each_line<R: std::io::BufRead>(
    mut input: R,
    mut f: impl FnMut(usize, &str) -> Result<(), AttackError>,
) -> Result<usize, AttackError> {
    let mut buf = String::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        line += 1;
        let n = input
            .read_line(&mut buf)
            .map_err(|source| AttackError::Io { line, source })?;
        if n == 0 {
            return Ok(line - 1);
        }
        let text = buf.trim();
        if text.is_empty() {
            continue;
        }
        f(line, text)?;
    }
}
