//! Test data files for this crate's unit tests: known-answer vectors in
//! `tests/vectors/*.txt` (blocks of `key = value` lines separated by blank lines, `#`
//! comments) and Project Wycheproof's JSON files in `tests/vectors/wycheproof/`.

use std::collections::HashMap;

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One vector: its fields by name.
pub(crate) struct Case(HashMap<String, String>);

/// The path of a file under `tests/vectors/`.
pub(crate) fn path(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file)
}

/// Every case of a `.txt` vector file, in order.
pub(crate) fn cases(file: &str) -> Result<Vec<Case>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path(file))?;
    let mut out = Vec::new();
    let mut current = HashMap::new();
    for line in text.lines().chain(std::iter::once("")) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !current.is_empty() {
                out.push(Case(std::mem::take(&mut current)));
            }
            continue;
        }
        let (k, v) = line.split_once('=').ok_or(format!("bad line {line:?}"))?;
        current.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    if out.is_empty() {
        return Err(format!("no cases in {file}").into());
    }
    Ok(out)
}

/// A Wycheproof file, parsed.
pub(crate) fn wycheproof(file: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path(&format!("wycheproof/{file}")))?;
    Ok(serde_json::from_str(&text)?)
}

impl Case {
    /// The case's name, for messages.
    pub(crate) fn name(&self) -> &str {
        self.0.get("name").map_or("?", String::as_str)
    }

    /// A field as text.
    pub(crate) fn text(&self, key: &str) -> Result<&str, String> {
        self.0
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("{}: missing {key}", self.name()))
    }

    /// A field as hex bytes.
    pub(crate) fn hex(&self, key: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        unhex(self.text(key)?)
    }

    /// A field as exactly `N` hex bytes.
    pub(crate) fn array<const N: usize>(
        &self,
        key: &str,
    ) -> Result<[u8; N], Box<dyn std::error::Error>> {
        Ok(<[u8; N]>::try_from(self.hex(key)?.as_slice())?)
    }
}

/// Decodes lowercase or uppercase hex.
pub(crate) fn unhex(s: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd hex {s:?}").into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(Into::into))
        .collect()
}

/// A JSON string field as hex bytes.
pub(crate) fn json_hex(
    v: &serde_json::Value,
    key: &str,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    unhex(v[key].as_str().ok_or(format!("missing {key}"))?)
}

/// The X25519 public keys Wycheproof flags as giving a zero shared secret (small order,
/// in every encoding it tests), without repeats.
pub(crate) fn low_order_points() -> Result<Vec<[u8; 32]>, Box<dyn std::error::Error>> {
    let doc = wycheproof("x25519_test.json")?;
    let mut out: Vec<[u8; 32]> = Vec::new();
    for group in doc["testGroups"].as_array().ok_or("no test groups")? {
        for test in group["tests"].as_array().ok_or("no tests")? {
            let zero = test["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("ZeroSharedSecret")));
            let public = <[u8; 32]>::try_from(json_hex(test, "public")?.as_slice())?;
            if zero && !out.contains(&public) {
                out.push(public);
            }
        }
    }
    if out.len() < 10 {
        return Err(format!("only {} small-order points", out.len()).into());
    }
    Ok(out)
}
