//! Tab completion from the command table: command names, subcommands, and the names a
//! command's arguments take.

use crate::command::parse::command_name;
use crate::command::spec::{self, Completes, Face};

/// What Tab can complete at the end of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Byte offset in the line where the word being completed starts.
    pub start: usize,
    /// The candidates, sorted.
    pub candidates: Vec<String>,
}

/// The names a completion can offer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Names<'a> {
    /// Contact, room and group names.
    pub names: &'a [String],
    /// Theme names.
    pub themes: &'a [String],
    /// People for `@name`: contacts and the room's members.
    pub people: &'a [String],
}

/// `list` filtered to what starts with `word` (any case), sorted, each once.
fn starting(list: impl IntoIterator<Item = String>, word: &str) -> Vec<String> {
    let lower = word.to_lowercase();
    let mut v: Vec<String> = list
        .into_iter()
        .filter(|c| c.to_lowercase().starts_with(&lower))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Candidates for the last word of `line` in `face`: command names after `/`,
/// subcommands, the names a command's arguments take (from the table), `@name` from the
/// people for a word starting with `@`, and names in plain text.
pub fn complete(line: &str, face: Face, from: Names<'_>) -> Completion {
    let start = line
        .rfind(char::is_whitespace)
        .map(|i| i + line[i..].chars().next().map_or(1, char::len_utf8))
        .unwrap_or(0);
    let word = &line[start..];
    let done = |candidates| Completion { start, candidates };
    if let Some(partial) = word.strip_prefix('@') {
        let people = starting(from.people.iter().cloned(), partial);
        return done(people.into_iter().map(|p| format!("@{p}")).collect());
    }
    let Some(body) = line.strip_prefix('/') else {
        if word.is_empty() {
            return done(Vec::new());
        }
        return done(starting(from.names.iter().cloned(), word));
    };
    if start == 0 {
        let all = spec::names_for(face).into_iter().map(|n| format!("/{n}"));
        return done(starting(all, word));
    }
    // The words before the one being completed.
    let before: Vec<&str> = body[..start.saturating_sub(1).min(body.len())]
        .split_whitespace()
        .collect();
    let Some(name) = before.first().and_then(|w| command_name(w, face).ok()) else {
        return done(Vec::new());
    };
    let subs: Vec<&'static str> = spec::specs_named(name, face)
        .filter_map(|c| c.sub)
        .collect();
    let (spec, arg) = if subs.is_empty() {
        (spec::find(name, None, face), before.len() - 1)
    } else if before.len() == 1 {
        return done(starting(subs.iter().map(|s| s.to_string()), word));
    } else {
        let sub = crate::command::resolve::pick(
            before[1],
            subs.iter().map(|s| (*s, *s)),
            crate::command::Noun::Subcommand,
        )
        .ok();
        (
            sub.and_then(|s| spec::find(name, Some(s), face)),
            before.len() - 2,
        )
    };
    let list: Vec<String> = match spec.map(|s| s.completes) {
        Some(Completes::Names(n)) if arg < n => from.names.to_vec(),
        Some(Completes::Themes) if arg == 0 => from.themes.to_vec(),
        _ => Vec::new(),
    };
    done(starting(list, word))
}

/// The longest prefix shared by every candidate (by characters, case as in the first).
pub fn common_prefix(c: &[String]) -> String {
    let Some(first) = c.first() else {
        return String::new();
    };
    let mut n = first.len();
    for s in &c[1..] {
        n = first
            .char_indices()
            .zip(s.chars())
            .take_while(|((_, a), b)| a.to_lowercase().eq(b.to_lowercase()))
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(n);
    }
    first[..n].to_string()
}
