//! The files the shim writes in a container's state directory: how the
//! init ended, the output log, the attach socket.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use crate::error::Result;

/// How the init ended, written by the shim as `exit.json`.
pub const EXIT_FILE: &str = "exit.json";
/// The container's stdout and stderr (or its terminal's output).
pub const LOG_FILE: &str = "log";
/// The socket `rt attach` connects to when the container has a terminal.
pub const ATTACH_SOCKET: &str = "attach.sock";

/// The exit of a container's init, as the shim saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The shell's convention: the exit code, or 128 + the signal.
    pub status: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// When the shim reaped it (RFC 3339, UTC).
    #[serde(rename = "exitedAt")]
    pub exited_at: String,
}

impl ExitRecord {
    pub fn write(&self, container_dir: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).expect("exit record serializes");
        write_atomic(&container_dir.join(EXIT_FILE), &json, 0o644)
    }

    /// The record, if the shim wrote one.
    pub fn read(container_dir: &Path) -> Option<ExitRecord> {
        let data = std::fs::read(container_dir.join(EXIT_FILE)).ok()?;
        serde_json::from_slice(&data).ok()
    }
}
