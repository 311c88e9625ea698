//! Parsing signals as runc does: names with or without `SIG`, any case,
//! and numbers.

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// Parses `TERM`, `SIGTERM`, `sigterm`, `15`, and real-time signals
/// (`RTMIN+3`, `SIGRTMAX-1`, or their numbers). Returns the number.
/// `0`, the null signal, is taken as kill(1) and runc take it: it sends
/// nothing and only asks whether the container still runs.
pub fn parse(s: &str) -> Result<i32> {
    let bad = || Error::UnknownSignal(s.to_string());
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = t.parse::<i32>() {
        return if (0..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt_offset(libc::SIGRTMIN(), rest, 1).ok_or_else(bad);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt_offset(libc::SIGRTMAX(), rest, -1).ok_or_else(bad);
    }
    let full = format!("SIG{name}");
    full.parse::<Signal>().map(|s| s as i32).map_err(|_| bad())
}

/// The name of a signal number (`SIGKILL`, `SIGRTMIN+3`), or the number.
pub fn name(n: i32) -> String {
    if let Ok(s) = Signal::try_from(n) {
        return s.as_str().to_string();
    }
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
        return format!("SIGRTMIN+{}", n - libc::SIGRTMIN());
    }
    n.to_string()
}

fn rt_offset(base: i32, rest: &str, dir: i32) -> Option<i32> {
    let n = if rest.is_empty() {
        base
    } else {
        let off: i32 = rest
            .strip_prefix(if dir > 0 { '+' } else { '-' })?
            .parse()
            .ok()?;
        base + dir * off
    };
    (libc::SIGRTMIN()..=libc::SIGRTMAX())
        .contains(&n)
        .then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_case() {
        assert_eq!(parse("TERM").unwrap(), 15);
        assert_eq!(parse("SIGTERM").unwrap(), 15);
        assert_eq!(parse("kill").unwrap(), 9);
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("SIGUSR1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse("RTMIN").unwrap(), libc::SIGRTMIN());
        assert_eq!(parse("SIGRTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse("RTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
        assert_eq!(parse("0").unwrap(), 0);
    }

    #[test]
    fn rejects_nonsense() {
        for s in ["", "-1", "65", "SIGFOO", "RTMIN+99", "TERM9"] {
            let e = parse(s).unwrap_err().to_string();
            assert!(e.contains("unknown signal"), "{s}: {e}");
        }
    }
}
