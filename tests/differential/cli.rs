//! runc's command-line contract: log lines in logrus's shapes, and every
//! subcommand's exit code and error words in the states callers meet.

use serde_json::Value;

use crate::common::*;
use crate::{bundle, Pair};

/// A logrus text line with its time masked and runc's caller fields
/// (`func=`, `file=`, which runc adds with --debug) dropped.
fn masked(line: &str) -> String {
    let rest = line
        .strip_prefix("time=\"")
        .and_then(|l| l.split_once('"'))
        .map(|(t, rest)| {
            assert!(humantime::parse_rfc3339(t).is_ok(), "time {t:?} in {line}");
            rest
        })
        .unwrap_or_else(|| panic!("not a logrus line: {line:?}"));
    let rest = rest.split(" func=").next().unwrap();
    format!("time=T{rest}")
}

/// `--log-format text` and `--debug` on stderr: the same bytes as runc's
/// once times are masked, but for the id rt adds to runc's message.
#[test]
fn log_lines_on_stderr_are_logrus_lines() {
    let p = Pair::new();
    let b = bundle(&["true"]);
    for args in [
        vec!["--log-format", "text", "kill", "nosuch"],
        vec!["--debug", "state", "nosuch"],
    ] {
        let (rt, runc) = p.step(&args.join(" "), &b, &args, true);
        let theirs = masked(runc.stderr.lines().last().unwrap());
        // --debug adds rt's debug lines before the error, as runc's.
        let mine = masked(rt.stderr.lines().last().unwrap());
        for l in rt.stderr.lines() {
            assert!(masked(l).starts_with("time=T level="), "{l}");
        }
        assert_eq!(
            mine.replace(": nosuch\"", "\""),
            theirs,
            "{args:?}: rt {:?} runc {:?}",
            rt.stderr,
            runc.stderr
        );
    }
    // A --log file in text: the same line as runc's there (runc prints
    // its plain message on stderr then, rt its `rt: ` line).
    let mut lines = Vec::new();
    for r in [&p.rt, &p.runc] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let log_s = log.to_str().unwrap();
        let o = r.run(
            &b,
            &["--log", log_s, "--log-format", "text", "kill", "nosuch"],
        );
        assert_eq!(o.code, 1, "{o:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        lines.push(masked(text.lines().last().unwrap()));
    }
    assert_eq!(
        lines[0].replace(": nosuch\"", "\""),
        lines[1],
        "--log text lines"
    );
    // JSON: the same keys in the same order.
    let (rt, runc) = p.step(
        "json",
        &b,
        &["--log-format", "json", "kill", "nosuch"],
        true,
    );
    let keys = |s: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(s.lines().last().unwrap()).unwrap();
        v.as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(&rt.stderr), keys(&runc.stderr));
    assert!(rt
        .stderr
        .starts_with("{\"level\":\"error\",\"msg\":\"container does not exist"));
}

/// `--debug run`: the container's output the same, and every line rt
/// writes on stderr a logrus debug (or info, warning) line, as runc's.
#[test]
fn debug_run_writes_logrus_lines_only() {
    let p = Pair::new();
    let b = bundle(&["echo", "hi"]);
    let id = unique_id("diffdebug");
    let (rt, runc) = p.step("--debug run", &b, &["--debug", "run", &id], true);
    assert_eq!(rt.stdout, "hi\n");
    for out in [&rt.stderr, &runc.stderr] {
        assert!(!out.is_empty());
        for l in out.lines() {
            let m = masked(l);
            assert!(
                ["debug", "info", "warning"]
                    .iter()
                    .any(|lv| m.starts_with(&format!("time=T level={lv} msg="))),
                "{l}"
            );
        }
    }
    p.clean(&b, &[&id]);
}

/// Each command in the state a caller meets it in: exit codes and
/// runc's words, side by side.
#[test]
fn every_subcommand_in_the_wrong_state() {
    let p = Pair::new();
    let b = bundle(&["sleep", "1000"]);
    let id = unique_id("diffwalk");
    let id = id.as_str();
    p.step("create", &b, &["create", id], true);
    p.step("create an existing id", &b, &["create", id], true);
    p.step("resume a created container", &b, &["resume", id], true);
    // runc freezes a created container; rt refuses (see KNOWN).
    let (rt, runc) = (p.rt.run(&b, &["pause", id]), p.runc.run(&b, &["pause", id]));
    assert_eq!((rt.code, runc.code), (1, 0), "{rt:?}");
    assert!(rt.message().starts_with("container not running"), "{rt:?}");
    assert_eq!(p.runc.run(&b, &["resume", id]).code, 0, "runc's resume");
    p.step(
        "exec in a created container",
        &b,
        &["exec", id, "true"],
        true,
    );
    p.step("start", &b, &["start", id], true);
    p.step("start a running container", &b, &["start", id], true);
    p.step("delete a running container", &b, &["delete", id], true);
    p.step("resume a running container", &b, &["resume", id], true);
    p.step(
        "exec a missing executable",
        &b,
        &["exec", id, "/nosuch"],
        true,
    );
    p.step(
        "exec exits with its code",
        &b,
        &["exec", id, "sh", "-c", "exit 7"],
        true,
    );
    p.step(
        "exec with a bad --pid-file",
        &b,
        &["exec", "--pid-file", "/nosuch/dir/pid", id, "true"],
        true,
    );
    p.step("pause", &b, &["pause", id], true);
    p.step("pause a paused container", &b, &["pause", id], true);
    p.step("resume", &b, &["resume", id], true);
    p.step("kill a bad signal", &b, &["kill", id, "NOSUCH"], true);
    p.step("delete -f", &b, &["delete", "-f", id], true);
    for args in [
        vec!["ps", "nosuch"],
        vec!["resume", "nosuch"],
        vec!["update", "--pids-limit", "10", "nosuch"],
        vec!["events", "--stats", "nosuch"],
    ] {
        p.step(&args.join(" "), &b, &args, true);
    }
    p.clean(&b, &[id]);
}
