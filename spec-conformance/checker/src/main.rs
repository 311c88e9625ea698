//! conformance-checker: runs as a container's program, reads the
//! config.json the container was made from (/conformance/config.json) and
//! checks from inside what the OCI runtime spec says must hold. Prints TAP.
//!
//! `conformance-checker --plan CONFIG` prints the names of the checks the
//! config calls for, one a line, without checking anything (the harness
//! runs it on the host).

mod caps;
mod cgroups;
mod devices;
mod linux;
mod mounts;
mod namespaces;
mod process;
mod sys;
mod tap;

use std::process::ExitCode;

const CONFIG: &str = "/conformance/config.json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (path, plan_only) = match args.get(1).map(String::as_str) {
        Some("--plan") => match args.get(2) {
            Some(p) => (p.as_str(), true),
            None => {
                eprintln!("usage: conformance-checker [--plan CONFIG]");
                return ExitCode::from(2);
            }
        },
        _ => (CONFIG, false),
    };
    let cfg: serde_json::Value = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            // Bail out the TAP way, so the harness reports why.
            println!("Bail out! {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut plan = tap::Plan::default();
    // Process first: its file-descriptor check must run before any other
    // probe has opened anything.
    process::plan(&cfg, &mut plan);
    caps::plan(&cfg, &mut plan);
    namespaces::plan(&cfg, &mut plan);
    mounts::plan(&cfg, &mut plan);
    devices::plan(&cfg, &mut plan);
    linux::plan(&cfg, &mut plan);
    cgroups::plan(&cfg, &mut plan);
    if plan_only {
        plan.print_names();
    } else {
        plan.run();
    }
    ExitCode::SUCCESS
}
