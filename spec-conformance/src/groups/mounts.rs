//! config.md's root and mounts; config-linux.md's rootfs propagation,
//! masked paths and read-only paths.
//!
//! Slave propagation is not checked: it only shows (as `master:N`) when
//! the source is shared, and this host's root mount is private.

use std::fs;

use serde_json::json;

use super::bundle;
use crate::case::run_checker;
use crate::report::{Outcome, Report};
use crate::runtime::Runtime;

pub fn run(rt: &Runtime, report: &mut Report) {
    if let Some(mut b) = bundle(report, "mounts", &[]) {
        let binds = (|| -> Result<_, String> {
            Ok((
                b.host_dir("bind-ro", "/mnt/bind-ro")?,
                b.host_dir("rbind", "/mnt/rbind")?,
                b.host_dir("shared", "/mnt/shared")?,
            ))
        })();
        match binds {
            Ok((ro, rbind, shared)) => {
                let tmpfs = |dest: &str, opts: &[&str]| json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts });
                let bind = |dest: &str, src: &std::path::Path, opts: &[&str]| json!({ "destination": dest, "type": "bind", "source": src, "options": opts });
                let m = b.config["mounts"].as_array_mut().unwrap();
                m.push(tmpfs(
                    "/mnt/tmpfs",
                    &["nosuid", "nodev", "noexec", "mode=1770", "size=1m"],
                ));
                m.push(tmpfs("/mnt/tmpfs/nested", &["noatime", "nodiratime", "ro"]));
                m.push(tmpfs("/mnt/strict", &["strictatime"]));
                m.push(tmpfs("/mnt/relatime", &["relatime"]));
                m.push(tmpfs("/mnt/private", &["rprivate"]));
                m.push(tmpfs("/mnt/unbindable", &["runbindable"]));
                m.push(bind("/mnt/bind-ro", &ro, &["bind", "ro"]));
                m.push(bind(
                    "/mnt/rbind",
                    &rbind,
                    &["rbind", "rw", "nosuid", "nodev"],
                ));
                m.push(bind("/mnt/shared", &shared, &["rbind", "rshared"]));
                run_checker(
                    rt,
                    "mounts: tmpfs and bind mounts with options",
                    &b,
                    report,
                    &["/mnt/"],
                );
            }
            Err(e) => report.add("harness: bind mount sources", Outcome::Fail(e)),
        }
    }

    if let Some(mut b) = bundle(report, "rootro", &[]) {
        b.config["root"]["readonly"] = json!(true);
        run_checker(rt, "root: read-only", &b, report, &["Root:"]);
    }

    for mode in ["private", "shared", "unbindable"] {
        if let Some(mut b) = bundle(report, "rootprop", &[]) {
            b.config["linux"]["rootfsPropagation"] = json!(mode);
            run_checker(
                rt,
                &format!("root: propagation {mode}"),
                &b,
                report,
                &["Rootfs Mount Propagation"],
            );
        }
    }

    if let Some(mut b) = bundle(report, "paths", &[]) {
        let made = (|| -> std::io::Result<()> {
            let etc = b.rootfs().join("etc");
            fs::write(etc.join("conf-secret"), "secret\n")?;
            fs::create_dir_all(etc.join("conf-secret-dir"))?;
            fs::write(etc.join("conf-secret-dir/file"), "secret\n")?;
            fs::create_dir_all(etc.join("conf-ro-dir"))?;
            fs::write(etc.join("conf-ro-file"), "x\n")
        })();
        if let Err(e) = made {
            report.add("harness: files to mask", Outcome::Fail(e.to_string()));
            return;
        }
        let l = &mut b.config["linux"];
        for p in ["/etc/conf-secret", "/etc/conf-secret-dir"] {
            l["maskedPaths"].as_array_mut().unwrap().push(json!(p));
        }
        for p in ["/etc/conf-ro-dir", "/etc/conf-ro-file"] {
            l["readonlyPaths"].as_array_mut().unwrap().push(json!(p));
        }
        run_checker(
            rt,
            "paths: masked and read-only files and directories",
            &b,
            report,
            &["Masked Paths", "Readonly Paths"],
        );
    }
}
