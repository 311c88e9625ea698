//! config.json parsing and validation: any bytes give a Spec or an error
//! message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = rt::config::spec::parse(data) {
        // The bundle directory need not exist: validation of a relative
        // root only joins paths.
        let _ = rt::config::spec::validate(&spec, Path::new("/nonexistent-bundle"));
        if let Some(p) = spec.process() {
            let _ = rt::config::spec::check_process(p);
        }
        if let Some(mounts) = spec.mounts() {
            for m in mounts {
                if let Some(o) = m.options() {
                    let _ = rt::config::mount_options::MountOptions::parse(o);
                }
            }
        }
    }
});
