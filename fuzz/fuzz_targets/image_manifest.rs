//! rt-image's manifest parser: any bytes are a manifest, an index (whose
//! platform choice then runs) or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rt_image::image::{choose_platform, Manifest};
use rt_image::platform::Platform;

fuzz_target!(|data: &[u8]| {
    for media_type in [None, Some("application/vnd.oci.image.index.v1+json")] {
        if let Ok(Manifest::Index(index)) = Manifest::parse(data, media_type, "fuzz") {
            let _ = choose_platform(&index, &Platform::host(), "fuzz");
        }
    }
});
