//! Every fuzz target's seeds and saved findings, through the target's own
//! function on stable: what `make fuzz` starts from, and every crash it
//! ever found, stay "an error, never a panic" in every `cargo test`.

use std::path::{Path, PathBuf};

fn here() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir`, sorted; none where the folder is missing.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_finding_is_an_error_or_a_value_never_a_panic() {
    for (name, target) in rt_fuzz::TARGETS {
        let seeds = inputs(&here().join("seeds").join(name));
        assert!(!seeds.is_empty(), "fuzz/seeds/{name} has no seeds");
        let findings = inputs(&here().join("regressions").join(name));
        for file in seeds.iter().chain(&findings) {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                panic!("{name}: {} panicked", file.display());
            }
        }
    }
}

/// The table, the cargo-fuzz binaries and the seed folders name the same
/// targets: a target missing from one would never run there.
#[test]
fn the_table_the_fuzz_binaries_and_the_seeds_name_the_same_targets() {
    let mut table: Vec<String> = rt_fuzz::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    table.sort();
    let names = |dir: &str, strip: &str| {
        let mut v: Vec<String> = inputs(&here().join(dir))
            .iter()
            .filter_map(|p| {
                p.file_name()?
                    .to_str()?
                    .strip_suffix(strip)
                    .map(String::from)
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names("libfuzzer/fuzz_targets", ".rs"),
        table,
        "libfuzzer/fuzz_targets"
    );
    assert_eq!(names("seeds", ""), table, "seeds");
    let manifest = std::fs::read_to_string(here().join("libfuzzer/Cargo.toml")).unwrap();
    for name in &table {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "libfuzzer/Cargo.toml has no [[bin]] {name}"
        );
    }
}
