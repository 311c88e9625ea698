//! What config.json says: loading and validating it, the `rt spec`
//! template and mount options. document.

pub mod apparmor;
pub mod capabilities;
pub mod idmap;
pub mod mempolicy;
pub mod mount_options;
pub mod mount_plan;
pub mod namespace_plan;
pub mod namespaces;
pub mod netdev;
pub mod process_plan;
pub mod ranges;
pub mod sched;
pub mod spec;
pub mod sysctl;
pub mod template;
