//! `rt logs`: the output a container's shim kept, filtered by --since and
//! --tail, followed with -f until the shim is gone.

use std::io::Write;
use std::os::fd::AsFd;

use anyhow::{bail, Result};
use rt::container;
use rt::state::Root;

/// `--since` and `--tail` as a filter, then the log printed.
pub fn logs(
    root: &Root,
    id: &str,
    since: Option<&str>,
    tail: Option<usize>,
    follow: bool,
    timestamps: bool,
) -> Result<()> {
    let filter = rt::tty::logs::Filter {
        since: since.map(rt::tty::logs::parse_since).transpose()?,
        tail,
    };
    show(root, id, &filter, follow, timestamps)
}

fn show(
    root: &Root,
    id: &str,
    filter: &rt::tty::logs::Filter,
    follow: bool,
    timestamps: bool,
) -> Result<()> {
    use rt::tty::logs::{Entry, Stream};
    let c = container::Container::load(root, id)?;
    let path = c.dir.join(rt::state::LOG_FILE);
    if !path.exists() {
        bail!(
            "container {id} has no log: its output went to the terminal or files of whoever created it (rt keeps a log with a shim when create's output is a terminal, or with --log-output)"
        );
    }
    let print = |entries: &[Entry]| -> Result<()> {
        let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
        for e in entries {
            let w: &mut dyn Write = match e.stream {
                Stream::Stdout => &mut out,
                Stream::Stderr => &mut err,
            };
            if timestamps {
                write!(w, "{} ", humantime::format_rfc3339_nanos(e.time))?;
            }
            w.write_all(&e.output())?;
        }
        out.flush()?;
        Ok(())
    };
    let (entries, mut offset) = rt::tty::logs::read(&path, filter)?;
    print(&entries)?;
    if !follow {
        return Ok(());
    }
    // Until the shim, which writes the log, is gone.
    loop {
        let shim_gone = c.shim_pidfd().is_none_or(|fd| {
            container::wait_exit(fd.as_fd(), std::time::Duration::from_millis(200))
        });
        let mut more = Vec::new();
        offset = match rt::tty::logs::read_from(&path, offset, &mut more) {
            Ok(o) => o,
            // Deleted while we followed it.
            Err(_) => return Ok(()),
        };
        let more: Vec<Entry> = more
            .into_iter()
            .filter(|e| filter.since.is_none_or(|s| e.time >= s))
            .collect();
        print(&more)?;
        if shim_gone {
            return Ok(());
        }
    }
}
