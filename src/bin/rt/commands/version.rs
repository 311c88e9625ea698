//! `rt --version`: rt's version, the commit it was built from and the
//! runtime-spec version it implements.

const SPEC_VERSION: &str = rt::config::spec::OCI_VERSION;

pub fn version() {
    println!("rt version {}", env!("CARGO_PKG_VERSION"));
    println!("commit: {}", env!("RT_COMMIT"));
    println!("spec: {SPEC_VERSION}");
}
