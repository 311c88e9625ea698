//! The standalone monitor. `rt create` forks, makes the container (so the
//! init is this process's child) and execs `rt-shim` with the descriptors
//! it is to watch. One thread and one poll loop: SIGCHLD through a
//! signalfd, the container's stdout/stderr pipes or its pty master, the
//! attach socket and its clients. When the init has exited the shim
//! records how, drains what output is left and exits.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    accept4, bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use rt::container::shim::Report;
use rt::state::{ExitRecord, ATTACH_SOCKET, LOG_FILE};
use rt::tty::attach::Frame;
use rt::tty::logs::{Stream, Writer};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("usage: {0}")]
    Usage(String),
    #[error("{0}: {1}")]
    Sys(String, Errno),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

fn sys(what: &str) -> impl FnOnce(Errno) -> Error + '_ {
    move |e| Error::Sys(what.to_string(), e)
}

/// What `rt create` hands over, from rt-shim's command line.
pub struct Args {
    /// The container's state directory.
    pub dir: PathBuf,
    pub init: Pid,
    /// Where to say `Ready`.
    pub report: OwnedFd,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The pty master of a terminal container.
    pub console: Option<OwnedFd>,
    /// No log: the container writes to its creator's descriptors.
    pub no_log: bool,
}

impl Args {
    /// Parses `--dir D --init PID --report-fd N [--stdout-fd N
    /// --stderr-fd N] [--console-fd N] [--no-log]`. The descriptors were
    /// left open for us by the exec; each is taken exactly once.
    pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, Error> {
        let (mut dir, mut init, mut report) = (None, None, None);
        let (mut stdout, mut stderr, mut console, mut no_log) = (None, None, None, false);
        while let Some(flag) = argv.next() {
            if flag == "--no-log" {
                no_log = true;
                continue;
            }
            let value = argv
                .next()
                .ok_or_else(|| Error::Usage(format!("{flag} needs a value")))?;
            let num = || -> Result<i32, Error> {
                value
                    .parse()
                    .map_err(|_| Error::Usage(format!("{flag} {value:?}: not a number")))
            };
            match flag.as_str() {
                "--dir" => dir = Some(PathBuf::from(&value)),
                "--init" => init = Some(Pid::from_raw(num()?)),
                "--report-fd" => report = Some(take_fd(num()?)?),
                "--stdout-fd" => stdout = Some(take_fd(num()?)?),
                "--stderr-fd" => stderr = Some(take_fd(num()?)?),
                "--console-fd" => console = Some(take_fd(num()?)?),
                _ => return Err(Error::Usage(format!("unknown flag {flag}"))),
            }
        }
        let missing =
            |f: &str| Error::Usage(format!("{f} is required (rt-shim is started by rt create)"));
        Ok(Args {
            dir: dir.ok_or_else(|| missing("--dir"))?,
            init: init.ok_or_else(|| missing("--init"))?,
            report: report.ok_or_else(|| missing("--report-fd"))?,
            stdout,
            stderr,
            console,
            no_log,
        })
    }
}

fn take_fd(fd: RawFd) -> Result<OwnedFd, Error> {
    // SAFETY: F_GETFD only reads flags; it tells whether `fd` is open.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(Error::Usage(format!("descriptor {fd} is not open")));
    }
    // Nothing of ours should reach a process we might start.
    // SAFETY: as above, on an open descriptor.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: rt create left `fd` open for us and nothing else in this
    // process owns it; parse takes each flag's descriptor once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An attached `rt attach` client.
struct Client {
    sock: OwnedFd,
    buf: Vec<u8>,
    /// Gone or too slow; removed at the end of the round, so that the
    /// poll results still line up with the clients until then.
    dead: bool,
}

/// Runs until the init has exited and its output is logged.
pub fn run(args: Args) -> Result<(), Error> {
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    chld.thread_block().map_err(sys("block SIGCHLD"))?;
    let sigfd = SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(sys("signalfd"))?;
    // A client that goes away must not take the shim with it.
    // SAFETY: setting a signal's disposition to ignore installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };

    let mut log = if args.no_log {
        None
    } else {
        let path = args.dir.join(LOG_FILE);
        let f: File = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::Io(format!("open {}", path.display()), e))?;
        Some(Writer::new(f))
    };
    let listener = match &args.console {
        Some(_) => Some(listen_attach(&args.dir)?),
        None => None,
    };
    Report::Ready.send(args.report.as_raw_fd());
    drop(args.report);

    let mut outputs: Vec<(OwnedFd, Stream)> = Vec::new();
    outputs.extend(args.stdout.map(|fd| (fd, Stream::Stdout)));
    outputs.extend(args.stderr.map(|fd| (fd, Stream::Stderr)));
    let mut console = args.console;
    let mut clients: Vec<Client> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    // The init may have exited before SIGCHLD was blocked: that signal is
    // gone, so look once before waiting for the next.
    let mut check_children = true;

    loop {
        if check_children && reap(&sigfd, args.init, &args.dir) {
            break;
        }
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        for (fd, _) in &outputs {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        if let Some(m) = &console {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if let Some(l) = &listener {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
        }
        for c in &clients {
            fds.push(PollFd::new(c.sock.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::Sys("poll".into(), e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut i = 1;

        // Output pipes: to the log. EOF when every writer is gone.
        let mut closed = Vec::new();
        for (n, (fd, stream)) in outputs.iter().enumerate() {
            if ready[i] && !pump(fd, *stream, &mut log, &mut clients, &mut buf) {
                closed.push(n);
            }
            i += 1;
        }
        for n in closed.into_iter().rev() {
            outputs.remove(n);
        }
        if let Some(m) = &console {
            if ready[i] && !pump(m, Stream::Stdout, &mut log, &mut clients, &mut buf) {
                // EIO: no one holds the terminal's other side any more.
                console = None;
            }
            i += 1;
        }
        // Clients first: one accepted below was not polled this round.
        let listener_at = i;
        if listener.is_some() {
            i += 1;
        }
        for c in clients.iter_mut() {
            if ready[i] && !from_client(c, console.as_ref(), &mut buf) {
                c.dead = true;
            }
            i += 1;
        }
        clients.retain(|c| !c.dead);

        if let Some(l) = &listener {
            if ready[listener_at] {
                if let Ok(fd) = accept4(
                    l.as_raw_fd(),
                    SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                ) {
                    // SAFETY: accept4 returned a new descriptor we own.
                    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
                    clients.push(Client {
                        sock,
                        buf: Vec::new(),
                        dead: false,
                    });
                }
            }
        }

        check_children = ready[0];
    }
    // The init is gone: take what output is left, then leave.
    for (fd, stream) in &outputs {
        drain(fd, *stream, &mut log, &mut clients, &mut buf);
    }
    if let Some(m) = &console {
        drain(m, Stream::Stdout, &mut log, &mut clients, &mut buf);
    }
    if let Some(w) = &mut log {
        let _ = w.finish();
    }
    let _ = std::fs::remove_file(args.dir.join(ATTACH_SOCKET));
    Ok(())
}

/// Listens on `<dir>/attach.sock`, bound through the directory's
/// descriptor (a socket path is limited to 108 bytes).
fn listen_attach(dir: &std::path::Path) -> Result<OwnedFd, Error> {
    let dirfd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys("open the state directory"))?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(sys("socket"))?;
    let path = format!("/proc/self/fd/{}/{ATTACH_SOCKET}", dirfd.as_raw_fd());
    let addr = UnixAddr::new(path.as_str()).map_err(sys("attach socket address"))?;
    bind(sock.as_raw_fd(), &addr).map_err(sys("bind the attach socket"))?;
    listen(&sock, Backlog::new(8).expect("small backlog")).map_err(sys("listen"))?;
    Ok(sock)
}

/// Moves one read's worth from `fd` to the log and the attached clients.
/// False at EOF or error.
fn pump(
    fd: &OwnedFd,
    stream: Stream,
    log: &mut Option<Writer<File>>,
    clients: &mut [Client],
    buf: &mut [u8],
) -> bool {
    match nix::unistd::read(fd, buf) {
        Ok(0) => false,
        Ok(n) => {
            if let Some(w) = log {
                let _ = w.write(stream, &buf[..n]);
            }
            to_clients(clients, &buf[..n]);
            true
        }
        Err(Errno::EINTR | Errno::EAGAIN) => true,
        Err(_) => false,
    }
}

/// A client that cannot take the output is dropped, not waited for.
fn to_clients(clients: &mut [Client], data: &[u8]) {
    for c in clients.iter_mut().filter(|c| !c.dead) {
        c.dead = !write_all(c.sock.as_fd(), data);
    }
}

/// Reads what is left without blocking (the writers may never close).
fn drain(
    fd: &OwnedFd,
    stream: Stream,
    log: &mut Option<Writer<File>>,
    clients: &mut [Client],
    buf: &mut [u8],
) {
    // SAFETY: F_SETFL on a descriptor we hold, to make the reads below
    // return EAGAIN instead of waiting.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Some(w) = log {
                    let _ = w.write(stream, &buf[..n]);
                }
                to_clients(clients, &buf[..n]);
            }
        }
    }
}

/// Handles a client's frames: input to the terminal, window sizes. False
/// when the client is gone or spoke nonsense.
fn from_client(c: &mut Client, console: Option<&OwnedFd>, buf: &mut [u8]) -> bool {
    match nix::unistd::read(&c.sock, buf) {
        Ok(0) => return false,
        Ok(n) => c.buf.extend_from_slice(&buf[..n]),
        Err(Errno::EINTR | Errno::EAGAIN) => return true,
        Err(_) => return false,
    }
    loop {
        match Frame::decode(&mut c.buf) {
            Ok(None) => return true,
            Ok(Some(Frame::Input(data))) => {
                if let Some(m) = console {
                    write_all(m.as_fd(), &data);
                }
            }
            Ok(Some(Frame::Resize { rows, cols })) => {
                if let Some(m) = console {
                    let _ = rt::tty::console::set_size(m, rows, cols);
                }
            }
            Err(_) => return false,
        }
    }
}

fn write_all(fd: std::os::fd::BorrowedFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// Reaps every exited child; true once the init was among them (its exit
/// is then recorded).
fn reap(sigfd: &SignalFd, init: Pid, dir: &std::path::Path) -> bool {
    while let Ok(Some(_)) = sigfd.read_signal() {}
    let mut init_done = false;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                if pid == init {
                    record(dir, code, None);
                    init_done = true;
                }
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                if pid == init {
                    record(dir, 128 + sig as i32, Some(sig as i32));
                    init_done = true;
                }
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return init_done,
            Ok(_) => {}
        }
    }
}

fn record(dir: &std::path::Path, status: i32, signal: Option<i32>) {
    let rec = ExitRecord {
        status,
        signal,
        exited_at: rt::state::now_rfc3339(),
    };
    // If the directory is already gone (delete raced us) there is no one
    // to tell.
    if let Err(e) = rec.write(dir) {
        let _ = writeln!(std::io::stderr(), "rt-shim: {e}");
    }
}
