//! The plans of a dump and a restore from configs, without root: the
//! external mounts (binds, masked files), namespaces joined by path,
//! pre-dump, the cgroup, and what a bad flag is told; and CRIU's message
//! made from each plan.

use super::*;

const BUNDLE: &str = "/b";
const ROOTFS: &str = "/b/rootfs";

/// A config with these `mounts` and `linux`.
fn spec(mounts: &str, linux: &str) -> Spec {
    let config = format!(
        r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},
        "process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},
        "mounts":{mounts},"linux":{linux}}}"#
    );
    crate::config::spec::parse(config.as_bytes()).expect("config parses")
}

const MOUNTS: &str = r#"[
    {"destination":"/proc","type":"proc","source":"proc"},
    {"destination":"/data","type":"bind","source":"/srv/data","options":["rbind","rw"]},
    {"destination":"/etc/hosts","type":"none","source":"hosts","options":["bind","ro"]}
]"#;

/// The restore of `s` with no cgroup and no flags.
fn plain_restore(s: &Spec) -> RestorePlan {
    restore(
        s,
        Path::new(BUNDLE),
        Path::new(ROOTFS),
        Path::new("/state/criu-root"),
        None,
        &RestoreFlags::default(),
    )
    .expect("plans")
}

fn dump_of(s: &Spec, flags: &DumpFlags, facts: &DumpFacts) -> DumpPlan {
    dump(s, Path::new(BUNDLE), Path::new(ROOTFS), 42, flags, facts).expect("plans")
}

#[test]
fn a_bind_through_a_symlink_is_found_where_it_is_but_keyed_by_its_destination() {
    let s = spec(MOUNTS, "{}");
    let facts = DumpFacts {
        resolved: vec![("/data".into(), "/real/data".into())],
        ..DumpFacts::default()
    };
    let p = dump_of(&s, &DumpFlags::default(), &facts);
    assert_eq!(p.ext_mounts[0], ("/real/data".into(), "/data".into()));
    let o = p.to_opts(3, 4);
    assert_eq!(o.ext_mnt[0].key(), "/real/data");
    assert_eq!(o.ext_mnt[0].val(), "/data");
}

#[test]
fn binds_are_external_mounts_named_by_their_destination() {
    let s = spec(MOUNTS, "{}");
    let facts = DumpFacts {
        masked_files: vec!["/proc/kcore".into()],
        ..DumpFacts::default()
    };
    let p = dump_of(&s, &DumpFlags::default(), &facts);
    assert_eq!(
        p.ext_mounts,
        [
            ("/data".to_string(), "/data".to_string()),
            ("/etc/hosts".into(), "/etc/hosts".into()),
            ("/proc/kcore".into(), "/dev/null".into()),
        ]
    );
    // On restore the same keys are bound to their sources (a relative
    // one is in the bundle), and every masked path is offered.
    let s = spec(MOUNTS, r#"{"maskedPaths":["/proc/kcore"]}"#);
    let r = restore(
        &s,
        Path::new(BUNDLE),
        Path::new(ROOTFS),
        Path::new("/run/rt/c1/criu-root"),
        Some("/rt/c1"),
        &RestoreFlags::default(),
    )
    .expect("plans");
    assert_eq!(
        r.ext_mounts,
        [
            ("/data".to_string(), "/srv/data".to_string()),
            ("/etc/hosts".into(), "/b/hosts".into()),
            ("/dev/null".into(), "/dev/null".into()),
        ]
    );
}

#[test]
fn a_network_namespace_joined_by_path_is_external() {
    let linux = r#"{"namespaces":[{"type":"pid"},{"type":"network","path":"/run/netns/n1"}]}"#;
    let s = spec("[]", linux);
    assert_eq!(
        joined_namespaces(&s).unwrap(),
        [(LinuxNamespaceType::Network, PathBuf::from("/run/netns/n1"))]
    );
    let facts = DumpFacts {
        joined: vec![(LinuxNamespaceType::Network, 4026532000)],
        ..DumpFacts::default()
    };
    let p = dump_of(&s, &DumpFlags::default(), &facts);
    assert_eq!(p.externals, ["net[4026532000]:extRootNetNS"]);
    let r = plain_restore(&s);
    assert_eq!(
        r.joined,
        [("extRootNetNS".to_string(), PathBuf::from("/run/netns/n1"))]
    );
    let o = r.to_opts(3, 4, &[7], &[("pipe:[99]".into(), 8)]);
    let inherit: Vec<(String, i32)> = o
        .inherit_fd
        .iter()
        .map(|i| (i.key().to_string(), i.fd()))
        .collect();
    assert_eq!(
        inherit,
        [("extRootNetNS".to_string(), 7), ("pipe:[99]".into(), 8)]
    );
}

#[test]
fn other_namespaces_joined_by_path_are_refused_with_their_field() {
    let s = spec(
        "[]",
        r#"{"namespaces":[{"type":"pid"},{"type":"ipc","path":"/proc/1/ns/ipc"}]}"#,
    );
    let e = joined_namespaces(&s).unwrap_err().to_string();
    assert!(e.starts_with("linux.namespaces[1].path: "), "{e}");
    assert!(e.contains("cannot be checkpointed"), "{e}");
}

#[test]
fn a_pre_dump_tracks_memory_and_leaves_the_container_running() {
    let s = spec("[]", "{}");
    let flags = DumpFlags {
        pre_dump: true,
        ..DumpFlags::default()
    };
    let p = dump_of(&s, &flags, &DumpFacts::default());
    assert_eq!(p.kind, DumpKind::PreDump);
    assert_eq!(p.request_type(), rpc::Criu_req_type::PRE_DUMP);
    assert!(p.leave_running && p.track_mem);
    assert_eq!(p.log_file, "pre-dump.log");

    // The dump after it names its parent and tracks memory too.
    let flags = DumpFlags {
        parent_path: Some("../pre".into()),
        ..DumpFlags::default()
    };
    let p = dump_of(&s, &flags, &DumpFacts::default());
    assert_eq!(p.kind, DumpKind::Dump);
    assert!(!p.leave_running && p.track_mem);
    let o = p.to_opts(3, 4);
    assert_eq!(o.parent_img(), "../pre");
    assert_eq!(o.log_file(), "dump.log");
}

#[test]
fn the_dump_message_carries_the_flags_and_the_container() {
    let s = spec("[]", "{}");
    let flags = DumpFlags {
        common: Common {
            tcp_established: true,
            shell_job: true,
            file_locks: true,
            cgroups_mode: CgroupsMode::Full,
            empty_ns: parse_empty_ns(&["network".into()]).unwrap(),
            ..Common::default()
        },
        leave_running: true,
        page_server: Some(parse_page_server("192.0.2.1:27").unwrap()),
        ..DumpFlags::default()
    };
    let facts = DumpFacts {
        cgroup_dir: Some("/sys/fs/cgroup/rt/c1".into()),
        ..DumpFacts::default()
    };
    let o = dump_of(&s, &flags, &facts).to_opts(5, 6);
    assert_eq!(o.images_dir_fd(), 5);
    assert_eq!(o.work_dir_fd(), 6);
    assert_eq!(o.pid(), 42);
    assert_eq!(o.root(), ROOTFS);
    assert!(o.leave_running() && o.tcp_established() && o.shell_job() && o.file_locks());
    assert!(!o.ext_unix_sk() && !o.track_mem());
    assert!(o.manage_cgroups() && o.notify_scripts() && o.orphan_pts_master());
    assert_eq!(o.manage_cgroups_mode(), rpc::Criu_cg_mode::FULL);
    assert_eq!(o.freeze_cgroup(), "/sys/fs/cgroup/rt/c1");
    assert_eq!(o.empty_ns(), 0x4000_0000);
    assert_eq!((o.ps.address(), o.ps.port()), ("192.0.2.1", 27));
}

#[test]
fn the_restore_message_makes_the_init_rts_child_in_its_cgroup() {
    let s = spec("[]", "{}");
    let flags = RestoreFlags {
        console_socket: true,
        lsm_profile: Some("apparmor:unconfined".into()),
        ..RestoreFlags::default()
    };
    let r = restore(
        &s,
        Path::new(BUNDLE),
        Path::new(ROOTFS),
        Path::new("/run/rt/c2/criu-root"),
        Some("/rt/c2"),
        &flags,
    )
    .unwrap();
    let o = r.to_opts(3, 4, &[], &[]);
    assert!(o.rst_sibling() && o.orphan_pts_master());
    assert_eq!(o.root(), "/run/rt/c2/criu-root");
    assert_eq!(o.log_file(), "restore.log");
    assert_eq!(o.manage_cgroups_mode(), rpc::Criu_cg_mode::SOFT);
    assert_eq!(o.cg_root.len(), 1);
    assert_eq!(o.cg_root[0].path(), "/rt/c2");
    assert_eq!(o.lsm_profile(), "apparmor:unconfined");
    assert!(!o.has_lsm_mount_context());
}

#[test]
fn bad_flag_values_are_refused_naming_the_flag() {
    let e = CgroupsMode::parse("hard").unwrap_err().to_string();
    assert_eq!(
        e,
        "--manage-cgroups-mode hard: not one of soft, full, strict, ignore"
    );
    let e = parse_empty_ns(&["pid".into()]).unwrap_err().to_string();
    assert!(e.starts_with("--empty-ns pid: "), "{e}");
    assert_eq!(parse_empty_ns(&[]).unwrap(), 0);
    let e = parse_page_server("localhost").unwrap_err().to_string();
    assert_eq!(e, "--page-server localhost: not ADDRESS:PORT");
    assert!(parse_page_server("h:99999").is_err());
    assert_eq!(
        parse_page_server("[::1]:8000").unwrap(),
        ("::1".to_string(), 8000)
    );
    let flags = RestoreFlags {
        lsm_profile: Some("unconfined".into()),
        ..RestoreFlags::default()
    };
    let s = spec("[]", "{}");
    let e = restore(
        &s,
        Path::new(BUNDLE),
        Path::new(ROOTFS),
        Path::new("/r"),
        None,
        &flags,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("--lsm-profile unconfined: "), "{e}");
}

#[test]
fn a_nested_bind_gets_its_mountpoint_in_the_outer_source() {
    let b = |d: &str, s: &str, dir: bool| MountTarget {
        dest: PathBuf::from(d),
        source: Some(PathBuf::from(s)),
        dir,
    };
    let m = mountpoints(&[
        b("/test", "/h/b1", true),
        b("/test/for/nested", "/h/b2", true),
        b("/test/for/nested/deeper/f", "/h/file", false),
        b("/testing", "/h/b3", true),
        b("/etc/hosts", "/h/hosts", false),
        b("/etc/hosts/x", "/h/b4", true),
    ]);
    let at = |base: Option<&str>, path: &str, file: bool| Mountpoint {
        base: base.map(PathBuf::from),
        path: PathBuf::from(path),
        file,
    };
    assert_eq!(
        m,
        [
            at(None, "/test", false),
            at(Some("/h/b1"), "/for/nested", false),
            at(Some("/h/b2"), "/deeper/f", true),
            // A name that only starts with the same letters is not inside.
            at(None, "/testing", false),
            at(None, "/etc/hosts", true),
            // A file holds nothing: not an outer bind.
            at(None, "/etc/hosts/x", false),
        ]
    );
}

#[test]
fn every_mount_gets_a_mountpoint_unless_its_filesystem_holds_it() {
    let fs = |d: &str| MountTarget {
        dest: PathBuf::from(d),
        source: None,
        dir: true,
    };
    let bind = |d: &str, s: &str| MountTarget {
        dest: PathBuf::from(d),
        source: Some(PathBuf::from(s)),
        dir: true,
    };
    // containerd's default mounts, on a fresh snapshot of busybox (no /run).
    let m = mountpoints(&[
        fs("/proc"),
        fs("/dev"),
        fs("/dev/pts"),
        fs("/dev/shm"),
        fs("/sys"),
        fs("/sys/fs/cgroup"),
        fs("/run"),
        bind("/run/secrets", "/h/secrets"),
        bind("/data", "/h/data"),
        fs("/data/cache"),
    ]);
    let root = |p: &str| Mountpoint {
        base: None,
        path: PathBuf::from(p),
        file: false,
    };
    assert_eq!(
        m,
        [
            root("/proc"),
            root("/dev"),
            root("/sys"),
            root("/run"),
            root("/data"),
            // A tmpfs in a bind: its mountpoint is in the bind's source.
            Mountpoint {
                base: Some(PathBuf::from("/h/data")),
                path: PathBuf::from("/cache"),
                file: false,
            },
        ]
    );
}

#[test]
fn criu_reads_the_containers_own_config_file_or_rts() {
    let with = |ann: &str| {
        let config = format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},
            "process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},
            "annotations":{ann}}}"#
        );
        crate::config::spec::parse(config.as_bytes()).expect("config parses")
    };
    let s = with(r#"{"org.criu.config":"/etc/mine.conf"}"#);
    let p = dump_of(&s, &DumpFlags::default(), &DumpFacts::default());
    assert_eq!(p.to_opts(3, 4).config_file(), "/etc/mine.conf");
    let r = plain_restore(&s);
    assert_eq!(r.to_opts(3, 4, &[], &[]).config_file(), "/etc/mine.conf");
    // An empty value: no file at all.
    let p = dump_of(
        &with(r#"{"org.criu.config":""}"#),
        &DumpFlags::default(),
        &DumpFacts::default(),
    );
    assert!(!p.to_opts(3, 4).has_config_file());
    // None named: rt's own.
    let p = dump_of(&with("{}"), &DumpFlags::default(), &DumpFacts::default());
    assert_eq!(p.to_opts(3, 4).config_file(), DEFAULT_CRIU_CONFIG);
}

#[test]
fn a_bind_of_the_bundle_itself_is_restored_from_a_clean_path() {
    let s = spec(
        r#"[{"destination":"/conf","source":".","options":["bind"]}]"#,
        "{}",
    );
    let r = plain_restore(&s);
    assert_eq!(r.ext_mounts[0], ("/conf".into(), "/b".into()));
}
