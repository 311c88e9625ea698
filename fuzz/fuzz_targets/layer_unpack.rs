//! rt-image's layer unpacker: any tar stream (plain, gzip or zstd) unpacks
//! into its directory or is refused, never a panic, and nothing is written
//! beside the directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rt_image::unpack::{unpack, Compression, Whiteouts};

fuzz_target!(|data: &[u8]| {
    let scratch = tempfile::tempdir().unwrap();
    let dest = scratch.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let Ok(reader) = Compression::sniff(data).decoder(data) else {
        return;
    };
    let mode = if data.len() % 2 == 0 {
        Whiteouts::Overlay
    } else {
        Whiteouts::Apply
    };
    let _ = unpack(reader, &dest, mode, "fuzz");
    let beside: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        beside,
        vec![std::ffi::OsString::from("layer")],
        "escaped the layer"
    );
});
