//! The logger behind --log, --log-format and --debug, in runc's shapes:
//! with --log, every line at info and above (all with --debug) goes to
//! the file as logrus writes it (text `time="..." level=... msg="..."`,
//! or JSON), and warnings (with --debug, the rest too) to stderr as
//! `rt: level: msg`. Without --log but with --debug or an explicit
//! --log-format, stderr is the log, as runc's is: every line, the final
//! error included, in that format.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::cli::{Cli, LogFormat};

/// Set when stderr carries logrus lines: main then writes no `rt: msg`
/// line of its own for the error (the logger did).
static STDERR_IS_LOG: AtomicBool = AtomicBool::new(false);

/// Whether the final error went to stderr as a log line already.
pub fn stderr_is_log() -> bool {
    STDERR_IS_LOG.load(Ordering::Relaxed)
}

enum Sink {
    File(Mutex<std::fs::File>),
    Stderr,
}

struct Logger {
    sink: Option<Sink>,
    format: LogFormat,
    debug: bool,
}

/// logrus's name for a level.
fn level_name(l: log::Level) -> &'static str {
    match l {
        log::Level::Error => "error",
        log::Level::Warn => "warning",
        log::Level::Info => "info",
        _ => "debug",
    }
}

/// A value as logrus's text formatter writes it: bare when it is only
/// letters, digits and `-._/@^+`, else quoted (Go's %q; Rust's escaping
/// agrees for what rt logs: quotes, backslashes, control characters).
fn text_value(v: &str) -> String {
    let bare = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if bare {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

/// One log line (no newline) in `format`.
fn line(format: LogFormat, level: log::Level, msg: &str) -> String {
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let level = level_name(level);
    match format {
        LogFormat::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!(
            "time={} level={level} msg={}",
            text_value(&time),
            text_value(msg)
        ),
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        // Info lines (hook output) are for a log.
        m.level() <= log::Level::Warn
            || self.debug
            || (m.level() == log::Level::Info && self.sink.is_some())
    }
    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r.args().to_string();
        match &self.sink {
            Some(Sink::Stderr) => {
                eprintln!("{}", line(self.format, r.level(), &msg));
                return;
            }
            Some(Sink::File(f)) => {
                if let Ok(mut f) = f.lock() {
                    let _ = writeln!(f, "{}", line(self.format, r.level(), &msg));
                }
            }
            None => {}
        }
        // Errors are printed by main; warnings (and with --debug, the
        // rest) go to stderr here.
        if r.level() == log::Level::Warn || (self.debug && r.level() > log::Level::Warn) {
            eprintln!("rt: {}: {msg}", level_name(r.level()));
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
            .map(|f| Sink::File(Mutex::new(f)))
    });
    let sink = match file {
        Some(f) => Some(f),
        None if cli.log.is_none() && (cli.debug || cli.log_format.is_some()) => {
            STDERR_IS_LOG.store(true, Ordering::Relaxed);
            Some(Sink::Stderr)
        }
        None => None,
    };
    let logger = Logger {
        sink,
        format: cli.log_format.unwrap_or(LogFormat::Text),
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
