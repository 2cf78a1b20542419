//! Test support: throwaway folders.

use std::path::PathBuf;

/// A fresh folder under the system's temp dir, removed when dropped.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    /// A new, empty folder named after `tag`.
    pub(crate) fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("hum-unit-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::create_dir_all(&p);
        Self(p)
    }

    /// Whether any file whose name starts with `prefix` holds `needle`.
    pub(crate) fn files_hold(&self, prefix: &str, needle: &[u8]) -> bool {
        let Ok(dir) = std::fs::read_dir(&self.0) else {
            return false;
        };
        dir.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
