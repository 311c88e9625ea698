//! The container's terminal and output: the console socket and pty,
//! the foreground proxy of `rt run`, `rt attach` and `rt logs`.

pub mod attach;
pub mod console;
pub mod foreground;
pub mod logs;
pub mod raw;
