//! Raw system calls that nix does not wrap, with their `unsafe`: the one
//! place in the crate where it is allowed. Each function is a thin, safe
//! wrapper that owns what the kernel returns.

pub mod bpf;
pub mod clone;
pub mod fd;
pub mod mount;
pub mod ns;
pub mod numa;
pub mod openat2;
pub mod pidfd;
pub mod process;
pub mod sched;
pub mod seccomp;
pub mod socket;
pub mod tty;
