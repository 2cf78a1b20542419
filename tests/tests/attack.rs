//! The attack program through its command line: `hum-attack synth` writes a world,
//! `hum-attack score` reads it back and prints the table or JSON; a malformed line stops it
//! with the line's number.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use hum_tests::harness::TempDir;

fn hum_attack(args: &[&str]) -> Result<std::process::Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_hum-attack"))
        .args(args)
        .output()?)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

#[test]
fn scores_a_leaky_single_relay_log_as_leaking_everywhere() -> Result<()> {
    let dir = TempDir::new("attack-leaky")?;
    let out = hum_attack(&["synth", "--world", "leaky", "--out", path(dir.path())])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (log, truth, wire) = (
        dir.path().join("single.jsonl"),
        dir.path().join("truth.jsonl"),
        dir.path().join("observer.txt"),
    );
    let out = hum_attack(&[
        "score",
        "--log",
        path(&log),
        "--truth",
        path(&truth),
        "--observer",
        path(&wire),
        "--window",
        "6",
        "--permutations",
        "60",
        "--json",
    ])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rows = report["rows"].as_array().context("rows")?;
    ensure!(rows.len() == 13, "{rows:?}");
    for name in ["sender", "edges", "link-digests", "speaker", "real-dummy"] {
        let row = rows
            .iter()
            .find(|r| r["attack"] == name && r["role"] == "single")
            .with_context(|| format!("no {name} row"))?;
        ensure!(row["verdict"] == "leak", "{row}");
        ensure!(row["score"].as_f64().unwrap_or(0.0) > 0.9, "{row}");
        ensure!(row["control"]["hi"].as_f64().unwrap_or(1.0) < 0.7, "{row}");
    }
    // The table names every attack with its verdict.
    let out = hum_attack(&[
        "score",
        "--log",
        path(&log),
        "--truth",
        path(&truth),
        "--permutations",
        "20",
    ])?;
    let table = String::from_utf8_lossy(&out.stdout);
    ensure!(table.starts_with("attack "), "{table}");
    ensure!(
        table
            .lines()
            .any(|l| l.starts_with("sender ") && l.contains("LEAK")),
        "{table}"
    );
    Ok(())
}

#[test]
fn scores_a_private_world_inside_every_control() -> Result<()> {
    let dir = TempDir::new("attack-private")?;
    let out = hum_attack(&["synth", "--world", "private", "--out", path(dir.path())])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth = dir.path().join("truth.jsonl");
    for log in ["entry.jsonl", "mailbox.jsonl"] {
        let log = dir.path().join(log);
        let out = hum_attack(&[
            "score",
            "--log",
            path(&log),
            "--truth",
            path(&truth),
            "--permutations",
            "60",
            "--level",
            "0.99",
            "--json",
        ])?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let rows = report["rows"].as_array().context("rows")?;
        ensure!(!rows.is_empty());
        for row in rows {
            ensure!(row["verdict"] == "pass", "{row}");
        }
    }
    Ok(())
}

#[test]
fn a_malformed_line_stops_it_with_the_file_and_line() -> Result<()> {
    let dir = TempDir::new("attack-bad")?;
    let out = hum_attack(&["synth", "--world", "private", "--out", path(dir.path())])?;
    ensure!(out.status.success());
    let log = dir.path().join("mailbox.jsonl");
    let text = std::fs::read_to_string(&log)?;
    let mut lines: Vec<&str> = text.lines().take(20).collect();
    lines[6] = r#"{"role":"mailbox","ev":"deposit","tick":3,"ms":1}"#;
    std::fs::write(&log, lines.join("\n"))?;
    let truth = dir.path().join("truth.jsonl");
    let out = hum_attack(&["score", "--log", path(&log), "--truth", path(&truth)])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "accepted a malformed log");
    ensure!(
        err.contains("mailbox.jsonl") && err.contains("line 7: a `deposit` record needs `copies`"),
        "{err}"
    );
    // A missing file is named too; so is a bad option.
    let out = hum_attack(&[
        "score",
        "--log",
        "/nonexistent/log",
        "--truth",
        path(&truth),
    ])?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent/log")
    );
    let out = hum_attack(&["score", "--truth", path(&truth)])?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nothing to score")
    );
    Ok(())
}
