//! The shape of the tree, checked: the top-level modules of `src/` import
//! each other without a circle, `unsafe` lives in `src/sys/` only (the
//! shims forbid it), and no source file of the workspace grows past 800 lines.

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
    // The shims call the library's safe wrappers instead of their own.
    rust_files(&root().join("shim/src"), &mut files);
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
    for f in [
        "shim/src/lib.rs",
        "shim/src/bin/rt-shim.rs",
        "shim/src/bin/containerd-shim-rt-v2.rs",
    ] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        assert!(
            text.contains("#![forbid(unsafe_code)]"),
            "{f} forbids unsafe code"
        );
    }
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

/// The sections of ARCHITECTURE.md (from one `## ` heading to the next),
/// each with its heading.
fn map_sections() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut sections = vec![String::new()];
    for line in text.lines() {
        if line.starts_with("## ") {
            sections.push(String::new());
        }
        let last = sections.last_mut().unwrap();
        last.push_str(line);
        last.push('\n');
    }
    sections
}

/// The folder a file is filed under in the map: its nearest ancestor
/// that is not a crate's `src` or `bin` (`src/init/rlimits.rs` is under
/// `init/`, `image/src/store.rs` under `image/`), or `src/` itself.
fn folder_of(rel: &Path) -> String {
    let dirs: Vec<String> = rel
        .parent()
        .unwrap()
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let named = dirs.iter().rev().find(|d| *d != "src" && *d != "bin");
    format!("{}/", named.or(dirs.first()).map_or("", |d| d.as_str()))
}

/// Whether `text` names `word` in backticks, alone or at the end of a
/// path (`` `tmpfs.rs` ``, `` `src/rootfs/tmpfs.rs` ``).
fn names(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        matches!(before, Some('`' | '/')) && after == Some('`')
    })
}

/// Whether `text` names `folder` (`init/`) as a word: not the tail of
/// another name (`containerd/` is not `d/`).
fn names_folder(text: &str, folder: &str) -> bool {
    text.match_indices(folder).any(|(i, _)| {
        !text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
    })
}

#[test]
fn the_map_names_every_source_file_in_its_folders_section() {
    let sections = map_sections();
    let mut files = vec![];
    for dir in [
        "src",
        "shim",
        "image",
        "tests",
        "integration",
        "spec-conformance",
        "testkit",
        "fuzz",
        "bench",
    ] {
        let d = root().join(dir);
        if d.exists() {
            rust_files(&d, &mut files);
        }
    }
    files.push(root().join("build.rs"));
    assert!(files.len() > 100, "found only {} files", files.len());
    let mut unnamed = vec![];
    for f in &files {
        let rel = f.strip_prefix(root()).unwrap();
        let name = rel.file_name().unwrap().to_string_lossy();
        let folder = folder_of(rel);
        let named = if matches!(&*name, "mod.rs" | "lib.rs" | "main.rs") {
            // A folder's root file is the folder itself.
            sections.iter().any(|s| names_folder(s, &folder))
        } else {
            sections
                .iter()
                .any(|s| names(s, &name) && (folder == "/" || names_folder(s, &folder)))
        };
        if !named {
            unnamed.push(format!("{} (under {folder})", rel.display()));
        }
    }
    assert!(
        unnamed.is_empty(),
        "ARCHITECTURE.md does not name these files in their folder's section:\n{}",
        unnamed.join("\n")
    );
}

#[test]
fn a_file_is_filed_under_its_nearest_named_folder() {
    assert_eq!(folder_of(Path::new("src/init/rlimits.rs")), "init/");
    assert_eq!(folder_of(Path::new("src/resctrl.rs")), "src/");
    assert_eq!(folder_of(Path::new("image/src/store.rs")), "image/");
    assert_eq!(folder_of(Path::new("shim/src/bin/rt-shim.rs")), "shim/");
    assert_eq!(folder_of(Path::new("build.rs")), "/");
    assert!(names("`src/rootfs/tmpfs.rs` is", "tmpfs.rs"));
    assert!(!names("`tmpfs.rsx`", "tmpfs.rs"));
    assert!(names_folder("the `containerd/` shim", "containerd/"));
    assert!(!names_folder("containerd/", "d/"));
}
