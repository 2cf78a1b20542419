//! `hum-bare`: the bare beat server, the ceiling hum-relay is measured against.
//!
//! Same TLS (tokio-rustls, ring, TLS 1.3, ALPN `hum/1`), same hello, same cell size and
//! beat (one task that owns time, one task per connection); but no logic at all: each
//! tick it sends every client one cover cell and reads one cell back, unparsed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hum_shared::{CertFingerprint, HelloV1, RelayAddr, cover_cell};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_rustls::TlsAcceptor;

/// The bare beat server: cover cells on a beat over TLS, nothing else.
#[derive(Debug, Parser)]
struct Cli {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Tick length in milliseconds.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// Cell size in bytes.
    #[arg(long, default_value_t = hum_shared::DEFAULT_CELL_SIZE)]
    cell_size: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let tick = Duration::from_millis(cli.tick_ms.max(1));
    let made = rcgen::generate_simple_self_signed(vec!["hum-bare".to_owned()])?;
    let fingerprint = CertFingerprint::of_certificate(made.cert.der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(
            vec![made.cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der())),
        )?;
    config.alpn_protocols = vec![b"hum/1".to_vec()];
    config.send_tls13_tickets = 0;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(cli.listen).await?;
    let local = listener.local_addr()?;
    println!(
        "{}",
        RelayAddr {
            host: local.ip().to_string(),
            port: local.port(),
            fingerprint,
        }
    );
    let cover: Arc<[u8]> = cover_cell(cli.cell_size).context("cell size")?.into();
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(async move {
        let start = Instant::now();
        let mut interval = tokio::time::interval_at(start + tick, tick);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let nanos = tick.as_nanos().max(1);
        loop {
            interval.tick().await;
            tx.send_replace(u64::try_from(start.elapsed().as_nanos() / nanos).unwrap_or(0));
        }
    });
    let hello_for = move |t| HelloV1 {
        cell_size: cli.cell_size,
        tick_micros: u32::try_from(tick.as_micros()).unwrap_or(u32::MAX),
        ttl_secs: 0,
        tick: t,
    };
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let ticks = rx.clone();
        let cover = Arc::clone(&cover);
        tokio::spawn(async move {
            let _ = serve(tcp, acceptor, ticks, cover, hello_for).await;
        });
    }
}

/// One client: a cover cell per tick, one cell read back per tick, nothing parsed.
async fn serve(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    mut ticks: watch::Receiver<u64>,
    cover: Arc<[u8]>,
    hello_for: impl Fn(u64) -> HelloV1,
) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let mut tls = acceptor.accept(tcp).await?;
    let mut sent_tick = *ticks.borrow_and_update();
    tls.write_all(&hello_for(sent_tick).encode()).await?;
    tls.flush().await?;
    let mut inbuf = vec![0u8; cover.len()];
    let mut filled = 0;
    loop {
        tokio::select! {
            biased;
            changed = ticks.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                let t = *ticks.borrow_and_update();
                for _ in sent_tick..t {
                    tls.write_all(&cover).await?;
                }
                tls.flush().await?;
                sent_tick = t;
            }
            read = tls.read(&mut inbuf[filled..]) => {
                let n = read?;
                if n == 0 {
                    return Ok(());
                }
                filled = (filled + n) % inbuf.len();
            }
        }
    }
}
