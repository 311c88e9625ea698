//! One file per command that is more than a call into the library; the
//! rest are dispatched straight from `main`.

pub mod attach;
pub mod checkpoint;
pub mod create;
pub mod events;
pub mod exec;
pub mod list;
pub mod logs;
pub mod ps;
pub mod restore;
pub mod run;
pub mod spec;
pub mod update;
pub mod version;
