//! The signal parser (`kill ID SIG`, `stopSignal`): any text is a signal
//! number in range or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = rt::container::signal::parse(text) {
        // 0 is the null signal (kill -0), which rt takes as runc does.
        assert!((0..=64).contains(&n), "{text:?} parsed to {n}");
        let _ = rt::container::signal::name(n);
    }
});
