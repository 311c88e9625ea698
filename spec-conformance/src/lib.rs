//! spec-conformance: the OCI runtime spec's MUST clauses as checks, run
//! against any runtime with runc's command line (`$RUNTIME`, rt by
//! default).
//!
//! Most checks run inside the container: the harness makes a bundle from
//! busybox-static plus the static `conformance-checker`, writes the
//! config.json a case needs, drives the runtime through create/start/
//! state/delete, and turns the checker's TAP into results. Lifecycle, hook
//! and error clauses are checked from the harness side.

pub mod artifacts;
pub mod bundle;
pub mod case;
pub mod groups;
pub mod report;
pub mod runtime;

use report::{CheckResult, Outcome, Report};

/// Runs one group against the runtime under test.
pub fn run_group(name: &str) -> Vec<CheckResult> {
    let mut report = Report::default();
    report.case(name);
    let Some((_, run)) = groups::GROUPS.iter().find(|(n, _)| *n == name) else {
        report.add(
            format!("harness: no group named {name}"),
            Outcome::Fail("unknown group".into()),
        );
        return report.results;
    };
    match runtime::Runtime::new() {
        Ok(rt) => run(&rt, &mut report),
        Err(e) => report.add("harness: finding the runtime under test", Outcome::Fail(e)),
    }
    report.results
}
