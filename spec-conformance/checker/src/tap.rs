//! The list of checks a run makes, and how they are reported: TAP on
//! stdout (`ok N - name`, `not ok N - name: why`, `ok N # SKIP why`).
//!
//! The list is built from config.json alone, before anything is probed, so
//! the harness can ask for it on the host (`--plan`) and knows which checks
//! a container should have reported even when it never ran.

use std::fmt::Debug;

/// What one probe found.
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// A probe: `Err` is a failure with its reason, so probes can use `?`.
pub type Probe = Box<dyn FnOnce() -> Result<Outcome, String>>;

#[derive(Default)]
pub struct Plan {
    checks: Vec<(String, Probe)>,
}

impl Plan {
    /// Adds a check named for the spec clause it checks.
    pub fn check(
        &mut self,
        name: impl Into<String>,
        probe: impl FnOnce() -> Result<Outcome, String> + 'static,
    ) {
        // A name is one TAP line: no newline, and no " # " that TAP would
        // read as a directive.
        let name = name.into().replace(['\n', '#'], " ");
        self.checks.push((name, Box::new(probe)));
    }

    /// `--plan`: the names only, one a line, nothing probed.
    pub fn print_names(self) {
        for (name, _) in self.checks {
            println!("{name}");
        }
    }

    /// Runs every probe in order and prints TAP.
    pub fn run(self) {
        println!("1..{}", self.checks.len());
        for (i, (name, probe)) in self.checks.into_iter().enumerate() {
            let n = i + 1;
            match probe() {
                Ok(Outcome::Pass) => println!("ok {n} - {name}"),
                Ok(Outcome::Skip(why)) => println!("ok {n} - {name} # SKIP {}", one_line(&why)),
                Ok(Outcome::Fail(why)) | Err(why) => {
                    println!("not ok {n} - {name}: {}", one_line(&why))
                }
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '#'], " ")
}

/// Pass when `got == want`, else a failure that shows both.
pub fn eq<T: PartialEq + Debug>(got: T, want: T) -> Result<Outcome, String> {
    if got == want {
        Ok(Outcome::Pass)
    } else {
        Ok(Outcome::Fail(format!("got {got:?}, want {want:?}")))
    }
}

/// Pass when `ok`, else a failure saying `why`.
pub fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<Outcome, String> {
    Ok(if ok {
        Outcome::Pass
    } else {
        Outcome::Fail(why())
    })
}
