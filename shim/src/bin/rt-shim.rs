//! rt-shim: the per-container monitor `rt create` hands a container to.
//! Not meant to be run by hand; see `rt --help` (`--shim`).

#![forbid(unsafe_code)]

#[path = "common/stderr_log.rs"]
mod stderr_log;

fn main() {
    stderr_log::init("rt-shim");
    let args = match rt_shim::monitor::Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rt-shim: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = rt_shim::monitor::run(args) {
        eprintln!("rt-shim: {e}");
        std::process::exit(1);
    }
}
