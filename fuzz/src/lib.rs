//! What each fuzz target runs: one function per parser that reads outside
//! input, each proving "an error, never a panic" (a panic or a failed
//! assertion here is the finding). cargo-fuzz drives them from
//! `libfuzzer/` (`make fuzz`, nightly); `tests/seeds.rs` replays every
//! seed and every saved finding through them on stable, in `cargo test`.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::exit)]

use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;
use rt_image::image::{choose_platform, Manifest};
use rt_image::platform::Platform;
use rt_image::unpack::{unpack, Compression, Whiteouts};

/// A target: takes any bytes, panics only on a finding.
pub type Target = fn(&[u8]);

/// Every target by its name: the name of its cargo-fuzz binary and of its
/// folders of seeds (`seeds/NAME`) and findings (`regressions/NAME`).
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("image_manifest", image_manifest),
    ("layer_unpack", layer_unpack),
    ("mount_options", mount_options),
    ("seccomp", seccomp),
    ("signal", signal),
];

/// config.json parsing and validation: any bytes give a Spec or an error
/// message.
pub fn config(data: &[u8]) {
    let Ok(spec) = rt::config::spec::parse(data) else {
        return;
    };
    // The bundle directory need not exist: validation of a relative root
    // only joins paths.
    let _ = rt::config::spec::validate(&spec, Path::new("/nonexistent-bundle"));
    if let Some(p) = spec.process() {
        let _ = rt::config::spec::check_process(p);
    }
    for m in spec.mounts().iter().flatten() {
        if let Some(o) = m.options() {
            let _ = rt::config::mount_options::MountOptions::parse(o);
        }
    }
}

/// The seccomp profile compiler: any `linux.seccomp` object compiles to
/// BPF or gives an error.
pub fn seccomp(data: &[u8]) {
    if let Ok(profile) = serde_json::from_slice::<LinuxSeccomp>(data) {
        let _ = rt::seccomp::compile(&profile);
    }
}

/// The mount option parser: any list of option strings parses or gives an
/// error naming the option.
pub fn mount_options(data: &[u8]) {
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
}

/// The signal parser (`kill ID SIG`, `stopSignal`): any text is a signal
/// number in range or an error.
pub fn signal(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = rt::container::signal::parse(text) {
        // 0 is the null signal (kill -0), which rt takes as runc does.
        assert!((0..=64).contains(&n), "{text:?} parsed to {n}");
        let _ = rt::container::signal::name(n);
    }
}

/// rt-image's manifest parser: any bytes are a manifest, an index (whose
/// platform choice then runs) or an error.
pub fn image_manifest(data: &[u8]) {
    for media_type in [None, Some("application/vnd.oci.image.index.v1+json")] {
        if let Ok(Manifest::Index(index)) = Manifest::parse(data, media_type, "fuzz") {
            let _ = choose_platform(&index, &Platform::host(), "fuzz");
        }
    }
}

/// rt-image's layer unpacker: any tar stream (plain, gzip or zstd) unpacks
/// into its directory or is refused, and nothing is written beside the
/// directory.
pub fn layer_unpack(data: &[u8]) {
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let dest = scratch.path().join("layer");
    std::fs::create_dir(&dest).expect("the layer directory");
    let Ok(reader) = Compression::sniff(data).decoder(data) else {
        return;
    };
    let mode = if data.len().is_multiple_of(2) {
        Whiteouts::Overlay
    } else {
        Whiteouts::Apply
    };
    let _ = unpack(reader, &dest, mode, "fuzz");
    let beside: Vec<_> = std::fs::read_dir(scratch.path())
        .expect("the scratch directory")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        beside,
        vec![std::ffi::OsString::from("layer")],
        "escaped the layer"
    );
}
