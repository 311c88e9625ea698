//! A process's stdin, stdout and stderr as containerd hands them over:
//! paths of FIFOs (or empty for none) that containerd, or its client,
//! holds the other ends of.
//!
//! Output goes straight to the FIFO: the process writes to it with no copy
//! in between. It is opened read-write so that opening never blocks and a
//! client that reattaches later finds it open. Input is copied through a
//! pipe, so that `CloseIO` can end the process's stdin while containerd
//! keeps its FIFO. A terminal's pty master is copied both ways.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The write end of a process's stdin pipe; `None` once closed.
pub type StdinWriter = Arc<Mutex<Option<File>>>;

/// Opens a process's output FIFO (`/dev/null` when there is none).
pub fn open_output(path: &str) -> Result<OwnedFd, String> {
    check_scheme(path)?;
    let path = if path.is_empty() { "/dev/null" } else { path };
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| format!("open {path}: {e}"))
}

/// containerd's logging URIs (`binary://`, `file://`) need a logger the
/// shim does not have yet; say so rather than writing to a file named
/// like the URI. Checked before anything is made.
pub fn check_scheme(path: &str) -> Result<(), String> {
    match path.split_once("://") {
        Some((scheme, _)) if scheme != "fifo" => Err(format!(
            "stdio {path}: the {scheme}:// logging scheme is not supported by containerd-shim-rt-v2"
        )),
        _ => Ok(()),
    }
}

/// The process's stdin: `/dev/null`, or the read end of a pipe whose
/// writer `copy_input` fills once the process exists.
pub fn open_input(path: &str) -> Result<(OwnedFd, StdinWriter), String> {
    check_scheme(path)?;
    let writer: StdinWriter = Arc::new(Mutex::new(None));
    if path.is_empty() {
        let null = File::options()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/null")
            .map_err(|e| format!("open /dev/null: {e}"))?;
        return Ok((null.into(), writer));
    }
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("pipe for stdin: {e}"))?;
    *writer.lock().unwrap() = Some(File::from(w));
    Ok((r, writer))
}

/// `CloseIO` of stdin: ctr and the CRI plugin send it right after closing
/// their end of the FIFO, while what they wrote may still be in it, so the
/// copier gets a moment to drain it and close the writer at its EOF; after
/// `grace` (someone else still holds the FIFO) the writer is closed here.
pub fn close_stdin(writer: &StdinWriter, grace: Duration) {
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if writer.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    writer.lock().unwrap_or_else(|p| p.into_inner()).take();
}

/// Copies the FIFO at `path` into the stdin pipe until containerd closes
/// it or `CloseIO` closes the writer. (Started only for a process that
/// exists: the open blocks until containerd's side is open.)
pub fn copy_input(path: &str, writer: &StdinWriter) {
    if path.is_empty() {
        return;
    }
    let fifo = path.to_string();
    let to = writer.clone();
    std::thread::spawn(move || {
        let Ok(mut src) = File::options()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&fifo)
        else {
            to.lock().unwrap().take();
            return;
        };
        let mut buf = [0u8; 32 * 1024];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut guard = to.lock().unwrap();
            let Some(dst) = guard.as_mut() else { return };
            if dst.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        to.lock().unwrap().take();
    });
}

/// Copies a terminal: stdin FIFO to the pty master and the master to the
/// stdout FIFO. The receiver gets a message when the output side is done
/// (the last holder of the pty's other side is gone).
pub fn copy_console(
    master: BorrowedFd<'_>,
    stdin: &str,
    stdout: &str,
) -> Result<mpsc::Receiver<()>, String> {
    let dup = || {
        master
            .try_clone_to_owned()
            .map(File::from)
            .map_err(|e| format!("dup the pty master: {e}"))
    };
    let (done_tx, done_rx) = mpsc::channel();
    if !stdin.is_empty() {
        let mut to = dup()?;
        let fifo = stdin.to_string();
        std::thread::spawn(move || {
            if let Ok(mut src) = File::options()
                .read(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&fifo)
            {
                let _ = std::io::copy(&mut src, &mut to);
            }
        });
    }
    let mut from = dup()?;
    let out = if stdout.is_empty() {
        "/dev/null".to_string()
    } else {
        stdout.to_string()
    };
    std::thread::spawn(move || {
        if let Ok(mut dst) = File::options()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&out)
        {
            // Ends with EIO once nothing holds the pty's other side.
            let _ = std::io::copy(&mut from, &mut dst);
        }
        let _ = done_tx.send(());
    });
    Ok(done_rx)
}

/// Waits (boundedly) for a terminal's output to be copied out.
pub fn drain(done: &mpsc::Receiver<()>) {
    let _ = done.recv_timeout(Duration::from_secs(2));
}

/// Sets the terminal's window size (clamped to the kernel's 16 bits).
pub fn resize(master: BorrowedFd<'_>, width: u32, height: u32) -> Result<(), String> {
    rt::tty::console::set_size(&master, height, width)
        .map_err(|e| format!("resize the terminal: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_uris_are_refused_by_name() {
        let e = open_output("binary:///usr/bin/logger?x=1").unwrap_err();
        assert!(e.contains("binary:// logging scheme"), "{e}");
        assert!(open_output("").is_ok(), "no path is /dev/null");
    }

    #[test]
    fn stdin_is_copied_until_close_io() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (r, writer) = open_input(fifo.to_str().unwrap()).unwrap();
        copy_input(fifo.to_str().unwrap(), &writer);
        let mut client = File::options().write(true).open(&fifo).unwrap();
        client.write_all(b"hello\n").unwrap();
        let mut proc_in = File::from(r);
        let mut got = [0u8; 6];
        proc_in.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello\n");
        // CloseIO: the process sees EOF although the client keeps its end.
        writer.lock().unwrap().take();
        let mut rest = Vec::new();
        proc_in.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        drop(client);
    }
}
