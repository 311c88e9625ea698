//! rt-conformance: runs every group of spec-conformance against the
//! runtime named by $RUNTIME (rt by default), prints one line per check
//! and "N passed, N failed, N skipped". Exits 1 when anything failed.
//!
//! A config the runtime refuses with "not supported by rt" counts as
//! failed here (the clause is not met); `cargo test` reports it as a skip.
//!
//! Usage: rt-conformance [GROUP...]   (default: every group)

use spec_conformance::groups::GROUPS;
use spec_conformance::report::{counts, Outcome};

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    for w in &wanted {
        if !GROUPS.iter().any(|(n, _)| n == w) {
            let names: Vec<&str> = GROUPS.iter().map(|(n, _)| *n).collect();
            eprintln!(
                "rt-conformance: no group {w:?} (groups: {})",
                names.join(", ")
            );
            std::process::exit(2);
        }
    }
    match spec_conformance::runtime::Runtime::new() {
        Ok(rt) => println!("# runtime: {} ({})", rt.bin().display(), rt.version()),
        Err(e) => {
            eprintln!("rt-conformance: {e}");
            std::process::exit(2);
        }
    }
    let mut all = Vec::new();
    for (name, _) in GROUPS {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
            continue;
        }
        println!("# group {name}");
        let results = spec_conformance::run_group(name);
        for r in &results {
            println!("{r}");
        }
        all.extend(results);
    }
    let mut names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    names.dedup();
    let unsupported = all
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Unsupported(_)))
        .count();
    let (passed, failed, skipped) = counts(&all);
    println!(
        "# {} checks of {} distinct clauses; {unsupported} of the failures are configs the runtime does not support",
        all.len(),
        names.len()
    );
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        std::process::exit(1);
    }
}
