//! The logger behind --log, --log-format and --debug: warnings (and with
//! --debug, everything) on stderr, and with --log every line at info and
//! above in a file, as text or JSON.

use std::io::Write;
use std::sync::Mutex;

use crate::cli::{Cli, LogFormat};

/// Writes log lines to stderr and, with --log, to a file in the chosen
/// format (containerd reads the `msg` of the last json error line).
struct Logger {
    file: Option<Mutex<std::fs::File>>,
    format: LogFormat,
    debug: bool,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        // Info lines (hook output) are for the log file.
        m.level() <= log::Level::Warn
            || self.debug
            || (m.level() == log::Level::Info && self.file.is_some())
    }
    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            _ => "debug",
        };
        let msg = r.args().to_string();
        if let Some(f) = &self.file {
            let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            let line = match self.format {
                LogFormat::Json => {
                    serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
                }
                LogFormat::Text => format!("time={time:?} level={level} msg={msg:?}"),
            };
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{line}");
            }
        }
        // Errors are printed by main; warnings (and with --debug, the
        // rest) go to stderr here.
        if r.level() == log::Level::Warn || (self.debug && r.level() > log::Level::Warn) {
            eprintln!("rt: {level}: {msg}");
        }
    }
    fn flush(&self) {}
}

/// Installs the logger the global flags ask for. A --log file that cannot
/// be opened is said on stderr and left out.
pub fn init(cli: &Cli) {
    let file = cli.log.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| eprintln!("rt: cannot open --log {}: {e}", p.display()))
            .ok()
            .inspect(|f| rt::init::keep_in_child(std::os::fd::AsRawFd::as_raw_fd(f)))
            .map(Mutex::new)
    });
    let logger = Logger {
        file,
        format: cli.log_format,
        debug: cli.debug,
    };
    let _ = log::set_boxed_logger(Box::new(logger));
    log::set_max_level(if cli.debug {
        log::LevelFilter::Debug
    } else if cli.log.is_some() {
        log::LevelFilter::Info
    } else {
        log::LevelFilter::Warn
    });
}
