//! The `curious` build's log: what each role sees, as JSON lines (docs/PROTOCOL.md,
//! hum/2 §H8). It is the proof tool of hum/2's claims about what each relay learns, and
//! exists only in builds with `--features curious`; without the feature every call here
//! is empty and `--curious-log` does not exist.

/// The curious log, or nothing.
#[derive(Debug, Default)]
pub(crate) struct Curious {
    #[cfg(feature = "curious")]
    out: Option<std::sync::Mutex<std::io::LineWriter<std::fs::File>>>,
}

impl Curious {
    /// Opens the log the configuration names (a fresh file), or none.
    #[cfg_attr(not(feature = "curious"), allow(clippy::unnecessary_wraps))]
    pub(crate) fn open(config: &crate::Config) -> Result<Self, crate::RelayError> {
        #[cfg(feature = "curious")]
        if let Some(path) = &config.curious_log {
            let file = std::fs::File::create(path).map_err(|source| crate::RelayError::State {
                path: path.clone(),
                source,
            })?;
            return Ok(Self {
                out: Some(std::sync::Mutex::new(std::io::LineWriter::new(file))),
            });
        }
        let _ = config;
        Ok(Self::default())
    }

    /// Whether lines are written (so callers skip building them otherwise).
    pub(crate) fn on(&self) -> bool {
        #[cfg(feature = "curious")]
        return self.out.is_some();
        #[cfg(not(feature = "curious"))]
        false
    }

    /// Writes the line `make` builds (one JSON object), if the log is on.
    pub(crate) fn line(&self, make: impl FnOnce() -> String) {
        #[cfg(feature = "curious")]
        if let Some(out) = &self.out {
            use std::io::Write;
            let line = make();
            if let Ok(mut w) = out.lock() {
                let _ = writeln!(w, "{line}");
            }
        }
        #[cfg(not(feature = "curious"))]
        let _ = make;
    }
}
