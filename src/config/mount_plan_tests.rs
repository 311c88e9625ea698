//! The mount plan from config entries, without root: each kind, its
//! options and flags, destinations, binds inside the root, the /dev
//! facts, and what a bad mount is told.

use super::*;

const BUNDLE: &str = "/b";
const ROOTFS: &str = "/b/rootfs";

/// The plan of a config whose `mounts` is `mounts` (and `linux`, if any).
fn plan_with(mounts: &str, linux: Option<&str>) -> Result<MountPlan, String> {
    let linux = linux.map_or(String::new(), |l| format!(r#","linux":{l}"#));
    let config = format!(
        r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},
        "process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},
        "mounts":{mounts}{linux}}}"#
    );
    let spec = crate::config::spec::parse(config.as_bytes()).expect("config parses");
    MountPlan::new(&spec, Path::new(BUNDLE), Path::new(ROOTFS))
}

fn plan(mounts: &str) -> MountPlan {
    plan_with(mounts, None).unwrap_or_else(|e| panic!("{mounts}: {e}"))
}

fn one(mount: &str) -> PlannedMount {
    plan(&format!("[{mount}]")).mounts.remove(0)
}

fn bind_of(m: PlannedMount) -> Bind {
    match m.kind {
        Kind::Bind(b) => b,
        other => panic!("not a bind: {other:?}"),
    }
}

fn err_of(mounts: &str) -> String {
    plan_with(mounts, None).unwrap_err()
}

#[test]
fn a_bind_by_type_has_its_source_in_the_bundle_and_no_remount() {
    let b = bind_of(one(
        r#"{"destination":"/data","type":"bind","source":"data"}"#,
    ));
    assert_eq!(b.source, Path::new("/b/data"), "relative: in the bundle");
    assert!(!b.recursive);
    assert!(b.remount_flags.is_empty());
    assert!(!b.source_in_root);
    assert!(b.idmap.is_none() && b.tree.is_none());
}

#[test]
fn an_rbind_option_makes_a_recursive_bind_remounted_with_the_other_flags() {
    let m = one(r#"{"destination":"/d","source":"/srv/d","options":["rbind","ro","nosuid"]}"#);
    assert_eq!(m.typ, "", "no type: the option makes it a bind");
    let b = bind_of(m);
    assert_eq!(b.source, Path::new("/srv/d"), "absolute: as written");
    assert!(b.recursive);
    assert_eq!(b.remount_flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
}

#[test]
fn a_bind_whose_source_is_inside_the_root_is_left_to_the_init_in_order() {
    let inside = bind_of(one(
        r#"{"destination":"/x","type":"bind","source":"/b/rootfs/mnt/a"}"#,
    ));
    assert!(inside.source_in_root);
    let relative_inside = bind_of(one(
        r#"{"destination":"/x","type":"bind","source":"rootfs/etc"}"#,
    ));
    assert!(
        relative_inside.source_in_root,
        "bundle-relative into the root"
    );
    let sibling = bind_of(one(
        r#"{"destination":"/x","type":"bind","source":"/b/rootfs2/a"}"#,
    ));
    assert!(!sibling.source_in_root);
}

#[test]
fn a_tmpfs_keeps_its_flags_data_and_a_default_source() {
    let m = one(
        r#"{"destination":"/run","type":"tmpfs","options":["nosuid","nodev","mode=755","size=64k","remount"]}"#,
    );
    match &m.kind {
        Kind::Tmpfs { source, flags } => {
            assert_eq!(source, "tmpfs");
            assert_eq!(*flags, MsFlags::MS_NOSUID | MsFlags::MS_NODEV, "no remount");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        m.options.data_string().as_deref(),
        Some("mode=755,size=64k")
    );
    let named = one(r#"{"destination":"/run","type":"tmpfs","source":"shm"}"#);
    assert!(matches!(named.kind, Kind::Tmpfs { ref source, .. } if source == "shm"));
}

#[test]
fn a_read_only_dev_tmpfs_is_mounted_writable_and_made_read_only_at_the_end() {
    let p = plan(r#"[{"destination":"/dev","type":"tmpfs","options":["nosuid","ro","mode=755"]}]"#);
    match &p.mounts[0].kind {
        Kind::Tmpfs { flags, .. } => assert_eq!(*flags, MsFlags::MS_NOSUID),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.dev,
        DevPlan {
            is_bind: false,
            readonly_tmpfs: Some(MsFlags::MS_NOSUID | MsFlags::MS_RDONLY),
        }
    );
    let rw = plan(r#"[{"destination":"/dev","type":"tmpfs","options":["nosuid"]}]"#);
    assert_eq!(rw.dev, DevPlan::default(), "writable: nothing at the end");
    let elsewhere = plan(r#"[{"destination":"/tmp","type":"tmpfs","options":["ro"]}]"#);
    assert!(matches!(elsewhere.mounts[0].kind,
        Kind::Tmpfs { flags, .. } if flags == MsFlags::MS_RDONLY));
    assert_eq!(elsewhere.dev, DevPlan::default());
}

#[test]
fn a_bind_on_dev_says_so_and_the_last_dev_mount_decides_read_only() {
    let p = plan(
        r#"[{"destination":"/dev","type":"tmpfs","options":["ro"]},
            {"destination":"/dev","type":"none","source":"/dev","options":["rbind"]}]"#,
    );
    assert_eq!(
        p.dev,
        DevPlan {
            is_bind: true,
            readonly_tmpfs: None
        }
    );
    let then_tmpfs = plan(
        r#"[{"destination":"/dev","type":"bind","source":"/dev"},
            {"destination":"/dev","type":"tmpfs","options":["ro"]}]"#,
    );
    assert!(then_tmpfs.dev.is_bind, "a bind on /dev at all");
    assert_eq!(then_tmpfs.dev.readonly_tmpfs, Some(MsFlags::MS_RDONLY));
}

#[test]
fn a_tmpfs_with_a_bind_option_is_a_bind() {
    let p =
        plan(r#"[{"destination":"/dev","type":"tmpfs","source":"/dev","options":["bind","ro"]}]"#);
    assert!(matches!(p.mounts[0].kind, Kind::Bind(_)));
    assert_eq!(
        p.dev,
        DevPlan {
            is_bind: true,
            readonly_tmpfs: None
        }
    );
}

#[test]
fn a_cgroup_mount_keeps_only_the_flags_it_may_have() {
    for typ in ["cgroup", "cgroup2"] {
        let m = one(&format!(
            r#"{{"destination":"/sys/fs/cgroup","type":"{typ}","options":["nosuid","noexec","nodev","relatime","ro","sync","remount"]}}"#
        ));
        match m.kind {
            Kind::Cgroup { flags } => assert_eq!(
                flags,
                MsFlags::MS_NOSUID
                    | MsFlags::MS_NOEXEC
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_RELATIME
                    | MsFlags::MS_RDONLY,
                "{typ}"
            ),
            other => panic!("{typ}: {other:?}"),
        }
    }
}

#[test]
fn proc_and_sysfs_go_on_ordinary_directories_only() {
    for typ in ["proc", "sysfs"] {
        let m = one(&format!(
            r#"{{"destination":"/x","type":"{typ}","source":"{typ}","options":["nosuid","noexec"]}}"#
        ));
        match m.kind {
            Kind::Filesystem {
                source,
                flags,
                data,
                ordinary_dir_only,
            } => {
                assert_eq!(source, typ);
                assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
                assert_eq!(data, None);
                assert!(ordinary_dir_only, "{typ}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn another_filesystem_gets_its_data_and_its_type_as_a_missing_source() {
    let m = one(
        r#"{"destination":"/dev/pts","type":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]}"#,
    );
    assert_eq!(m.typ, "devpts");
    match m.kind {
        Kind::Filesystem {
            source,
            flags,
            data,
            ordinary_dir_only,
        } => {
            assert_eq!(source, "devpts", "no source: the type");
            assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
            assert_eq!(
                data.as_deref(),
                Some("newinstance,ptmxmode=0666,mode=0620,gid=5")
            );
            assert!(!ordinary_dir_only);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn propagation_and_recursive_attributes_stay_with_the_entry() {
    let m = one(
        r#"{"destination":"/x","type":"bind","source":"/x","options":["rbind","rslave","rro"]}"#,
    );
    assert_eq!(
        m.options.propagation,
        vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]
    );
    assert_ne!(m.options.rec_attr_set, 0);
}

#[test]
fn a_destination_written_as_the_roots_host_path_is_the_path_in_the_container() {
    let m = one(r#"{"destination":"/b/rootfs/mnt/../data","type":"tmpfs"}"#);
    assert_eq!(m.destination, Path::new("/data"));
    assert_eq!(
        m.config_destination,
        Path::new("/b/rootfs/mnt/../data"),
        "named as written"
    );
    let plain = one(r#"{"destination":"/data","type":"tmpfs"}"#);
    assert_eq!(plain.destination, Path::new("/data"));
    let relative = one(r#"{"destination":"data","type":"tmpfs"}"#);
    assert_eq!(
        relative.destination,
        Path::new("/data"),
        "from / (deprecated)"
    );
}

#[test]
fn entries_keep_the_configs_order_and_indexes() {
    let mut p = plan(
        r#"[{"destination":"/proc","type":"proc"},
            {"destination":"/a","type":"bind","source":"/a"},
            {"destination":"/tmp","type":"tmpfs"},
            {"destination":"/c","type":"bind","source":"/c"}]"#,
    );
    let order: Vec<(usize, &str)> = p
        .mounts
        .iter()
        .map(|m| (m.index, m.config_destination.to_str().unwrap()))
        .collect();
    assert_eq!(order, [(0, "/proc"), (1, "/a"), (2, "/tmp"), (3, "/c")]);
    let binds: Vec<usize> = p.binds_mut().map(|(i, _)| i).collect();
    assert_eq!(binds, [1, 3], "the binds, for rt's resources");
    assert!(plan("[]").mounts.is_empty());
}

#[test]
fn an_idmapped_bind_carries_its_own_mapping() {
    let b = bind_of(one(
        r#"{"destination":"/x","type":"bind","source":"/x","options":["rbind","ridmap"],
            "uidMappings":[{"containerID":0,"hostID":1000,"size":10}],
            "gidMappings":[{"containerID":0,"hostID":2000,"size":10}]}"#,
    ));
    let idm = b.idmap.expect("idmapped");
    assert!(idm.recursive, "ridmap");
    assert_eq!(
        (
            idm.uid[0].host_id(),
            idm.gid[0].host_id(),
            idm.uid[0].size()
        ),
        (1000, 2000, 10)
    );
    assert!(idm.userns.is_none(), "made by rt before the clone");
}

#[test]
fn idmap_alone_takes_the_containers_mapping() {
    let p = plan_with(
        r#"[{"destination":"/x","type":"bind","source":"/x","options":["idmap"]}]"#,
        Some(
            r#"{"uidMappings":[{"containerID":0,"hostID":3000,"size":5}],
                "gidMappings":[{"containerID":0,"hostID":4000,"size":5}]}"#,
        ),
    )
    .unwrap();
    let b = bind_of(p.mounts.into_iter().next().unwrap());
    let idm = b.idmap.expect("idmapped");
    assert!(!idm.recursive);
    assert_eq!((idm.uid[0].host_id(), idm.gid[0].host_id()), (3000, 4000));
}

/// runc's idmap.bats "implied mapping, userns join": no maps anywhere,
/// the user namespace joined by path carries the mapping.
#[test]
fn idmap_alone_in_a_joined_user_namespace_takes_that_namespace() {
    let p = plan_with(
        r#"[{"destination":"/x","type":"bind","source":"/x","options":["ridmap"]}]"#,
        Some(r#"{"namespaces":[{"type":"user","path":"/proc/42/ns/user"},{"type":"mount"}]}"#),
    )
    .unwrap();
    let idm = bind_of(p.mounts.into_iter().next().unwrap())
        .idmap
        .expect("idmapped");
    assert!(idm.recursive);
    assert!(idm.uid.is_empty() && idm.gid.is_empty());
    assert_eq!(idm.joined_userns, Some("/proc/42/ns/user".into()));
}

#[test]
fn a_mount_without_a_type_that_is_not_a_bind_is_refused_by_name() {
    assert_eq!(
        err_of(
            r#"[{"destination":"/ok","type":"tmpfs"},
                {"destination":"/x","source":"/x","options":["ro"]}]"#
        ),
        "mounts[1] (/x): mount type missing (and not a bind mount)"
    );
}

#[test]
fn a_bind_without_a_source_is_refused_by_name() {
    assert_eq!(
        err_of(r#"[{"destination":"/x","type":"bind"}]"#),
        "mounts[0] (/x): a bind mount needs a source"
    );
}

#[test]
fn a_bad_option_or_idmap_is_refused_with_the_mounts_index() {
    assert_eq!(
        err_of(r#"[{"destination":"/x","type":"tmpfs","options":["ro",""]}]"#),
        "mounts[0]: empty mount option"
    );
    assert_eq!(
        err_of(r#"[{"destination":"/x","type":"tmpfs","options":["idmap"]}]"#),
        "mounts[0]: idmapped mounts are made of bind mounts only"
    );
    assert_eq!(
        err_of(
            r#"[{"destination":"/x","type":"bind","source":"/x",
                "uidMappings":[{"containerID":0,"hostID":1,"size":1}]}]"#
        ),
        "mounts[0]: an idmapped mount needs both uidMappings and gidMappings"
    );
    assert_eq!(
        err_of(r#"[{"destination":"/x","type":"bind","source":"/x","options":["idmap"]}]"#),
        "mounts[0]: idmap needs uidMappings and gidMappings, on the mount or in linux, or a user namespace joined by path"
    );
}

#[test]
fn a_host_path_inside_the_root_is_the_containers_path() {
    let r = Path::new("/b/rootfs");
    let at = |p: &str| within_root(r, Path::new(p));
    assert_eq!(at("/b/rootfs/mnt/x"), Some("/mnt/x".into()));
    assert_eq!(at("/b/rootfs"), Some("/".into()));
    assert_eq!(at("/b/./rootfs//mnt/../etc"), Some("/etc".into()));
    assert_eq!(at("/b/rootfs2/mnt"), None, "a sibling is not inside");
    assert_eq!(at("/mnt"), None);
    assert_eq!(at("/b/rootfs/../x"), None, "it leaves the root");
    assert_eq!(
        within_root(Path::new("rootfs"), Path::new("/b/rootfs/m")),
        None
    );
}

#[test]
fn the_first_field_that_mounts_is_named_and_a_bare_config_mounts_nothing() {
    let spec_of = |extra: &str| {
        let config = format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},
            "process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}}{extra}}}"#
        );
        crate::config::spec::parse(config.as_bytes()).expect("config parses")
    };
    assert_eq!(first_mounting_field(&spec_of("")), None);
    assert_eq!(
        first_mounting_field(&spec_of(r#","mounts":[],"linux":{"maskedPaths":[]}"#)),
        None,
        "empty lists ask for nothing"
    );
    assert_eq!(
        first_mounting_field(&spec_of(
            r#","mounts":[{"destination":"/proc","type":"proc","source":"proc"}],"linux":{"maskedPaths":["/proc/kcore"]}"#
        )),
        Some("mounts")
    );
    assert_eq!(
        first_mounting_field(&spec_of(r#","linux":{"readonlyPaths":["/proc/sys"]}"#)),
        Some("linux.readonlyPaths")
    );
    let ro_root = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
        "process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}}}"#;
    let spec = crate::config::spec::parse(ro_root.as_bytes()).unwrap();
    assert_eq!(first_mounting_field(&spec), Some("root.readonly"));
}
