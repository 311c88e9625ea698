//! What rt asks of CRIU, as data: the options of a dump (or pre-dump)
//! and of a restore, computed from the container's recorded state (or
//! the bundle being restored), the command's flags and a few facts read
//! from the host beforehand (which masked paths are files, the inodes of
//! namespaces joined by path). Nothing here touches the system; `rpc.rs`
//! sends the result, and `to_opts` is the one place a plan becomes
//! CRIU's message.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rust_criu::rust_criu_protobuf::rpc;

use crate::config::mount_plan::{Kind, MountPlan};
use crate::error::{Error, Result};

/// `--manage-cgroups-mode`, in runc's words (soft is its default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupsMode {
    #[default]
    Soft,
    Full,
    Strict,
    Ignore,
}

impl CgroupsMode {
    /// Parses the flag's value; anything else is refused naming the flag.
    pub fn parse(s: &str) -> Result<CgroupsMode> {
        match s {
            "soft" => Ok(CgroupsMode::Soft),
            "full" => Ok(CgroupsMode::Full),
            "strict" => Ok(CgroupsMode::Strict),
            "ignore" => Ok(CgroupsMode::Ignore),
            _ => Err(Error::InvalidArgument {
                arg: format!("--manage-cgroups-mode {s}"),
                reason: "not one of soft, full, strict, ignore".into(),
            }),
        }
    }

    fn rpc(self) -> rpc::Criu_cg_mode {
        match self {
            CgroupsMode::Soft => rpc::Criu_cg_mode::SOFT,
            CgroupsMode::Full => rpc::Criu_cg_mode::FULL,
            CgroupsMode::Strict => rpc::Criu_cg_mode::STRICT,
            CgroupsMode::Ignore => rpc::Criu_cg_mode::IGNORE,
        }
    }
}

/// `--empty-ns`: the namespaces CRIU makes empty instead of restoring
/// their contents. CRIU takes only the network namespace there.
pub fn parse_empty_ns(values: &[String]) -> Result<u32> {
    let mut flags = 0u32;
    for v in values {
        match v.as_str() {
            "network" | "net" => flags |= clone_newnet(),
            _ => {
                return Err(Error::InvalidArgument {
                    arg: format!("--empty-ns {v}"),
                    reason: "CRIU can leave only the network namespace empty (\"network\")".into(),
                })
            }
        }
    }
    Ok(flags)
}

fn clone_newnet() -> u32 {
    // CLONE_NEWNET is 0x40000000: positive, fits a u32.
    u32::try_from(libc::CLONE_NEWNET).unwrap_or(0x4000_0000)
}

/// The flags both commands share, as CRIU takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Common {
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    pub cgroups_mode: CgroupsMode,
    /// CLONE_NEW* bits of `--empty-ns`.
    pub empty_ns: u32,
}

/// `rt checkpoint`'s flags.
#[derive(Debug, Clone, Default)]
pub struct DumpFlags {
    pub common: Common,
    pub leave_running: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub pre_dump: bool,
    /// `--parent-path`, relative to the image directory as CRIU reads it.
    pub parent_path: Option<PathBuf>,
    pub status_fd: Option<i32>,
    /// `--page-server ADDRESS:PORT`, parsed.
    pub page_server: Option<(String, i32)>,
}

/// What rt read of the live container before planning its dump.
#[derive(Debug, Clone, Default)]
pub struct DumpFacts {
    /// The container's masked paths that are files (a bind of /dev/null
    /// each); masked directories are tmpfs mounts CRIU dumps itself.
    pub masked_files: Vec<String>,
    /// The namespaces the container joined by path, with their inodes:
    /// CRIU leaves them out of the image and names them by key.
    pub joined: Vec<(LinuxNamespaceType, u64)>,
    /// The container's cgroup directory, which CRIU freezes for the dump.
    pub cgroup_dir: Option<PathBuf>,
    /// Bind destinations that lead through a symlink in the root, with
    /// where the mount really is there (CRIU knows a mount by that path).
    pub resolved: Vec<(String, String)>,
}

/// Whether CRIU dumps or only pre-dumps (memory, the container left
/// running).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpKind {
    Dump,
    PreDump,
}

/// A dump, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpPlan {
    pub kind: DumpKind,
    pub pid: i32,
    /// The container's root filesystem on the host.
    pub root: PathBuf,
    pub common: Common,
    pub leave_running: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub track_mem: bool,
    pub parent_img: Option<PathBuf>,
    pub status_fd: Option<i32>,
    pub page_server: Option<(String, i32)>,
    /// Mounts CRIU must not dump but name by a key (their destination);
    /// the restore binds their source there again.
    pub ext_mounts: Vec<(String, String)>,
    /// CRIU's `--external` entries: namespaces joined by path.
    pub externals: Vec<String>,
    pub freeze_cgroup: Option<PathBuf>,
    /// CRIU's configuration file (see [`config_file`]).
    pub config_file: Option<String>,
    pub log_file: &'static str,
}

/// The annotation naming a container's own CRIU configuration file (an
/// empty value: none at all); runc and crun read the same one.
pub const CRIU_CONFIG_ANNOTATION: &str = "org.criu.config";

/// rt's CRIU configuration file when the container names none, as runc
/// has /etc/criu/runc.conf. Settings there override rt's; CRIU ignores
/// a file that does not exist.
pub const DEFAULT_CRIU_CONFIG: &str = "/etc/criu/rt.conf";

/// The configuration file CRIU is told to read for this container.
pub fn config_file(spec: &Spec) -> Option<String> {
    match spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(CRIU_CONFIG_ANNOTATION))
    {
        Some(f) if f.is_empty() => None,
        Some(f) => Some(f.clone()),
        None => Some(DEFAULT_CRIU_CONFIG.into()),
    }
}

/// The key CRIU knows a joined namespace of `typ` by (in the image and
/// in the restore's inherited descriptors): `extRoot<Type>NS`, the name
/// runc gives it, so images move between the two runtimes.
pub fn ns_key(typ: LinuxNamespaceType) -> Option<&'static str> {
    match typ {
        LinuxNamespaceType::Network => Some("extRootNetNS"),
        LinuxNamespaceType::Pid => Some("extRootPidNS"),
        _ => None,
    }
}

fn ns_criu_name(typ: LinuxNamespaceType) -> Option<&'static str> {
    match typ {
        LinuxNamespaceType::Network => Some("net"),
        LinuxNamespaceType::Pid => Some("pid"),
        _ => None,
    }
}

/// The namespaces of `spec` joined by path that CRIU must treat as
/// external (network and pid); any other joined namespace cannot be
/// checkpointed and is refused with its field.
pub fn joined_namespaces(spec: &Spec) -> Result<Vec<(LinuxNamespaceType, PathBuf)>> {
    let mut out = Vec::new();
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for (i, ns) in nss.iter().enumerate() {
        let Some(path) = ns.path().as_ref().filter(|p| !p.as_os_str().is_empty()) else {
            continue;
        };
        match ns.typ() {
            LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {
                out.push((ns.typ(), path.clone()));
            }
            // Joined by path and shared with someone else: CRIU would
            // dump them as the container's own. runc refuses them too.
            LinuxNamespaceType::User
            | LinuxNamespaceType::Mount
            | LinuxNamespaceType::Ipc
            | LinuxNamespaceType::Uts
            | LinuxNamespaceType::Cgroup
            | LinuxNamespaceType::Time => {
                return Err(Error::InvalidField {
                    field: format!("linux.namespaces[{i}].path"),
                    reason: format!(
                        "a {:?} namespace joined by path cannot be checkpointed by CRIU",
                        ns.typ()
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// The bind mounts of `spec` as CRIU's external mounts: on dump each is
/// named by its destination (key and value both); on restore the key is
/// bound to the source again.
pub fn bind_mounts(spec: &Spec, bundle: &Path, rootfs: &Path) -> Result<Vec<(String, PathBuf)>> {
    Ok(mounts(spec, bundle, rootfs)?
        .into_iter()
        .filter_map(|(dest, source)| Some((dest, source?)))
        .collect())
}

/// Every mount of `spec`, each `(destination, a bind's source)`, in the
/// config's order.
pub fn mounts(spec: &Spec, bundle: &Path, rootfs: &Path) -> Result<Vec<(String, Option<PathBuf>)>> {
    let plan = MountPlan::new(spec, bundle, rootfs).map_err(|msg| Error::Config {
        file: bundle.join("config.json"),
        msg,
    })?;
    Ok(plan
        .mounts
        .iter()
        .map(|m| {
            let source = match &m.kind {
                Kind::Bind(b) => Some(b.source.clone()),
                _ => None,
            };
            (m.destination.display().to_string(), source)
        })
        .collect())
}

/// Plans the dump of a container: its init `pid`, its `root`, its config
/// as it was created, the flags and what rt read of it.
pub fn dump(
    spec: &Spec,
    bundle: &Path,
    root: &Path,
    pid: i32,
    flags: &DumpFlags,
    facts: &DumpFacts,
) -> Result<DumpPlan> {
    // Keyed by the config's destination, which the restore binds again.
    let mut ext_mounts: Vec<(String, String)> = bind_mounts(spec, bundle, root)?
        .into_iter()
        .map(|(dest, _)| {
            let at = facts
                .resolved
                .iter()
                .find(|(d, _)| *d == dest)
                .map_or_else(|| dest.clone(), |(_, at)| at.clone());
            (at, dest)
        })
        .collect();
    for m in &facts.masked_files {
        ext_mounts.push((m.clone(), "/dev/null".into()));
    }
    let externals = facts
        .joined
        .iter()
        .filter_map(|(typ, ino)| Some(format!("{}[{ino}]:{}", ns_criu_name(*typ)?, ns_key(*typ)?)))
        .collect();
    let kind = if flags.pre_dump {
        DumpKind::PreDump
    } else {
        DumpKind::Dump
    };
    Ok(DumpPlan {
        kind,
        pid,
        root: root.to_path_buf(),
        common: flags.common.clone(),
        // A pre-dump always leaves the container running.
        leave_running: flags.leave_running || flags.pre_dump,
        tcp_skip_in_flight: flags.tcp_skip_in_flight,
        link_remap: flags.link_remap,
        // Memory changes are tracked for a later dump on top of this one.
        track_mem: flags.pre_dump || flags.parent_path.is_some(),
        parent_img: flags.parent_path.clone(),
        status_fd: flags.status_fd,
        page_server: flags.page_server.clone(),
        ext_mounts,
        externals,
        freeze_cgroup: facts.cgroup_dir.clone(),
        config_file: config_file(spec),
        log_file: match kind {
            DumpKind::Dump => "dump.log",
            DumpKind::PreDump => "pre-dump.log",
        },
    })
}

/// A restore, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePlan {
    /// Where rt binds the container's root for CRIU to restore into.
    pub root: PathBuf,
    pub common: Common,
    /// Each bind mount's destination (the key the dump named it by) and
    /// its source on this host; the masked files' name, /dev/null, to /dev/null.
    pub ext_mounts: Vec<(String, String)>,
    /// The namespaces joined by path: their key and the path rt opens to
    /// hand CRIU (inherit_fd).
    pub joined: Vec<(String, PathBuf)>,
    /// The cgroup the restored tasks go to (the root of the image's tree
    /// is moved there), as a path below the cgroup mount.
    pub cgroup_root: Option<String>,
    /// A console socket was given: CRIU hands rt the pty master.
    pub orphan_pts_master: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
    /// CRIU's configuration file (see [`config_file`]).
    pub config_file: Option<String>,
    pub log_file: &'static str,
}

/// `restore`'s own flags beyond the shared ones.
#[derive(Debug, Clone, Default)]
pub struct RestoreFlags {
    pub common: Common,
    pub console_socket: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

/// Plans the restore of `spec` (the bundle's config) with its root bound
/// at `criu_root`, into the cgroup `cgroup_path`.
pub fn restore(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    criu_root: &Path,
    cgroup_path: Option<&str>,
    flags: &RestoreFlags,
) -> Result<RestorePlan> {
    let mut ext_mounts: Vec<(String, String)> = bind_mounts(spec, bundle, rootfs)?
        .into_iter()
        // CRIU takes the source as a clean path: `bundle/.` is `bundle`.
        .map(|(dest, src)| {
            (
                dest,
                src.components().collect::<PathBuf>().display().to_string(),
            )
        })
        .collect();
    // The dump named every masked file's mount by its source, /dev/null
    // (the value of its key): one mapping binds them all again.
    ext_mounts.push(("/dev/null".into(), "/dev/null".into()));
    let joined = joined_namespaces(spec)?
        .into_iter()
        .filter_map(|(typ, path)| Some((ns_key(typ)?.to_string(), path)))
        .collect();
    if let Some(p) = &flags.lsm_profile {
        if !p.contains(':') {
            return Err(Error::InvalidArgument {
                arg: format!("--lsm-profile {p}"),
                reason: "not TYPE:NAME (apparmor:PROFILE or selinux:LABEL)".into(),
            });
        }
    }
    Ok(RestorePlan {
        root: criu_root.to_path_buf(),
        common: flags.common.clone(),
        ext_mounts,
        joined,
        cgroup_root: cgroup_path.map(str::to_string),
        orphan_pts_master: flags.console_socket,
        lsm_profile: flags.lsm_profile.clone(),
        lsm_mount_context: flags.lsm_mount_context.clone(),
        config_file: config_file(spec),
        log_file: "restore.log",
    })
}

/// A mount of the container, as its mountpoint is made before a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountTarget {
    /// The destination, resolved in the root.
    pub dest: PathBuf,
    /// A bind's source; `None` for any other filesystem.
    pub source: Option<PathBuf>,
    /// The mountpoint is a directory (a bind of a file's is not).
    pub dir: bool,
}

/// Where a mountpoint is made before a restore: in the root, or, for a
/// mount nested in an earlier bind, in that bind's source (where the
/// create made it, through the outer mount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mountpoint {
    /// `None`: the container's root; else the outer bind's source.
    pub base: Option<PathBuf>,
    /// The path below `base`.
    pub path: PathBuf,
    /// A file (the bind's source is not a directory).
    pub file: bool,
}

/// The mountpoints CRIU needs, for the container's mounts in the
/// config's order. The root may be a fresh snapshot (containerd's restore
/// mounts a new one), so a directory the create made for a mount (`/run`
/// in busybox) is gone. A mount nested in an earlier bind gets its
/// mountpoint in that bind's source (the host's, where it may be gone
/// since the dump); one nested in any other earlier filesystem gets none:
/// CRIU restores a tmpfs's contents, and proc, sysfs, mqueue and devpts
/// have their own directories.
pub fn mountpoints(targets: &[MountTarget]) -> Vec<Mountpoint> {
    targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let outer = targets[..i]
                .iter()
                .filter(|o| o.dir && t.dest != o.dest && t.dest.starts_with(&o.dest))
                .max_by_key(|o| o.dest.components().count());
            match outer {
                Some(MountTarget {
                    dest,
                    source: Some(src),
                    ..
                }) => Some(Mountpoint {
                    base: Some(src.clone()),
                    path: Path::new("/").join(t.dest.strip_prefix(dest).unwrap_or(&t.dest)),
                    file: !t.dir,
                }),
                Some(_) => None,
                None => Some(Mountpoint {
                    base: None,
                    path: t.dest.clone(),
                    file: !t.dir,
                }),
            }
        })
        .collect()
}

/// `--page-server ADDRESS:PORT`, parsed (runc's form; IPv6 in brackets).
pub fn parse_page_server(s: &str) -> Result<(String, i32)> {
    let bad = |reason: &str| Error::InvalidArgument {
        arg: format!("--page-server {s}"),
        reason: reason.into(),
    };
    let (addr, port) = s.rsplit_once(':').ok_or_else(|| bad("not ADDRESS:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number up to 65535"))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr.is_empty() {
        return Err(bad("no address"));
    }
    Ok((addr.to_string(), i32::from(port)))
}

fn common_opts(o: &mut rpc::Criu_opts, c: &Common, log_file: &str) {
    o.set_log_level(4);
    o.set_log_file(log_file.to_string());
    o.set_manage_cgroups(true);
    o.set_manage_cgroups_mode(c.cgroups_mode.rpc());
    o.set_notify_scripts(true);
    o.set_tcp_established(c.tcp_established);
    o.set_ext_unix_sk(c.ext_unix_sk);
    o.set_shell_job(c.shell_job);
    o.set_file_locks(c.file_locks);
    o.set_auto_dedup(c.auto_dedup);
    if c.lazy_pages {
        o.set_lazy_pages(true);
    }
    if c.empty_ns != 0 {
        o.set_empty_ns(c.empty_ns);
    }
}

fn ext_mount_map(pairs: &[(String, String)]) -> Vec<rpc::Ext_mount_map> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut m = rpc::Ext_mount_map::new();
            m.set_key(k.clone());
            m.set_val(v.clone());
            m
        })
        .collect()
}

impl DumpPlan {
    pub fn request_type(&self) -> rpc::Criu_req_type {
        match self.kind {
            DumpKind::Dump => rpc::Criu_req_type::DUMP,
            DumpKind::PreDump => rpc::Criu_req_type::PRE_DUMP,
        }
    }

    /// CRIU's options for this dump, with the image and work directories
    /// rt opened.
    pub fn to_opts(&self, images_dir_fd: i32, work_dir_fd: i32) -> rpc::Criu_opts {
        let mut o = rpc::Criu_opts::new();
        o.set_images_dir_fd(images_dir_fd);
        o.set_work_dir_fd(work_dir_fd);
        common_opts(&mut o, &self.common, self.log_file);
        if let Some(f) = &self.config_file {
            o.set_config_file(f.clone());
        }
        o.set_pid(self.pid);
        o.set_root(self.root.display().to_string());
        o.set_leave_running(self.leave_running);
        o.set_tcp_skip_in_flight(self.tcp_skip_in_flight);
        o.set_link_remap(self.link_remap);
        // The container's terminal is a pty rt's caller holds: CRIU
        // leaves it out and the restore hands a new master to the caller.
        o.set_orphan_pts_master(true);
        if self.track_mem {
            o.set_track_mem(true);
        }
        if let Some(p) = &self.parent_img {
            o.set_parent_img(p.display().to_string());
        }
        if let Some(fd) = self.status_fd {
            o.set_status_fd(fd);
        }
        if let Some((addr, port)) = &self.page_server {
            let mut ps = rpc::Criu_page_server_info::new();
            ps.set_address(addr.clone());
            ps.set_port(*port);
            o.ps = protobuf::MessageField::some(ps);
        }
        o.ext_mnt = ext_mount_map(&self.ext_mounts);
        o.external = self.externals.clone();
        if let Some(cg) = &self.freeze_cgroup {
            o.set_freeze_cgroup(cg.display().to_string());
        }
        o
    }
}

impl RestorePlan {
    /// CRIU's options for this restore; `joined_fds` are the descriptors
    /// (inherited by criu) of `joined`, in order, and `stdio` those of
    /// the pipes the restored process's stdio is remapped to, by key.
    pub fn to_opts(
        &self,
        images_dir_fd: i32,
        work_dir_fd: i32,
        joined_fds: &[i32],
        stdio: &[(String, i32)],
    ) -> rpc::Criu_opts {
        let mut o = rpc::Criu_opts::new();
        o.set_images_dir_fd(images_dir_fd);
        o.set_work_dir_fd(work_dir_fd);
        common_opts(&mut o, &self.common, self.log_file);
        if let Some(f) = &self.config_file {
            o.set_config_file(f.clone());
        }
        o.set_root(self.root.display().to_string());
        // The restored init becomes rt's child, not criu's.
        o.set_rst_sibling(true);
        if self.orphan_pts_master {
            o.set_orphan_pts_master(true);
        }
        o.ext_mnt = ext_mount_map(&self.ext_mounts);
        let mut inherit = Vec::new();
        for ((key, _), fd) in self.joined.iter().zip(joined_fds) {
            let mut i = rpc::Inherit_fd::new();
            i.set_key(key.clone());
            i.set_fd(*fd);
            inherit.push(i);
        }
        for (key, fd) in stdio {
            let mut i = rpc::Inherit_fd::new();
            i.set_key(key.clone());
            i.set_fd(*fd);
            inherit.push(i);
        }
        o.inherit_fd = inherit;
        if let Some(path) = &self.cgroup_root {
            let mut r = rpc::Cgroup_root::new();
            r.set_path(path.clone());
            o.cg_root = vec![r];
        }
        if let Some(p) = &self.lsm_profile {
            o.set_lsm_profile(p.clone());
        }
        if let Some(c) = &self.lsm_mount_context {
            o.set_lsm_mount_context(c.clone());
        }
        o
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
