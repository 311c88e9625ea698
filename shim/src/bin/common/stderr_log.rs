//! A logger for the binaries: each record one line on stderr, after the
//! program's name. (The library logs; only the binaries write.)

struct StderrLog(&'static str);

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("{}: {}", self.0, r.args());
        }
    }

    fn flush(&self) {}
}

/// Sends `warn!` and `error!` to stderr as `<program>: <message>`.
pub fn init(program: &'static str) {
    if log::set_boxed_logger(Box::new(StderrLog(program))).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}
