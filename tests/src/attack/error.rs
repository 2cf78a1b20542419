//! What can go wrong reading the attack program's inputs.

/// An input the attack program cannot use. Line numbers count from 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttackError {
    /// A line is not a JSON object (or not one of the expected shape).
    #[error("line {line}: {cause}")]
    Json {
        /// The line.
        line: usize,
        /// What the JSON reader said.
        cause: String,
    },
    /// A record lacks a field its event needs.
    #[error("line {line}: a `{ev}` record needs `{field}`")]
    Missing {
        /// The line.
        line: usize,
        /// The record's event (or `?` when the event itself is missing).
        ev: String,
        /// The missing field.
        field: &'static str,
    },
    /// A field holds a value outside its format.
    #[error("line {line}: `{field}` {why}")]
    Invalid {
        /// The line.
        line: usize,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// Reading the input failed.
    #[error("reading line {line}: {source}")]
    Io {
        /// The line being read.
        line: usize,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl AttackError {
    /// A JSON reader's error for `line`, without its own (always 1) line number.
    pub(crate) fn json(line: usize, e: &serde_json::Error) -> Self {
        let text = e.to_string();
        let cause = match text.rfind(" at line ") {
            Some(i) => format!("{} (column {})", &text[..i], e.column()),
            None => text,
        };
        Self::Json { line, cause }
    }
}
