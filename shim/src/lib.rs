//! rt's per-container shim. `monitor` is the standalone `rt-shim` that
//! `rt create` hands a container to: the init's parent, which reaps it,
//! records its exit, keeps its output and holds its terminal. `containerd`
//! is containerd's shim v2 Task API (`containerd-shim-rt-v2`).

pub mod containerd;
pub mod monitor;
