//! Graceful shutdown: one signal every task listens for (mini-redis `shutdown.rs`).

use tokio::sync::watch;

/// Listens for the relay's shutdown signal.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    pub(crate) fn new(rx: watch::Receiver<bool>) -> Self {
        Self { rx }
    }

    /// Waits until shutdown is signalled (or the signal's sender is gone).
    pub(crate) async fn recv(&mut self) {
        // An error means the sender is dropped: that is a shutdown too.
        let _ = self.rx.wait_for(|&down| down).await;
    }
}
