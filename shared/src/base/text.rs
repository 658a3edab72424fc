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
