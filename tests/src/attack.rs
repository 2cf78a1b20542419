//! The attack program's library: it reads one role's curious log (docs/PROTOCOL.md hum/2
//! §H8), the load generator's ground truth and, optionally, a network observer's record
//! file, runs every attack the inputs allow, and scores each against a shuffled-label
//! control. docs/ATTACKS.md says what each attack does, what it may use and how to read the
//! table; `hum-attack` is the command.
//!
//! ```
//! use hum_tests::attack::{CuriousLog, Options, RoleFilter, Truth, World, analyse};
//!
//! let world = World::generate(&World::leaky());
//! let log = CuriousLog::read(world.log("single").unwrap_or_default(), RoleFilter::All)?;
//! let truth = Truth::read(world.truth.as_slice())?;
//! let mut options = Options::default();
//! options.permutations = 20;
//! let report = analyse(Some(&log), &truth, None, &options);
//! // A single relay (hum/1's view) names every sender.
//! assert!(report.row("sender", "single").is_some_and(|r| r.score > 0.99));
//! # Ok::<(), hum_tests::attack::AttackError>(())
//! ```

mod activity;
mod bucket_pairs;
mod classifier;
mod control;
mod curious_log;
mod edges;
mod equivocation;
mod error;
mod field;
mod linking;
mod real_dummy;
mod report;
mod rng;
mod sender;
mod speaker;
mod stats;
mod synthetic;
mod truth;
mod view;
mod wire_log;

pub use control::Control;
pub use curious_log::{CuriousLog, RoleFilter};
pub use error::AttackError;
pub use report::{AUC_TARGET, CurvePoint, Report, Row, Skipped, Verdict};
pub use synthetic::{World, WorldSpec};
pub use truth::Truth;
pub use view::Options;
pub use wire_log::WireLog;

use view::View;

/// Runs every attack that `log`, `truth` and `wire` allow.
///
/// The log's records decide the roles: a log whose mailbox slot records name connections
/// is a single relay's (both roles at once: hum/1's view, the positive control); otherwise
/// its entry records are scored as the entry role and its mailbox records as the mailbox
/// role. A wire log is scored as the network observer.
pub fn analyse(
    log: Option<&CuriousLog>,
    truth: &Truth,
    wire: Option<&WireLog>,
    options: &Options,
) -> Report {
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut views = Vec::new();
    let mut inputs = vec![
        ("truth users".to_owned(), truth.user_count()),
        ("truth sends".to_owned(), truth.send_count()),
    ];
    let mut push = |r: Result<Row, Skipped>| match r {
        Ok(r) => rows.push(r),
        Err(s) => skipped.push(s),
    };
    if let Some(log) = log {
        inputs.push(("log lines".to_owned(), log.lines()));
        inputs.push(("log records skipped".to_owned(), log.skipped()));
        let v = View::new(log, truth, options);
        let not = |attack: &str, role: &str, reason: &str| {
            Err(Skipped {
                attack: attack.into(),
                role: role.into(),
                reason: reason.into(),
            })
        };
        if log.knows_connections() {
            let role = "single";
            views.push(role.to_owned());
            push(sender::sender(&v, role));
            push(edges::edges(&v, role));
            push(bucket_pairs::bucket_pairs(&v, role));
            linking::linking(&v, role).into_iter().for_each(&mut push);
            speaker::speakers(&v, role).into_iter().for_each(&mut push);
            push(real_dummy::entry(&v, role));
            equivocation::equivocation(&v, role)
                .into_iter()
                .for_each(&mut push);
        } else {
            if log.has_entry() {
                let role = "entry";
                views.push(role.to_owned());
                push(edges::edges(&v, role));
                push(real_dummy::entry(&v, role));
                let none = "the entry role sees no deposit, copy or bucket stream";
                for a in ["sender", "bucket-pairs", "speaker"] {
                    push(not(a, role, none));
                }
                push(not(
                    "link",
                    role,
                    "allowed: the entry role is told each connection's bucket in clear",
                ));
            }
            if log.has_mailbox() {
                let role = "mailbox";
                views.push(role.to_owned());
                push(sender::sender(&v, role));
                push(not(
                    "edges",
                    role,
                    "a mailbox relay names no user; its view of pairs is bucket-pairs",
                ));
                push(bucket_pairs::bucket_pairs(&v, role));
                linking::linking(&v, role).into_iter().for_each(&mut push);
                speaker::speakers(&v, role).into_iter().for_each(&mut push);
                push(not(
                    "real-dummy",
                    role,
                    "allowed: the home relay opens its entry relays' slots",
                ));
                equivocation::equivocation(&v, role)
                    .into_iter()
                    .for_each(&mut push);
            }
        }
    }
    if let Some(w) = wire {
        views.push("observer".to_owned());
        inputs.push(("observer records".to_owned(), w.len()));
        push(real_dummy::observer(w, truth, options));
    }
    Report {
        views,
        level: options.level,
        permutations: options.permutations,
        rows,
        skipped,
        inputs,
    }
}
