//! Grapheme-correct widths, word wrapping and clock formatting.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// The width of a string in terminal cells, grapheme by grapheme (wide characters count
/// two, a ZWJ emoji sequence counts as one glyph).
pub(super) fn width(s: &str) -> usize {
    s.graphemes(true).map(grapheme_width).sum()
}

fn grapheme_width(g: &str) -> usize {
    if g == "\t" {
        return 1;
    }
    // The same measure as ratatui's buffer, so wrapping and drawing agree.
    g.width()
}

/// Columns between tab stops when a message's tabs are shown.
pub(super) const TAB_STOP: usize = 8;

/// Text as it can be drawn the same way by every terminal: a tab becomes spaces up to the
/// next tab stop, other control characters become `�`, and a zero-width joiner is left
/// out, so that a family emoji (👩‍👩‍👧) shows as its people side by side. Terminals disagree
/// about how wide a joined sequence is (one glyph of two cells, or one glyph per person);
/// without the joiner every terminal and ratatui count the same cells. Newlines are kept.
pub(super) fn display(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c == ZWJ || (c.is_control() && c != '\n')) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut col = 0;
    for g in s.graphemes(true) {
        if g == "\n" || g == "\r\n" {
            out.push('\n');
            col = 0;
        } else if g == "\t" {
            let n = TAB_STOP - col % TAB_STOP;
            out.extend(std::iter::repeat_n(' ', n));
            col += n;
        } else if g.chars().any(char::is_control) {
            out.push('\u{fffd}');
            col += 1;
        } else if g.contains(ZWJ) {
            for part in g.split(ZWJ).filter(|p| !p.is_empty()) {
                out.push_str(part);
                col += width(part);
            }
        } else {
            out.push_str(g);
            col += grapheme_width(g);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// U+200D ZERO WIDTH JOINER.
const ZWJ: char = '\u{200d}';

/// Cut a string to at most `max` cells, adding `…` when it was cut.
pub(super) fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for g in s.graphemes(true) {
        let gw = grapheme_width(g);
        if w + gw + 1 > max {
            break;
        }
        out.push_str(g);
        w += gw;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// Pad with spaces on the right to `w` cells (or cut).
pub(super) fn pad_right(s: &str, w: usize) -> String {
    let s = truncate(s, w);
    let n = w.saturating_sub(width(&s));
    format!("{s}{}", " ".repeat(n))
}

/// Wrap text into lines of at most `w` cells: at spaces when it can, inside a word when a
/// word is longer than a line, never inside a grapheme. Newlines are kept.
pub(super) fn wrap(text: &str, w: usize) -> Vec<String> {
    let w = w.max(2);
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut lw = 0;
        for word in tokens(para) {
            let ww = width(word);
            if lw + ww <= w {
                line.push_str(word);
                lw += ww;
                continue;
            }
            if word.trim().is_empty() {
                // A space at the break: drop it.
                out.push(std::mem::take(&mut line));
                lw = 0;
                continue;
            }
            if ww <= w {
                out.push(std::mem::take(&mut line).trim_end().to_string());
                line.push_str(word);
                lw = ww;
                continue;
            }
            for g in word.graphemes(true) {
                let gw = grapheme_width(g);
                if lw + gw > w {
                    out.push(std::mem::take(&mut line));
                    lw = 0;
                }
                line.push_str(g);
                lw += gw;
            }
        }
        out.push(line);
    }
    out
}

/// Runs of whitespace and runs of everything else, in order.
fn tokens(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let ws = first.is_whitespace();
        let end = rest
            .char_indices()
            .find(|(_, c)| c.is_whitespace() != ws)
            .map_or(rest.len(), |(i, _)| i);
        let (tok, tail) = rest.split_at(end);
        rest = tail;
        Some(tok)
    })
}

/// Days since 1970-01-01 and seconds into that day, for a unix time in milliseconds
/// shifted by `offset_secs`.
pub(super) fn day_and_secs(ms: i64, offset_secs: i64) -> (i64, i64) {
    let s = ms.div_euclid(1000) + offset_secs;
    (s.div_euclid(86_400), s.rem_euclid(86_400))
}

/// `HH:MM` of a unix time in milliseconds.
pub(super) fn clock(ms: i64, offset_secs: i64) -> String {
    let (_, s) = day_and_secs(ms, offset_secs);
    format!("{:02}:{:02}", s / 3600, (s / 60) % 60)
}

/// `Tue 2026-11-24` for a day number since 1970-01-01.
pub(super) fn date(day: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const WEEK: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let wd = WEEK[day.rem_euclid(7) as usize];
    format!("{wd} {y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("日本語"), 6);
        assert_eq!(width("👍"), 2);
        assert_eq!(width("👩‍👩‍👧"), 2);
        assert_eq!(width("e\u{301}"), 1);
    }

    #[test]
    fn wraps_at_spaces_and_inside_long_words() {
        assert_eq!(wrap("hello big world", 9), vec!["hello big", "world"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\nb", 10), vec!["a", "b"]);
        for line in wrap("日本語のテキストです", 5) {
            assert!(width(&line) <= 5, "{line}");
        }
        let zwj = "👩‍👩‍👧👩‍👩‍👧👩‍👩‍👧";
        let lines = wrap(zwj, 4);
        assert_eq!(lines, vec!["👩‍👩‍👧👩‍👩‍👧", "👩‍👩‍👧"]);
    }

    #[test]
    fn display_keeps_tabs_and_splits_joined_emoji() {
        assert_eq!(display("a\tb"), "a       b");
        assert_eq!(display("abcd\te"), "abcd    e");
        assert_eq!(display("x\n\ty"), "x\n        y");
        assert_eq!(display("bell\u{7}"), "bell\u{fffd}");
        let family = display("👩‍👩‍👧!");
        assert!(!family.contains('\u{200d}'), "{family}");
        assert_eq!(width(&family), 7);
        assert!(matches!(display("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn truncates_with_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("日本語", 4), "日…");
        assert_eq!(pad_right("ab", 4), "ab  ");
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "Thu 1970-01-01");
        // 2026-11-24 is a Tuesday.
        assert_eq!(date(20_781), "Tue 2026-11-24");
        assert_eq!(clock(3_723_000, 0), "01:02");
    }
}
