//! Words every floor writes alike: the fixed names of enum values (`promote-replica`,
//! `awaiting-approval`) and durations as people read them (`1h 05m`).

use thiserror::Error;

/// A name that is none of an enum's fixed names.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{0}` is not one of {1}")]
pub struct UnknownName(pub String, pub &'static str);

/// `as_str`, `Display` and `FromStr` for an enum of fixed names.
macro_rules! kebab_names {
    ($t:ty, $list:literal, $($v:ident => $s:literal),+ $(,)?) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $t {
            type Err = $crate::text::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($s => Ok(Self::$v),)+ _ => Err($crate::text::UnknownName(s.to_owned(), $list)) }
            }
        }
    };
}

pub(crate) use kebab_names;

/// The first `bytes` bytes of `text`'s SHA-256, in hex: a short, stable name for what a key must
/// tell apart (an incident's seed, a report's words, a task token) without carrying it.
pub fn short_digest(text: &str, bytes: usize) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().take(bytes).map(|b| format!("{b:02x}")).collect()
}

/// A duration as people read it: `45s`, `5m`, `2h`, `1h 05m`.
pub fn human(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m:02}m"),
    }
}

/// `human` of a std duration (saturating).
pub fn human_std(d: std::time::Duration) -> String {
    human(chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX))
}

/// CloudWatch Logs takes no larger event: "Each log event can be no larger than 256 KB"
/// (PutLogEvents, CloudWatch Logs API reference); Lambda hands each line a function writes to it
/// as one event.
pub const LOG_EVENT_MAX: usize = 256 * 1024;

/// What one line Lifeboat logs may carry of its own: a quarter of an event, leaving the rest to
/// the JSON it is quoted in (escaping can double it) and the runtime's span fields.
pub const LOG_LINE_BUDGET: usize = LOG_EVENT_MAX / 4;

/// `text` whole when it has at most `max` bytes; else cut on a char boundary and ended by `note`
/// (which says it was cut and where the rest is), `max` bytes at most in all.
pub fn fit(text: &str, max: usize, note: &str) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    if note.len() >= max {
        return text_before(note, max).to_owned();
    }
    let mut out = text_before(text, max - note.len()).to_owned();
    out.push_str(note);
    out
}

/// The longest start of `text` of at most `max` bytes that ends on a char boundary.
fn text_before(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `items`, in order and none left out, joined by `, ` into lines of at most `max` bytes each (an
/// item longer than that is `fit` on a line of its own): how a list that grows with the fleet goes
/// into a log whose events are bounded.
pub fn lines_of<S: AsRef<str>>(items: &[S], max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for item in items {
        let item = fit(item.as_ref(), max, " [cut]");
        if !line.is_empty() && line.len() + 2 + item.len() > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(&item);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `, and 12 more` after the first `shown` of `total` listed; nothing when all were.
pub fn and_more(shown: usize, total: usize) -> String {
    if total > shown {
        format!(", and {} more", total - shown)
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_on_a_char_boundary_and_says_so() {
        assert_eq!(fit("short", 10, " [cut]"), "short");
        // "é" is two bytes: a cut at an odd byte must not split it.
        let cut = fit(&"é".repeat(100), 51, " [cut]");
        assert!(cut.len() <= 51 && cut.ends_with(" [cut]"), "{cut}");
        assert_eq!(cut.trim_end_matches(" [cut]").chars().count(), 22);
        assert_eq!(fit("abcdef", 3, " [cut: the rest is in the log]"), " [c", "never over max");
    }

    #[test]
    fn ten_thousand_items_make_bounded_lines_holding_every_item_in_order() {
        let items: Vec<String> =
            (0..10_000).map(|n| format!("us-west-2:lifeboat-fleet-{n:05}-snap-0 (outside policy)")).collect();
        let lines = lines_of(&items, LOG_LINE_BUDGET);
        assert!(lines.len() > 1, "{} lines", lines.len());
        assert!(lines.iter().all(|l| l.len() <= LOG_LINE_BUDGET), "a line over the budget");
        let back: Vec<&str> = lines.iter().flat_map(|l| l.split(", ")).collect();
        assert_eq!(back, items.iter().map(String::as_str).collect::<Vec<_>>());
        // One item alone over the budget is cut, not dropped, and doesn't break the line's bound.
        let huge = ["x".repeat(LOG_LINE_BUDGET * 2), "next".into()];
        let lines = lines_of(&huge, LOG_LINE_BUDGET);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].len() <= LOG_LINE_BUDGET && lines[0].ends_with("[cut]") && lines[1] == "next");
        assert!(lines_of::<String>(&[], 10).is_empty());
    }

    #[test]
    fn and_more_counts_what_was_left_out() {
        assert_eq!(and_more(10, 10), "");
        assert_eq!(and_more(10, 1_000), ", and 990 more");
    }
}
