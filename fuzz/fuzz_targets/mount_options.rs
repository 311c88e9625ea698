//! The mount option parser: any list of option strings parses or gives an
//! error naming the option, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options: Vec<&str> = text.split(',').collect();
    if let Ok(o) = rt::config::mount_options::MountOptions::parse(&options) {
        let _ = o.data_string();
    }
    for o in &options {
        let _ = rt::config::mount_options::propagation(o);
    }
});
