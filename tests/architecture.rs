//! The shape of the tree, checked: the top-level modules of `src/` import
//! each other without a circle, `unsafe` lives in `src/sys/` only, and no
//! source file of the workspace grows past 800 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() && name != "target" && name != ".git" {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The code of a file without its `#[cfg(test)]` module and comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// For each top-level module of `src/`, the other top-level modules it
/// names through `crate::`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "bin" || module == "lib" {
            continue;
        }
        let code = code_of(&f);
        let deps = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                deps.insert(name);
            }
        }
    }
    graph
}

/// A circle through `from`, if there is one.
fn circle_from(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(at).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_string()];
    walk(graph, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_top_level_modules_import_each_other_without_a_circle() {
    let graph = module_graph();
    assert!(graph.contains_key("sys") && graph.contains_key("container"));
    for m in graph.keys() {
        if let Some(c) = circle_from(&graph, m) {
            panic!("import circle: {} -> {m}", c.join(" -> "));
        }
    }
    // The leaves stay leaves.
    assert_eq!(graph["sys"], BTreeSet::new(), "sys/ imports nothing of rt");
    assert!(
        graph["error"].is_empty(),
        "error.rs imports nothing of rt: {:?}",
        graph["error"]
    );
}

#[test]
fn unsafe_code_lives_in_src_sys_only() {
    let src = root().join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut found = vec![];
    for f in files {
        if f.starts_with(src.join("sys")) {
            continue;
        }
        let code = code_of(&f);
        for (n, line) in code.lines().enumerate() {
            if line.contains("unsafe {")
                || line.contains("unsafe fn")
                || line.contains("unsafe impl")
            {
                found.push(format!("{}:{}", f.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "unsafe outside src/sys: {found:?}");
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut files = vec![];
    for dir in [
        "src",
        "shim/src",
        "image/src",
        "tests",
        "image/tests",
        "integration",
        "spec-conformance",
        "testkit",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 800).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 800 lines: {long:?}");
}
