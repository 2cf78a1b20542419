//! The `hum` binary: parse the command line, set up logging to a file, open the profile
//! and run the TUI or the line mode.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use hum::engine::{self, EngineError, ProfileConfig, ProfilePaths};
use zeroize::Zeroizing;

/// hum: end-to-end encrypted terminal chat whose traffic looks the same whether you talk or
/// not.
#[derive(Debug, Parser)]
#[command(name = "hum", version)]
struct Cli {
    /// The profile to open (one identity per profile).
    #[arg(long, env = "HUM_PROFILE", default_value = "default")]
    profile: String,
    /// A single relay, entry and home at once, hum://HOST:PORT#FINGERPRINT (remembered in
    /// the profile's config). It can see who you talk to; a mesh (--entry, --home) cannot.
    #[arg(long, env = "HUM_RELAY", conflicts_with_all = ["entry", "home"])]
    relay: Option<String>,
    /// The relay to connect to, in a mesh (with --home; remembered in the config).
    #[arg(long, env = "HUM_ENTRY", requires = "home")]
    entry: Option<String>,
    /// The relay that holds what others send you, in a mesh (with --entry; remembered in
    /// the config).
    #[arg(long, env = "HUM_HOME_RELAY", requires = "entry")]
    home: Option<String>,
    /// Line mode on stdin/stdout, for scripts, screen readers and tests (docs/PLAIN.md).
    #[arg(long)]
    plain: bool,
    /// A throwaway profile, an embedded relay and a demo contact that answers.
    #[arg(long)]
    demo: bool,
    /// Start a relay on loopback (127.0.0.1:7667, or a free port when that is taken; its key
    /// in the profile folder) and use it.
    #[arg(long)]
    embedded_relay: bool,
    /// Your display name, when a new profile is made without the TUI.
    #[arg(long)]
    name: Option<String>,
    /// Read the passphrase from the first line of this file (HUM_PASSPHRASE also works).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Log level for the log file (error, warn, info, debug, trace).
    #[arg(long, env = "HUM_LOG", default_value = "info")]
    log: tracing::Level,
}

/// The relays of the command line, remembered in the profile's config, or else the
/// config's.
fn configured_relays(
    cli: &Cli,
    paths: &ProfilePaths,
    config: &mut ProfileConfig,
) -> Result<Option<engine::Relays>> {
    if cli.relay.is_none() && cli.entry.is_none() && cli.home.is_none() {
        return Ok(engine::Relays::from_config(
            config.relay.as_deref(),
            config.entry.as_deref(),
            config.home.as_deref(),
        )?);
    }
    let relays = engine::Relays::from_config(
        cli.relay.as_deref(),
        cli.entry.as_deref(),
        cli.home.as_deref(),
    )?;
    let (relay, entry, home) = (cli.relay.clone(), cli.entry.clone(), cli.home.clone());
    if (&config.relay, &config.entry, &config.home) != (&relay, &entry, &home) {
        config.relay = relay;
        config.entry = entry;
        config.home = home;
        config.save(&paths.config)?;
    }
    Ok(relays)
}

fn passphrase(cli: &Cli) -> Result<Option<Zeroizing<String>>> {
    if let Some(f) = &cli.passphrase_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        );
        let line = text.lines().next().unwrap_or("").to_owned();
        return Ok(Some(Zeroizing::new(line)));
    }
    Ok(std::env::var("HUM_PASSPHRASE").ok().map(Zeroizing::new))
}

fn log_to(dir: &std::path::Path, level: tracing::Level) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("hum.log"))
    else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

/// The embedded relay and what to tell the user about it.
struct Embedded {
    relay: hum_relay::RelayHandle,
    /// Where it listens, in words.
    notice: String,
}

/// Starts the embedded relay on 127.0.0.1:7667, or on any free loopback port when that
/// one is taken (another relay, another hum). Its key stays in the profile folder, so its
/// fingerprint is the same at every start.
async fn embedded_relay(paths: &ProfilePaths) -> Result<Embedded> {
    let config = |port: u16| {
        let mut config = hum_relay::Config::ephemeral(hum_relay::DEFAULT_TICK);
        config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        config.state_dir = Some(paths.dir.join("relay"));
        config
    };
    let preferred = hum_relay::DEFAULT_PORT;
    let (relay, taken) = match hum_relay::Relay::bind(config(preferred)).await {
        Ok(r) => (r, false),
        Err(hum_relay::RelayError::Io(e)) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let r = hum_relay::Relay::bind(config(0))
                .await
                .context("the embedded relay could not listen on any loopback port")?;
            (r, true)
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "the embedded relay could not listen on 127.0.0.1:{preferred}"
            )));
        }
    };
    let relay = relay.spawn();
    let at = relay.address().host_port();
    let notice = if taken {
        format!(
            "embedded relay on {at} (127.0.0.1:{preferred} is taken by another program; invite codes made now name port {})",
            relay.address().port
        )
    } else {
        format!("embedded relay on {at}")
    };
    Ok(Embedded { relay, notice })
}

fn main() -> Result<()> {
    // The local UTC offset can only be read soundly while the process has one thread, so
    // read it before the runtime starts.
    let tz = time::UtcOffset::current_local_offset()
        .map(|o| i64::from(o.whole_seconds()))
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(run(tz));
    // Everything has stopped but, in the line mode, a read of stdin that cannot be
    // cancelled: do not wait for a line that may never come.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

async fn run(tz: i64) -> Result<()> {
    let cli = Cli::parse();
    TZ.store(tz, std::sync::atomic::Ordering::Relaxed);
    if cli.demo {
        return demo(&cli).await;
    }
    let paths = ProfilePaths::resolve(&cli.profile)?;
    log_to(&paths.dir, cli.log);
    let mut config = ProfileConfig::load(&paths.config)?;
    let pass = passphrase(&cli)?;
    if cli.plain {
        let Some(pass) = pass else {
            bail!(
                "the line mode needs a passphrase: set HUM_PASSPHRASE or pass --passphrase-file FILE"
            );
        };
        let profile = if paths.exists() {
            engine::unlock(&paths, pass.as_bytes())?
        } else {
            let name = cli.name.clone().unwrap_or_else(|| cli.profile.clone());
            engine::create(&paths, &name, pass.as_bytes())?
        };
        let mut embedded = None;
        let relays = if cli.embedded_relay {
            let e = embedded_relay(&paths).await?;
            let relays = engine::Relays::single(e.relay.address().clone());
            embedded = Some(e);
            relays
        } else {
            configured_relays(&cli, &paths, &mut config)?.ok_or(EngineError::NoRelay)?
        };
        let handle = engine::start(profile, relays)?;
        let options = hum::plain::PlainOptions {
            notices: embedded.iter().map(|e| e.notice.clone()).collect(),
            ..Default::default()
        };
        let result = plain(handle, options).await;
        if let Some(e) = embedded {
            e.relay.shutdown().await;
        }
        return result;
    }
    tui(cli, paths, config, pass).await
}

/// Runs the line mode on stdin and stdout until it ends; SIGINT and SIGTERM quit it as
/// `/quit` does.
async fn plain(handle: engine::EngineHandle, options: hum::plain::PlainOptions) -> Result<()> {
    let (commands, events, join) = handle.split();
    let stop = stop_signal()?;
    let quit = commands.clone();
    let signals = tokio::spawn(async move {
        stop.await;
        let _ = quit.send(hum::api::Command::Quit).await;
    });
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let result = hum::plain::run_with(stdin, tokio::io::stdout(), commands, events, options).await;
    signals.abort();
    join.join().await?;
    match result {
        // The reader went away (`hum --plain | head`): the engine has quit as at the end
        // of input, and there is nobody left to tell anything.
        Err(hum::plain::PlainError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Resolves at the first SIGINT or SIGTERM (Ctrl-C elsewhere). The handlers are in place
/// when this returns, so a signal sent right after is not missed.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

async fn demo(cli: &Cli) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("hum-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    log_to(&dir, cli.log);
    let name = cli.name.clone().unwrap_or_else(|| "you".to_owned());
    let result = run_demo(cli, &dir, &name).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_demo(cli: &Cli, dir: &std::path::Path, name: &str) -> Result<()> {
    let hum::demo::Demo { relay, engine, bot } = hum::demo::start(dir, name).await?;
    if cli.plain {
        // The demo contact's room is current: a line typed at once goes to it.
        let options = hum::plain::PlainOptions {
            current_room: Some(hum::demo::BOT.to_owned()),
            ..Default::default()
        };
        plain(engine, options).await?;
    } else {
        let (commands, events, join) = engine.split();
        run_tui_with(commands, events, ui_options(None, None, true)).await?;
        join.join().await?;
    }
    bot.abort();
    relay.shutdown().await;
    Ok(())
}

/// The local UTC offset read at start.
static TZ: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn ui_options(
    paths: Option<&ProfilePaths>,
    config: Option<&ProfileConfig>,
    demo: bool,
) -> hum::ui::UiOptions {
    let mut o = hum::ui::UiOptions::standard();
    o.tz_offset_secs = TZ.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(p) = paths {
        o.layout_file = Some(p.dir.join("layout.toml"));
        o.config_file = Some(p.config.clone());
    }
    if let Some(c) = config {
        o.theme = c.theme.clone().or(o.theme);
        o.bell_on_mention = c.bell.unwrap_or(o.bell_on_mention);
        o.mouse = c.mouse.unwrap_or(o.mouse);
    }
    if demo {
        o.layout_file = None;
        o.demo_hint = Some(
            "Demo: hum-guide answers you. Type and press Enter; /vsplit opens a second pane; ? shows every key.".into(),
        );
    }
    o
}

async fn run_tui_with(
    commands: tokio::sync::mpsc::Sender<hum::api::Command>,
    events: tokio::sync::mpsc::Receiver<hum::api::Event>,
    opts: hum::ui::UiOptions,
) -> Result<()> {
    hum::ui::run(events, commands, opts).await?;
    Ok(())
}

async fn tui(
    cli: Cli,
    paths: ProfilePaths,
    mut config: ProfileConfig,
    pass: Option<Zeroizing<String>>,
) -> Result<()> {
    let mut opts = ui_options(Some(&paths), Some(&config), false);
    let profile = if paths.exists() {
        let mut error = None;
        let mut pass = pass;
        loop {
            let p = match pass.take() {
                Some(p) => p,
                None => match hum::ui::unlock(opts.clone(), error.take()).await? {
                    Some(p) => p,
                    None => return Ok(()),
                },
            };
            match engine::unlock(&paths, p.as_bytes()) {
                Ok(u) => break u,
                Err(EngineError::WrongPassphrase) => {
                    error = Some("wrong passphrase, try again".to_owned())
                }
                Err(e) => return Err(e.into()),
            }
        }
    } else {
        let Some((name, p)) = hum::ui::onboarding(opts.clone()).await? else {
            return Ok(());
        };
        engine::create(&paths, &name, p.as_bytes())?
    };
    let mut embedded = None;
    let configured = if cli.embedded_relay {
        None
    } else {
        configured_relays(&cli, &paths, &mut config)?
    };
    let relays = match configured {
        Some(relays) => relays,
        None => {
            // No relay yet: one on loopback inside this process, so one machine works at once.
            let e = embedded_relay(&paths).await?;
            let relays = engine::Relays::single(e.relay.address().clone());
            opts.demo_hint = Some(format!(
                "No relay configured: {}. Friends elsewhere need a relay they can reach: see `just relay`.",
                e.notice
            ));
            embedded = Some(e);
            relays
        }
    };
    let (commands, events, join) = engine::start(profile, relays)?.split();
    let result = run_tui_with(commands, events, opts).await;
    let _ = join.join().await;
    if let Some(e) = embedded {
        e.relay.shutdown().await;
    }
    result
}
