//! rt's per-container shim. `monitor` is the standalone `rt-shim` that
//! `rt create` hands a container to: the init's parent, which reaps it,
//! records its exit, keeps its output and holds its terminal. `containerd`
//! is containerd's shim v2 Task API (`containerd-shim-rt-v2`).
//!
//! The library logs (the `log` crate) and returns errors; only the
//! binaries in `src/bin/` write to stdout or stderr, or exit. It makes no
//! raw system call of its own: forks, descriptors taken by number, signal
//! dispositions and terminal ioctls are the rt library's safe wrappers
//! (`rt::sys`, `rt::tty`), and `forbid` keeps it so.

#![forbid(unsafe_code)]
#![deny(
    clippy::undocumented_unsafe_blocks,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit
)]

pub mod containerd;
pub mod monitor;
