//! The namespace plan from config entries, without root: what the clone
//! creates, what is joined by whom and in what order, the pid-namespace
//! intermediate, who writes a new user namespace's maps and how, time
//! offsets, the hostname, `rt exec`'s plan, and what a bad entry is told.

use std::path::Path;

use super::*;

const ROOT: Host = Host {
    mode: Mode::Root,
    uid: 0,
    gid: 0,
};
const USER: Host = Host {
    mode: Mode::User { euid: 1000 },
    uid: 1000,
    gid: 1000,
};
const NS_ROOT: Host = Host {
    mode: Mode::NamespacedRoot,
    uid: 0,
    gid: 0,
};

const MAPS: &str = r#""uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
    "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]"#;

/// The plan of a config whose `linux` is `linux` and whose top level has
/// `top` too (`"hostname":"x",` say), for rt running as `host`.
fn plan_with(top: &str, linux: &str, host: Host) -> Result<NamespacePlan, String> {
    let config = format!(
        r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},{top}
        "process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},
        "linux":{linux}}}"#
    );
    let spec = crate::config::spec::parse(config.as_bytes()).expect("config parses");
    NamespacePlan::new(&spec, host)
}

fn plan_as(linux: &str, host: Host) -> NamespacePlan {
    plan_with("", linux, host).unwrap_or_else(|e| panic!("{linux}: {e}"))
}

fn plan(linux: &str) -> NamespacePlan {
    plan_as(linux, ROOT)
}

/// `linux` with these namespaces (and `more` linux fields).
fn nss(list: &str, more: &str) -> String {
    let more = if more.is_empty() {
        String::new()
    } else {
        format!(",{more}")
    };
    format!(r#"{{"namespaces":[{list}]{more}}}"#)
}

fn err_as(top: &str, linux: &str, host: Host) -> String {
    plan_with(top, linux, host).unwrap_err()
}

fn err_of(linux: &str) -> String {
    err_as("", linux, ROOT)
}

/// The joins' types and paths, in order.
fn joins(j: &[NsJoin]) -> Vec<(&'static str, &Path)> {
    j.iter().map(|j| (name(j.typ), j.path.as_path())).collect()
}

fn map(container: u32, host: u32, size: u32) -> LinuxIdMapping {
    oci_spec::runtime::LinuxIdMappingBuilder::default()
        .container_id(container)
        .host_id(host)
        .size(size)
        .build()
        .expect("mapping")
}

#[test]
fn rt_spec_s_namespaces_are_all_created_by_the_one_clone() {
    let p = plan(&nss(
        r#"{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}"#,
        "",
    ));
    assert_eq!(
        p.clone_flags,
        CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWCGROUP
    );
    assert!(p.unshare_flags.is_empty());
    assert!(p.parent_joins.is_empty() && p.child_joins.is_empty());
    assert!(p.new_mount && p.new_uts && p.new_cgroup && p.own_mounts);
    assert!(!p.new_user && !p.in_userns && p.id_maps.is_none());
    assert!(!p.pid_intermediate && !p.new_time);
}

#[test]
fn no_namespaces_leave_the_init_in_rt_s_own_and_the_root_entered_by_chroot() {
    let p = plan("{}");
    assert_eq!(p, NamespacePlan::empty());
    assert!(!p.own_mounts, "no mount namespace: nothing is mounted");
}

#[test]
fn an_empty_path_is_a_new_namespace_as_runc_takes_it() {
    let p = plan(&nss(r#"{"type":"network","path":""}"#, ""));
    assert_eq!(p.clone_flags, CloneFlags::CLONE_NEWNET);
    assert!(p.child_joins.is_empty());
}

#[test]
fn namespaces_given_by_path_are_joined_by_the_init_in_the_configs_order() {
    let p = plan(&nss(
        r#"{"type":"network","path":"/run/netns/a"},{"type":"mount"},{"type":"ipc","path":"/proc/7/ns/ipc"}"#,
        "",
    ));
    assert_eq!(
        joins(&p.child_joins),
        [
            ("net", Path::new("/run/netns/a")),
            ("ipc", Path::new("/proc/7/ns/ipc"))
        ]
    );
    assert_eq!(p.clone_flags, CloneFlags::CLONE_NEWNS, "only the new one");
    assert!(p.parent_joins.is_empty());
    assert!(!p.join_others_before_user, "no user namespace joined");
}

#[test]
fn a_joined_user_namespace_is_the_inits_first_join_and_it_becomes_root_there() {
    let p = plan(&nss(
        r#"{"type":"network","path":"/proc/7/ns/net"},{"type":"user","path":"/proc/7/ns/user"},{"type":"ipc","path":"/proc/7/ns/ipc"}"#,
        "",
    ));
    let order: Vec<_> = joins(&p.child_joins).into_iter().map(|j| j.0).collect();
    assert_eq!(order, ["user", "net", "ipc"]);
    assert!(p.user_joined_by_init && !p.user_in_parent);
    assert!(
        p.join_others_before_user,
        "the others are tried first, while privileged"
    );
    assert!(p.in_userns);
    assert!(p.id_maps.is_none(), "a joined user namespace has its maps");
}

#[test]
fn pid_and_time_by_path_are_joined_by_rt_before_the_clone() {
    let p = plan(&nss(
        r#"{"type":"time","path":"/proc/7/ns/time"},{"type":"pid","path":"/proc/7/ns/pid"},{"type":"uts","path":"/proc/7/ns/uts"}"#,
        "",
    ));
    let parent: Vec<_> = joins(&p.parent_joins).into_iter().map(|j| j.0).collect();
    assert_eq!(parent, ["time", "pid"], "in the config's order");
    let child: Vec<_> = joins(&p.child_joins).into_iter().map(|j| j.0).collect();
    assert_eq!(child, ["uts"]);
    assert!(p.clone_flags.is_empty() && !p.new_time);
}

#[test]
fn rootless_a_joined_user_namespace_goes_to_rt_first_when_it_joins_pid() {
    let linux = nss(
        r#"{"type":"pid","path":"/proc/7/ns/pid"},{"type":"user","path":"/proc/7/ns/user"},{"type":"mount","path":"/proc/7/ns/mnt"}"#,
        "",
    );
    let p = plan_as(&linux, USER);
    let parent: Vec<_> = joins(&p.parent_joins).into_iter().map(|j| j.0).collect();
    assert_eq!(parent, ["user", "pid"], "the owner first");
    let child: Vec<_> = joins(&p.child_joins).into_iter().map(|j| j.0).collect();
    assert_eq!(child, ["mnt"]);
    assert!(p.user_in_parent && !p.user_joined_by_init);
    assert!(!p.join_others_before_user);
    assert!(p.in_userns && p.own_mounts && !p.new_mount);
}

#[test]
fn as_root_a_joined_user_namespace_stays_the_inits_beside_a_joined_pid_namespace() {
    let linux = nss(
        r#"{"type":"pid","path":"/proc/7/ns/pid"},{"type":"user","path":"/proc/7/ns/user"}"#,
        "",
    );
    for host in [ROOT, NS_ROOT] {
        let p = plan_as(&linux, host);
        let parent: Vec<_> = joins(&p.parent_joins).into_iter().map(|j| j.0).collect();
        assert_eq!(parent, ["pid"], "{host:?}");
        let child: Vec<_> = joins(&p.child_joins).into_iter().map(|j| j.0).collect();
        assert_eq!(child, ["user"], "{host:?}");
        assert!(!p.user_in_parent && p.user_joined_by_init, "{host:?}");
    }
}

#[test]
fn rootless_without_a_pid_or_time_join_the_init_joins_the_user_namespace() {
    let p = plan_as(
        &nss(
            r#"{"type":"user","path":"/proc/7/ns/user"},{"type":"network","path":"/proc/7/ns/net"}"#,
            "",
        ),
        USER,
    );
    assert!(p.parent_joins.is_empty());
    assert!(!p.user_in_parent && p.user_joined_by_init);
}

#[test]
fn new_namespaces_beside_a_joined_user_namespace_are_unshared_by_the_init() {
    let p = plan(&nss(
        r#"{"type":"user","path":"/proc/7/ns/user"},{"type":"network"},{"type":"ipc"},{"type":"mount"},{"type":"uts"}"#,
        "",
    ));
    assert_eq!(
        p.unshare_flags,
        CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS,
        "owned by the joined user namespace"
    );
    assert!(p.clone_flags.is_empty());
    assert!(p.new_mount && p.new_uts && p.own_mounts);
}

#[test]
fn a_new_pid_namespace_in_a_joined_user_namespace_takes_the_intermediate() {
    let p = plan(&nss(
        r#"{"type":"user","path":"/proc/7/ns/user"},{"type":"pid"},{"type":"network","path":"/proc/7/ns/net"}"#,
        "",
    ));
    assert!(p.pid_intermediate);
    assert!(!p.clone_flags.contains(CloneFlags::CLONE_NEWPID));
    assert!(!p.unshare_flags.contains(CloneFlags::CLONE_NEWPID));
    assert!(
        !p.join_others_before_user,
        "the intermediate joined them and the user namespace"
    );
    assert!(p.user_joined_by_init, "the init still becomes its root");
}

#[test]
fn rootless_a_new_pid_namespace_is_cloned_from_inside_the_joined_user_namespace() {
    let p = plan_as(
        &nss(
            r#"{"type":"user","path":"/proc/7/ns/user"},{"type":"pid"},{"type":"time","path":"/proc/7/ns/time"}"#,
            "",
        ),
        USER,
    );
    assert!(p.user_in_parent, "rt joins it for the time namespace");
    assert!(!p.pid_intermediate);
    assert_eq!(p.clone_flags, CloneFlags::CLONE_NEWPID);
}

#[test]
fn rootless_a_new_pid_namespace_without_a_parent_join_takes_the_intermediate() {
    let p = plan_as(
        &nss(
            r#"{"type":"user","path":"/proc/7/ns/user"},{"type":"pid"}"#,
            "",
        ),
        USER,
    );
    assert!(!p.user_in_parent && p.pid_intermediate);
    assert!(p.clone_flags.is_empty());
}

#[test]
fn a_new_user_namespace_is_cloned_and_root_writes_its_maps_itself() {
    let p = plan(&nss(r#"{"type":"user"},{"type":"mount"}"#, MAPS));
    assert_eq!(
        p.clone_flags,
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS
    );
    let m = p.id_maps.expect("maps to write");
    assert_eq!(m.uid, [map(0, 100000, 65536)]);
    assert_eq!(m.gid, [map(0, 100000, 65536)]);
    assert_eq!(
        (m.uid_writer, m.gid_writer),
        (MapWriter::Kernel, MapWriter::Kernel)
    );
    assert!(!m.keep_dumpable);
    assert!(p.new_user && p.in_userns && !p.user_joined_by_init);
}

#[test]
fn rootless_its_own_ids_are_written_by_rt_with_setgroups_denied() {
    let linux = nss(
        r#"{"type":"user"}"#,
        r#""uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
        "gidMappings":[{"containerID":0,"hostID":1000,"size":1}]"#,
    );
    let m = plan_as(&linux, USER).id_maps.expect("maps");
    assert_eq!(m.uid_writer, MapWriter::Kernel);
    assert_eq!(m.gid_writer, MapWriter::KernelDenySetgroups);
    assert!(m.keep_dumpable, "written through the init's /proc files");
}

#[test]
fn rootless_ranges_go_through_newuidmap_and_newgidmap() {
    let m = plan_as(&nss(r#"{"type":"user"}"#, MAPS), USER)
        .id_maps
        .expect("maps");
    assert_eq!(
        (m.uid_writer, m.gid_writer),
        (MapWriter::Helper, MapWriter::Helper)
    );
}

#[test]
fn rootless_one_id_that_is_not_its_own_or_more_than_one_needs_the_helper() {
    let cases = [
        (map(0, 1001, 1), "another user's id"),
        (map(0, 1000, 2), "its own and the next"),
    ];
    for (m, why) in cases {
        let maps = IdMaps::new(vec![m], vec![m], USER);
        assert_eq!(maps.uid_writer, MapWriter::Helper, "{why}");
        assert_eq!(maps.gid_writer, MapWriter::Helper, "{why}");
    }
    let two = IdMaps::new(vec![map(0, 1000, 1), map(1, 1000, 1)], vec![], USER);
    assert_eq!(two.uid_writer, MapWriter::Helper, "two mappings");
}

#[test]
fn root_in_a_user_namespace_writes_any_map_but_is_in_one_already() {
    let p = plan_as(&nss(r#"{"type":"user"}"#, MAPS), NS_ROOT);
    let m = p.id_maps.expect("maps");
    assert_eq!(
        (m.uid_writer, m.gid_writer),
        (MapWriter::Kernel, MapWriter::Kernel)
    );
    assert!(m.keep_dumpable, "not the host's root");
    let none = plan_as(&nss(r#"{"type":"mount"}"#, ""), NS_ROOT);
    assert!(none.in_userns, "rt's own user namespace (rootless Podman)");
    assert!(!plan(&nss(r#"{"type":"mount"}"#, "")).in_userns);
}

#[test]
fn a_new_user_namespace_without_uid_or_gid_mappings_is_refused_by_field() {
    let uid_only = r#""uidMappings":[{"containerID":0,"hostID":1000,"size":1}]"#;
    let gid_only = r#""gidMappings":[{"containerID":0,"hostID":1000,"size":1}]"#;
    let cases = [
        (
            "",
            "linux.uidMappings: a new user namespace needs uid mappings",
        ),
        (
            r#""uidMappings":[]"#,
            "linux.uidMappings: a new user namespace needs uid mappings",
        ),
        (
            gid_only,
            "linux.uidMappings: a new user namespace needs uid mappings",
        ),
        (
            uid_only,
            "linux.gidMappings: a new user namespace needs gid mappings",
        ),
    ];
    for (more, want) in cases {
        assert_eq!(err_of(&nss(r#"{"type":"user"}"#, more)), want, "{more}");
    }
}

#[test]
fn id_mappings_without_a_user_namespace_are_refused() {
    for list in ["", r#"{"type":"mount"}"#] {
        assert_eq!(
            err_of(&nss(list, MAPS)),
            "linux.uidMappings: id mappings need a new user namespace in linux.namespaces"
        );
    }
    // Joined: spec.rs compares them with the namespace's own.
    assert!(plan_with(
        "",
        &nss(r#"{"type":"user","path":"/proc/7/ns/user"}"#, MAPS),
        ROOT
    )
    .is_ok());
}

#[test]
fn a_duplicate_namespace_type_is_refused_with_its_index() {
    let e = err_of(&nss(
        r#"{"type":"pid"},{"type":"network"},{"type":"network","path":"/run/netns/a"}"#,
        "",
    ));
    assert_eq!(e, r#"linux.namespaces[2]: duplicate namespace type "net""#);
}

#[test]
fn a_relative_namespace_path_is_refused_with_its_index() {
    let e = err_of(&nss(
        r#"{"type":"pid"},{"type":"uts","path":"proc/1/ns/uts"}"#,
        "",
    ));
    assert_eq!(
        e,
        r#"linux.namespaces[1].path: "proc/1/ns/uts" must be an absolute path"#
    );
}

#[test]
fn time_offsets_are_written_by_rt_into_the_new_time_namespace_clock_by_clock() {
    let p = plan(&nss(
        r#"{"type":"time"}"#,
        r#""timeOffsets":{"monotonic":{"secs":-5,"nanosecs":7},"boottime":{"secs":3600}}"#,
    ));
    assert!(p.new_time);
    assert!(p.clone_flags.is_empty(), "rt unshares it, not the clone");
    assert_eq!(
        p.time_offsets.as_deref(),
        Some("boottime 3600 0\nmonotonic -5 7\n")
    );
    let bare = plan(&nss(r#"{"type":"time"}"#, ""));
    assert!(bare.new_time && bare.time_offsets.is_none());
}

#[test]
fn time_offsets_need_a_new_time_namespace_and_known_clocks() {
    let offsets = r#""timeOffsets":{"monotonic":{"secs":1}}"#;
    for list in ["", r#"{"type":"time","path":"/proc/7/ns/time"}"#] {
        assert_eq!(
            err_of(&nss(list, offsets)),
            "linux.timeOffsets: needs a new time namespace in linux.namespaces",
            "{list}"
        );
    }
    assert_eq!(
        err_of(&nss(
            r#"{"type":"time"}"#,
            r#""timeOffsets":{"realtime":{"secs":1}}"#
        )),
        r#"linux.timeOffsets: unknown clock "realtime" (monotonic or boottime)"#
    );
}

#[test]
fn the_hostname_and_domainname_are_set_in_a_new_uts_namespace() {
    let p = plan_with(
        r#""hostname":"web","domainname":"example.org","#,
        &nss(r#"{"type":"uts"}"#, ""),
        ROOT,
    )
    .expect("plan");
    assert_eq!(p.hostname.as_deref(), Some("web"));
    assert_eq!(p.domainname.as_deref(), Some("example.org"));
    assert!(p.new_uts);
}

#[test]
fn the_hostname_is_set_in_a_joined_uts_namespace_as_runc_does() {
    let p = plan_with(
        r#""hostname":"web","#,
        &nss(r#"{"type":"uts","path":"/proc/7/ns/uts"}"#, ""),
        ROOT,
    )
    .expect("plan");
    assert_eq!(p.hostname.as_deref(), Some("web"));
    assert!(!p.new_uts);
}

#[test]
fn a_hostname_or_domainname_without_a_uts_namespace_is_refused() {
    for top in [r#""hostname":"web","#, r#""domainname":"example.org","#] {
        assert_eq!(
            err_as(top, &nss(r#"{"type":"mount"}"#, ""), ROOT),
            "hostname: setting a hostname or domainname needs a uts namespace",
            "{top}"
        );
    }
}

#[test]
fn an_empty_hostname_is_not_set_and_needs_no_uts_namespace() {
    let p = plan_with(
        r#""hostname":"","domainname":"","#,
        &nss(r#"{"type":"mount"}"#, ""),
        ROOT,
    )
    .expect("plan");
    assert!(p.hostname.is_none() && p.domainname.is_none());
}

#[test]
fn a_joined_mount_namespace_is_the_containers_own_for_the_root() {
    let p = plan(&nss(r#"{"type":"mount","path":"/proc/7/ns/mnt"}"#, ""));
    assert!(p.own_mounts && !p.new_mount);
    assert!(p.joins(LinuxNamespaceType::Mount));
    assert!(!p.joins(LinuxNamespaceType::Network));
}

fn exec_join(typ: LinuxNamespaceType) -> NsJoin {
    NsJoin {
        typ,
        path: format!("/proc/7/ns/{}", name(typ)).into(),
    }
}

#[test]
fn exec_joins_user_first_and_mount_last_with_pid_and_time_rt_s() {
    use LinuxNamespaceType::*;
    let differing: Vec<_> = [Mount, Time, Network, Pid, User, Ipc]
        .into_iter()
        .map(exec_join)
        .collect();
    let p = NamespacePlan::exec(&differing, ROOT);
    let child: Vec<_> = joins(&p.child_joins).into_iter().map(|j| j.0).collect();
    assert_eq!(child, ["user", "ipc", "net", "mnt"]);
    let parent: Vec<_> = joins(&p.parent_joins).into_iter().map(|j| j.0).collect();
    assert_eq!(parent, ["pid", "time"]);
    assert!(p.user_joined_by_init && p.join_others_before_user && p.in_userns);
    assert!(p.clone_flags.is_empty() && p.unshare_flags.is_empty());
}

#[test]
fn rootless_exec_joins_the_user_namespace_itself_before_the_pid_namespace() {
    use LinuxNamespaceType::*;
    let differing: Vec<_> = [User, Pid, Mount].into_iter().map(exec_join).collect();
    let p = NamespacePlan::exec(&differing, USER);
    let parent: Vec<_> = joins(&p.parent_joins).into_iter().map(|j| j.0).collect();
    assert_eq!(parent, ["user", "pid"]);
    let child: Vec<_> = joins(&p.child_joins).into_iter().map(|j| j.0).collect();
    assert_eq!(child, ["mnt"]);
    assert!(p.user_in_parent && !p.user_joined_by_init && p.in_userns);
}

#[test]
fn exec_into_a_container_in_rt_s_namespaces_joins_nothing() {
    let p = NamespacePlan::exec(&[], ROOT);
    assert!(p.parent_joins.is_empty() && p.child_joins.is_empty());
    assert!(!p.in_userns);
    assert!(NamespacePlan::exec(&[], NS_ROOT).in_userns);
}

#[test]
fn exec_order_is_user_first_and_mount_last() {
    assert_eq!(EXEC_ORDER.first(), Some(&LinuxNamespaceType::User));
    assert_eq!(EXEC_ORDER.last(), Some(&LinuxNamespaceType::Mount));
    let mut names: Vec<_> = EXEC_ORDER.iter().map(|t| name(*t)).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 8, "every type once");
}
