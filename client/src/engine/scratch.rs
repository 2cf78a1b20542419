//! Test support: throwaway folders.

use std::path::{Path, PathBuf};

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

    /// Whether any file under the folder whose name starts with `prefix` holds `needle`.
    pub(crate) fn files_hold(&self, prefix: &str, needle: &[u8]) -> bool {
        fn walk(dir: &Path, prefix: &str, needle: &[u8]) -> bool {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return false;
            };
            entries.filter_map(Result::ok).any(|e| {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, prefix, needle)
                } else {
                    e.file_name().to_string_lossy().starts_with(prefix)
                        && std::fs::read(&path)
                            .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
                }
            })
        }
        walk(&self.0, prefix, needle)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
