//! config.json parsing and validation: any bytes give a Spec or an error
//! message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = rt::spec::parse(data) {
        // The bundle directory need not exist: validation of a relative
        // root only joins paths.
        let _ = rt::spec::validate(&spec, Path::new("/nonexistent-bundle"));
        if let Some(p) = spec.process() {
            let _ = rt::spec::check_process(p);
        }
        if let Some(mounts) = spec.mounts() {
            for m in mounts {
                if let Some(o) = m.options() {
                    let _ = rt::mount_options::MountOptions::parse(o);
                }
            }
        }
    }
});
