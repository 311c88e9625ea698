//! The seccomp profile compiler: any `linux.seccomp` object compiles to
//! BPF or gives an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = serde_json::from_slice::<LinuxSeccomp>(data) {
        let _ = rt::seccomp::compile(&profile);
    }
});
