//! config-linux.md's devices (plus the default devices and /dev symlinks
//! that every checker case checks too).

use serde_json::json;

use super::bundle;
use crate::case::run_checker;
use crate::report::Report;
use crate::runtime::Runtime;

pub fn run(rt: &Runtime, report: &mut Report) {
    let Some(mut b) = bundle(report, "devices", &[]) else {
        return;
    };
    b.config["linux"]["devices"] = json!([
        { "path": "/dev/conf-char", "type": "c", "major": 1, "minor": 3,
          "fileMode": 0o640, "uid": 1000, "gid": 1001 },
        { "path": "/dev/conf-block", "type": "b", "major": 7, "minor": 0,
          "fileMode": 0o600, "uid": 0, "gid": 6 },
        { "path": "/dev/conf-fifo", "type": "p",
          "fileMode": 0o620, "uid": 1000, "gid": 1000 },
        { "path": "/dev/conf-sub/conf-unbuffered", "type": "u", "major": 1, "minor": 5,
          "fileMode": 0o666, "uid": 0, "gid": 0 }
    ]);
    run_checker(
        rt,
        "devices: char, block, fifo and unbuffered nodes",
        &b,
        report,
        &[
            "config-linux.md, Devices:",
            "Default Devices",
            "Dev symbolic links",
        ],
    );
}
