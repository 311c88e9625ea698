//! rt: an OCI container runtime. The library does everything that makes
//! and manages a container; `src/bin/rt/` is a thin command line over it.
//! ARCHITECTURE.md is the map of these modules.
//!
//! `unsafe` lives in `sys/` only: everything else is denied it.

#![deny(unsafe_code)]
// The library returns errors and logs; only the binary prints or exits.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::exit)]

pub mod cgroup;
pub mod checkpoint;
pub mod config;
pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod init;
pub mod resctrl;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod spawn;
pub mod state;
#[allow(unsafe_code)]
pub mod sys;
pub mod tty;

pub use error::{Error, Result};
