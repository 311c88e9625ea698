//! The spec-conformance suite under `cargo test`: one test per group,
//! against $RUNTIME (rt built from this workspace by default). Needs root.
//!
//! A check whose config the runtime refuses with "not supported by rt" (a
//! feature rt does not have yet) is printed as an explicit SKIP with the
//! runtime's message and does not fail the test; `rt-conformance` counts
//! it as a failure. Every other failure fails the test.

use spec_conformance::report::Outcome;

fn group(name: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the conformance suite makes containers: run it as root"
    );
    let results = spec_conformance::run_group(name);
    assert!(!results.is_empty(), "group {name} checked nothing");
    let mut failed = Vec::new();
    for r in &results {
        match &r.outcome {
            Outcome::Unsupported(why) => {
                println!(
                    "SKIP (not supported by the runtime yet) {} [{}]: {why}",
                    r.name, r.case
                )
            }
            Outcome::Fail(_) => {
                println!("{r}");
                failed.push(r.to_string());
            }
            _ => println!("{r}"),
        }
    }
    assert!(
        failed.is_empty(),
        "{} checks failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn process() {
    group("process");
}

#[test]
fn namespaces() {
    group("namespaces");
}

#[test]
fn mounts() {
    group("mounts");
}

#[test]
fn devices() {
    group("devices");
}

#[test]
fn cgroups() {
    group("cgroups");
}

#[test]
fn seccomp() {
    group("seccomp");
}

#[test]
fn lifecycle() {
    group("lifecycle");
}

#[test]
fn hooks() {
    group("hooks");
}

#[test]
fn errors() {
    group("errors");
}
