//! Results: one per check, named for the spec clause it checks.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    Fail(String),
    /// Could not be checked here, and why (never a silent pass).
    Skip(String),
    /// The runtime refused the config with "not supported by rt": the
    /// feature is not implemented yet. A failure in the summary, an
    /// explicit skip in `cargo test`.
    Unsupported(String),
}

#[derive(Debug, Clone)]
pub struct CheckResult {
    /// "<spec file>, <heading>: <clause>"
    pub name: String,
    /// The case (container) it was checked in.
    pub case: String,
    pub outcome: Outcome,
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Pass => write!(f, "PASS {} [{}]", self.name, self.case),
            Outcome::Fail(why) => write!(f, "FAIL {} [{}]: {why}", self.name, self.case),
            Outcome::Skip(why) => write!(f, "SKIP {} [{}]: {why}", self.name, self.case),
            Outcome::Unsupported(why) => {
                write!(f, "UNSUPPORTED {} [{}]: {why}", self.name, self.case)
            }
        }
    }
}

/// The results of one group of cases.
#[derive(Default)]
pub struct Report {
    pub results: Vec<CheckResult>,
    case: String,
}

impl Report {
    /// Starts a case: the results that follow were checked in it.
    pub fn case(&mut self, name: &str) {
        self.case = name.to_string();
    }

    pub fn add(&mut self, name: impl Into<String>, outcome: Outcome) {
        self.results.push(CheckResult {
            name: name.into(),
            case: self.case.clone(),
            outcome,
        });
    }

    /// Pass if `ok`, else fail with `why`.
    pub fn ensure(&mut self, name: impl Into<String>, ok: bool, why: impl FnOnce() -> String) {
        let outcome = if ok {
            Outcome::Pass
        } else {
            Outcome::Fail(why())
        };
        self.add(name, outcome);
    }

    pub fn extend(&mut self, other: Vec<CheckResult>) {
        self.results.extend(other);
    }
}

/// (passed, failed, skipped), counting refusals as failures.
pub fn counts(results: &[CheckResult]) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for r in results {
        match r.outcome {
            Outcome::Pass => c.0 += 1,
            Outcome::Fail(_) | Outcome::Unsupported(_) => c.1 += 1,
            Outcome::Skip(_) => c.2 += 1,
        }
    }
    c
}
