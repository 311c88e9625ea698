//! containerd-shim-rt-v2: rt as a containerd runtime
//! (`--runtime io.containerd.rt.v2`, or `runtime_type` in containerd's
//! config). containerd starts it; it is not meant to be run by hand.

#![forbid(unsafe_code)]

use std::io::Write;

use rt_shim::containerd::boot::{self, Invocation, RUNTIME_ID};

#[path = "common/stderr_log.rs"]
mod stderr_log;

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let flags = match containerd_shim::parse(&args) {
        Ok(f) => f,
        Err(e) => fail(e),
    };
    match Invocation::of(&flags) {
        // The delete action's stderr is what containerd logs as cleanup
        // warnings; the serving shim gets the containerd-shim crate's
        // logger (a FIFO containerd reads) instead.
        Invocation::Crate => {
            if flags.action == "delete" {
                stderr_log::init("containerd-shim-rt-v2");
            }
            containerd_shim::run::<rt_shim::containerd::Service>(RUNTIME_ID, None)
        }
        Invocation::Start => {
            stderr_log::init("containerd-shim-rt-v2");
            // containerd reads stdout and stderr together: the reply and
            // nothing else.
            match boot::start(&flags) {
                Ok((_, reply)) => {
                    let mut out = std::io::stdout().lock();
                    if let Err(e) = out.write_all(&reply).and_then(|()| out.flush()) {
                        fail(e)
                    }
                }
                Err(e) => fail(e),
            }
        }
        Invocation::Serve => {
            if let Err(e) = boot::serve(&flags) {
                fail(e)
            }
        }
    }
}

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("{RUNTIME_ID}: {e}");
    std::process::exit(1)
}
