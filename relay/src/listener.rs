//! The accept loop: a connection cap (a semaphore, as in mini-redis), one task per
//! client.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::shutdown::Shutdown;
use crate::state::Shared;
use crate::v1::connection::Handler;

/// Accepts clients until shutdown. Past `max_clients`, new clients wait in the
/// listen backlog until a slot frees.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    ticks: watch::Receiver<u64>,
    mut shutdown: Shutdown,
    done: mpsc::Sender<()>,
) {
    let limit = Arc::new(Semaphore::new(shared.config.max_clients));
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            () = shutdown.recv() => return,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.recv() => return,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(err) => {
                // Out of file descriptors and the like: wait a little, keep serving.
                tracing::warn!(cause = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let handler = Handler {
            acceptor: acceptor.clone(),
            shared: Arc::clone(&shared),
            ticks: ticks.clone(),
            shutdown: shutdown.clone(),
            done: done.clone(),
            permit,
        };
        tokio::spawn(handler.serve(tcp));
    }
}
