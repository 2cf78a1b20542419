//! `hum-load`: hum's load generator.
//!
//! `hum-load run` is hum/2's: it starts the relays of a layout as child processes (the
//! real `hum-relay` binary, a curious build writing each relay's log), runs a known world
//! of users over them with the real slot format and crypto (contacts, groups, chat in
//! bursts with replies, receipts, loops, multi-part texts, session churn across epoch
//! changes, catch-up after absences), writes the ground truth, and prints its figures
//! beside the relays' CPU and memory and the bare beat server's. docs/RELAY.md, "Load:
//! the proof's run", says what is scaled and how to read it.
//!
//! `hum-load away` times a day's catch-up: one user away for 24 short epochs, messages
//! waiting in several of them, from its reconnect to the last message.
//!
//! `hum-load hum1` is the hum/1 path's figures against the bare server; it goes when that
//! path goes.

mod away;
mod hum1;
mod hum2;

use clap::{Parser, Subcommand};

/// hum's load generator.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// hum/2: the proof's load over real relays, with ground truth and figures.
    Run(hum2::Cli),
    /// hum/2: a day's catch-up, measured (one user away for many short epochs).
    Away(away::Cli),
    /// hum/1: relay against the bare beat server at a fixed client count.
    Hum1(hum1::Cli),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(cli) => hum2::main(cli).await,
        Command::Hum1(cli) => hum1::main(cli).await,
        Command::Away(cli) => away::main(cli).await,
    }
}
