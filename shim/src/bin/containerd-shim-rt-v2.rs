//! containerd-shim-rt-v2: rt as a containerd runtime
//! (`--runtime io.containerd.rt.v2`, or `runtime_type` in containerd's
//! config). containerd starts it; it is not meant to be run by hand.

fn main() {
    containerd_shim::run::<rt_shim::containerd::Service>("io.containerd.rt.v2", None)
}
