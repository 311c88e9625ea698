//! `rt events`: the container's stats every interval (or once), and "oom"
//! events, as JSON lines until the container stops.

use anyhow::{anyhow, Result};
use rt::cgroup::stats::Event;
use rt::container;
use rt::state::Root;

/// `--interval` parsed, then the events printed.
pub fn events(root: &Root, id: &str, once: bool, interval: &str) -> Result<()> {
    let interval = parse_interval(interval).map_err(|e| anyhow!("--interval {e}"))?;
    watch(root, id, once, interval)
}

/// `5s`, `500ms`, `1m`, or plain seconds.
fn parse_interval(s: &str) -> std::result::Result<std::time::Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 5s or 500ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: the unit is ms, s or m")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{s:?}: the interval must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// runc's `events`: a "stats" event every interval (once with --stats),
/// an "oom" event as soon as the OOM killer kills in the container, until
/// the container stops.
fn watch(root: &Root, id: &str, once: bool, interval: std::time::Duration) -> Result<()> {
    use std::time::{Duration, Instant};
    let dir = container::cgroup_of(root, id)?;
    let print = |v: Event<'_>| -> Result<()> {
        outln!("{}", serde_json::to_string(&v)?)?;
        Ok(())
    };
    if once {
        return print(Event::stats(id, &dir));
    }
    let mut ooms = rt::cgroup::stats::oom_kills(&dir);
    let mut next = Instant::now();
    while container::is_live(root, id) {
        if Instant::now() >= next {
            print(Event::stats(id, &dir))?;
            next += interval;
        }
        let now = rt::cgroup::stats::oom_kills(&dir);
        if now > ooms {
            print(Event::oom(id))?;
            ooms = now;
        }
        std::thread::sleep(Duration::from_millis(100).min(interval));
    }
    Ok(())
}
