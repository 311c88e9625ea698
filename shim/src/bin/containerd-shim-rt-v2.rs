//! containerd-shim-rt-v2: rt as a containerd runtime
//! (`--runtime io.containerd.rt.v2`, or `runtime_type` in containerd's
//! config). containerd starts it; it is not meant to be run by hand.

#[path = "common/stderr_log.rs"]
mod stderr_log;

fn main() {
    // The delete action's stderr is what containerd logs as cleanup
    // warnings; the serving shim gets the containerd-shim crate's logger
    // (a FIFO containerd reads) instead.
    if std::env::args().skip(1).last().as_deref() == Some("delete") {
        stderr_log::init("containerd-shim-rt-v2");
    }
    containerd_shim::run::<rt_shim::containerd::Service>("io.containerd.rt.v2", None)
}
