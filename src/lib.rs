//! rt: an OCI container runtime. The library does everything that makes
//! and manages a container; `src/bin/rt.rs` is a thin command line over it.

pub mod attach;
pub mod capabilities;
pub mod cgroup_resources;
pub mod cgroups;
pub mod channel;
pub mod console;
pub mod container;
pub mod devices;
pub mod error;
pub mod exec;
pub mod features;
pub mod foreground;
pub mod fs_util;
pub mod hooks;
pub mod idmap;
pub mod init;
pub mod logs;
pub mod mount_options;
pub mod namespaces;
pub mod process;
pub mod procfs_handle;
pub mod rootfs;
pub mod sched;
pub mod seccomp;
pub mod seccomp_notify;
pub mod shim;
pub mod signal;
pub mod spec;
pub mod spec_template;
pub mod state;
pub mod stats;
pub mod syscalls_x86_64;
pub mod sysctl;

pub use error::{Error, Result};
