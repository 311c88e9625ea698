//! `rt --version`: rt's version, the commit it was built from and the
//! runtime-spec version it implements.

const SPEC_VERSION: &str = rt::config::spec::OCI_VERSION;

pub fn version() -> Result<(), crate::StdoutError> {
    outln!("rt version {}", env!("CARGO_PKG_VERSION"))?;
    outln!("commit: {}", env!("RT_COMMIT"))?;
    outln!("spec: {SPEC_VERSION}")
}
