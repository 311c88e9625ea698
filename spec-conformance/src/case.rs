//! One container running the checker: ask it (on the host) which checks
//! the config calls for, run it through create/start, wait for it to stop,
//! and turn its TAP into results.

use std::process::Command;
use std::time::Duration;

use crate::bundle::Bundle;
use crate::report::{Outcome, Report};
use crate::runtime::{Out, Runtime};

/// Checks where runc 1.1.5 is known to be wrong, with why. A failure of one
/// of these against runc is reported as a skip that says so; against any
/// other runtime it stays a failure.
pub const KNOWN_RUNC_DEVIATIONS: &[(&str, &str)] = &[
    (
        "config.md, Domainname:",
        "runc 1.1.5 ignores domainname (it is set from runc 1.2 on)",
    ),
    (
        "config-linux.md, Rootfs Mount Propagation: shared",
        "runc 1.1.5 leaves the pivoted root without a peer group",
    ),
    (
        "config-linux.md, Rootfs Mount Propagation: unbindable",
        "runc 1.1.5 makes the rootfs unbindable before bind-mounting it, and the bind fails with EINVAL",
    ),
];

/// Turns a failure of a check runc is known to get wrong into a skip.
pub fn known(rt: &Runtime, name: &str, outcome: Outcome, deviations: &[(&str, &str)]) -> Outcome {
    match outcome {
        Outcome::Fail(why) if rt.is_runc() => {
            match deviations.iter().find(|(n, _)| name.starts_with(n)) {
                Some((_, because)) => Outcome::Skip(format!(
                    "runc 1.1.5 is known to be wrong here: {because} (it said: {why})"
                )),
                None => Outcome::Fail(why),
            }
        }
        o => o,
    }
}

/// The names of the checks the checker will make for the bundle's config.
fn plan(bundle: &Bundle) -> Result<Vec<String>, String> {
    let checker = crate::artifacts::checker()?;
    let out = Command::new(&checker)
        .arg("--plan")
        .arg(bundle.path().join("config.json"))
        .output()
        .map_err(|e| format!("{}: {e}", checker.display()))?;
    if !out.status.success() {
        return Err(format!(
            "checker --plan: {}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Why a create failed, as an outcome: `Unsupported` when the runtime says
/// it does not implement the config yet, `Skip` when it needs a cgroup
/// controller this host does not give it, else a failure.
pub fn refusal(out: &Out) -> Outcome {
    let why = out.why();
    if out.unsupported() {
        Outcome::Unsupported(why)
    } else if why.contains("controller")
        && (why.contains("not available") || why.contains("not enabled"))
    {
        Outcome::Skip(format!(
            "needs a cgroup controller this host does not give the runtime: {why}"
        ))
    } else {
        Outcome::Fail(format!("create failed: {why}"))
    }
}

/// Runs the checker in a container made from `bundle` and adds results to
/// `report`.
///
/// The checker checks everything the config implies, so most checks repeat
/// in every case. `focus` (substrings of check names) says what the case is
/// about: those checks are always reported; the others only when they
/// fail, so each clause is counted where it is tested and a regression
/// anywhere still shows. An empty `focus` reports everything. When the
/// runtime refuses the config, only the focus checks get the refusal.
pub fn run_checker(rt: &Runtime, case: &str, bundle: &Bundle, report: &mut Report, focus: &[&str]) {
    report.case(case);
    if let Err(e) = bundle.write() {
        report.add(
            format!("harness: writing the bundle of {case}"),
            Outcome::Fail(e),
        );
        return;
    }
    let names = match plan(bundle) {
        Ok(n) => n,
        Err(e) => {
            report.add(format!("harness: planning {case}"), Outcome::Fail(e));
            return;
        }
    };
    let focused = |n: &str| focus.is_empty() || focus.iter().any(|f| n.contains(f));
    let all = |report: &mut Report, outcome: Outcome| {
        for n in names.iter().filter(|n| focused(n)) {
            report.add(
                n.clone(),
                known(rt, n, outcome.clone(), KNOWN_RUNC_DEVIATIONS),
            );
        }
    };
    let id = &bundle.id;
    let created = rt.create(id, bundle);
    if !created.ok {
        return all(report, refusal(&created));
    }
    let started = rt.start(id);
    if !started.ok {
        return all(
            report,
            Outcome::Fail(format!("start failed: {}", started.why())),
        );
    }
    if let Err(e) = rt.wait_status(id, "stopped", Duration::from_secs(30)) {
        let _ = rt.kill(id, "KILL");
        return all(
            report,
            Outcome::Fail(format!("checker did not finish: {e}")),
        );
    }
    let (out, err) = bundle.output();
    let tap = parse_tap(&out);
    for (i, name) in names.iter().enumerate() {
        let outcome = match tap.iter().find(|(n, _)| *n == i + 1) {
            Some((_, line)) => outcome_of(line, name),
            None => Outcome::Fail(format!(
                "the checker reported nothing for this check; its stderr: {}",
                err.trim().lines().last().unwrap_or("(empty)")
            )),
        };
        let outcome = known(rt, name, outcome, KNOWN_RUNC_DEVIATIONS);
        if focused(name) || matches!(outcome, Outcome::Fail(_)) {
            report.add(name.clone(), outcome);
        }
    }
    if rt.delete(id).ok {
        rt.forget(id);
    }
}

/// TAP result lines by number (other lines, like the plan, are ignored).
fn parse_tap(out: &str) -> Vec<(usize, String)> {
    out.lines()
        .filter_map(|l| {
            let rest = l
                .strip_prefix("not ok ")
                .or_else(|| l.strip_prefix("ok "))?;
            let n = rest.split(' ').next()?.parse().ok()?;
            Some((n, l.to_string()))
        })
        .collect()
}

fn outcome_of(line: &str, name: &str) -> Outcome {
    if line.starts_with("not ok ") {
        let why = line
            .split_once(&format!(" - {name}: "))
            .map(|(_, w)| w.to_string())
            .unwrap_or_else(|| line.to_string());
        Outcome::Fail(why)
    } else if let Some((_, why)) = line.split_once(" # SKIP ") {
        Outcome::Skip(why.to_string())
    } else {
        Outcome::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_lines_become_outcomes() {
        let tap =
            parse_tap("1..3\nok 1 - a: b\nnot ok 2 - c: d: broken\nok 3 - e # SKIP no x\nnoise\n");
        assert_eq!(tap.len(), 3);
        assert_eq!(outcome_of(&tap[0].1, "a: b"), Outcome::Pass);
        assert_eq!(
            outcome_of(&tap[1].1, "c: d"),
            Outcome::Fail("broken".into())
        );
        assert_eq!(outcome_of(&tap[2].1, "e"), Outcome::Skip("no x".into()));
    }
}
