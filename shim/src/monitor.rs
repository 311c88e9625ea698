//! The standalone monitor. `rt create` forks, makes the container (so the
//! init is this process's child) and execs `rt-shim` with the descriptors
//! it is to watch. One thread and one poll loop: SIGCHLD through a
//! signalfd, the container's stdout/stderr pipes or its pty master, the
//! attach socket and its clients. When the init has exited the shim
//! records how, drains what output is left and exits.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
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

/// A descriptor `rt create` left open for us, made close-on-exec: nothing
/// of ours should reach a process we might start.
fn take_fd(fd: RawFd) -> Result<OwnedFd, Error> {
    rt::sys::fd::take_inherited(fd).map_err(|e| match e {
        Errno::EBUSY => Error::Usage(format!("descriptor {fd} is given twice")),
        _ => Error::Usage(format!("descriptor {fd} is not open")),
    })
}

/// An attached `rt attach` client.
struct Client {
    sock: OwnedFd,
    buf: Vec<u8>,
    /// Gone or too slow; removed at the end of the round, so that the
    /// sources polled this round still name the right clients.
    dead: bool,
}

/// One of the container's output pipes.
struct Output {
    fd: OwnedFd,
    stream: Stream,
    /// At EOF; removed at the end of the round.
    closed: bool,
}

/// What a polled descriptor is. `Output` and `Client` index into the
/// monitor's lists, which keep their order until the round is over.
#[derive(Clone, Copy)]
enum Source {
    /// The signalfd: SIGCHLD, a child to reap.
    Children,
    /// A stdout or stderr pipe.
    Output(usize),
    /// The pty master.
    Console,
    /// The attach socket: a client to accept.
    Attach,
    /// An attached client: input or a window size.
    Client(usize),
}

/// The monitor's state: what it watches and where the output goes.
struct Monitor {
    sigfd: SignalFd,
    init: Pid,
    dir: PathBuf,
    log: Option<Writer<File>>,
    outputs: Vec<Output>,
    console: Option<OwnedFd>,
    listener: Option<OwnedFd>,
    clients: Vec<Client>,
    buf: Vec<u8>,
}

/// Runs until the init has exited and its output is logged.
pub fn run(args: Args) -> Result<(), Error> {
    let mut m = Monitor::new(args)?;
    // The init may have exited before SIGCHLD was blocked: that signal is
    // gone, so look once before waiting for the next.
    let mut check_children = true;
    loop {
        if check_children && reap(&m.sigfd, m.init, &m.dir) {
            break;
        }
        check_children = false;
        for source in m.wait()? {
            match source {
                Source::Children => check_children = true,
                Source::Output(n) => m.read_output(n),
                Source::Console => m.read_console(),
                Source::Client(n) => m.read_client(n),
                Source::Attach => m.accept(),
            }
        }
        m.sweep();
    }
    m.finish();
    Ok(())
}

impl Monitor {
    /// Takes over what `rt create` handed on, opens the log and the
    /// attach socket, and says `Ready`.
    fn new(args: Args) -> Result<Monitor, Error> {
        let mut chld = SigSet::empty();
        chld.add(Signal::SIGCHLD);
        chld.thread_block().map_err(sys("block SIGCHLD"))?;
        let sigfd = SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(sys("signalfd"))?;
        // A client that goes away must not take the shim with it.
        rt::sys::process::ignore_disposition(libc::SIGPIPE).map_err(sys("ignore SIGPIPE"))?;

        let log = if args.no_log {
            None
        } else {
            Some(open_log(&args.dir)?)
        };
        let listener = match &args.console {
            Some(_) => Some(listen_attach(&args.dir)?),
            None => None,
        };
        Report::Ready.send(args.report.as_fd());
        drop(args.report);

        let output = |fd, stream| Output {
            fd,
            stream,
            closed: false,
        };
        let mut outputs = Vec::new();
        outputs.extend(args.stdout.map(|fd| output(fd, Stream::Stdout)));
        outputs.extend(args.stderr.map(|fd| output(fd, Stream::Stderr)));
        Ok(Monitor {
            sigfd,
            init: args.init,
            dir: args.dir,
            log,
            outputs,
            console: args.console,
            listener,
            clients: Vec::new(),
            buf: vec![0u8; 32 * 1024],
        })
    }

    /// Everything to poll this round. The clients come before the attach
    /// socket, so that one accepted this round is not read in it.
    fn sources(&self) -> Vec<(Source, BorrowedFd<'_>)> {
        let mut all = vec![(Source::Children, self.sigfd.as_fd())];
        for (n, o) in self.outputs.iter().enumerate() {
            all.push((Source::Output(n), o.fd.as_fd()));
        }
        if let Some(m) = &self.console {
            all.push((Source::Console, m.as_fd()));
        }
        for (n, c) in self.clients.iter().enumerate() {
            all.push((Source::Client(n), c.sock.as_fd()));
        }
        if let Some(l) = &self.listener {
            all.push((Source::Attach, l.as_fd()));
        }
        all
    }

    /// Waits until a source is ready; the ready ones, in `sources` order.
    fn wait(&self) -> Result<Vec<Source>, Error> {
        let (sources, mut fds): (Vec<Source>, Vec<PollFd>) = self
            .sources()
            .into_iter()
            .map(|(s, fd)| (s, PollFd::new(fd, PollFlags::POLLIN)))
            .unzip();
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::Sys("poll".into(), e)),
        }
        Ok(sources
            .into_iter()
            .zip(&fds)
            .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(s, _)| s)
            .collect())
    }

    /// An output pipe: to the log. EOF when every writer is gone.
    fn read_output(&mut self, n: usize) {
        let o = &mut self.outputs[n];
        let to = Sink {
            log: &mut self.log,
            clients: &mut self.clients,
        };
        if !pump(o.fd.as_fd(), o.stream, to, &mut self.buf) {
            o.closed = true;
        }
    }

    fn read_console(&mut self) {
        let Some(m) = &self.console else { return };
        let to = Sink {
            log: &mut self.log,
            clients: &mut self.clients,
        };
        if !pump(m.as_fd(), Stream::Stdout, to, &mut self.buf) {
            // EIO: no one holds the terminal's other side any more.
            self.console = None;
        }
    }

    fn read_client(&mut self, n: usize) {
        let console = self.console.as_ref().map(|m| m.as_fd());
        let c = &mut self.clients[n];
        if !from_client(c, console, &mut self.buf) {
            c.dead = true;
        }
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        if let Ok(sock) = rt::sys::socket::accept(l, SockFlag::SOCK_NONBLOCK) {
            self.clients.push(Client {
                sock,
                buf: Vec::new(),
                dead: false,
            });
        }
    }

    /// The end of a round: closed pipes and dead clients go.
    fn sweep(&mut self) {
        self.outputs.retain(|o| !o.closed);
        self.clients.retain(|c| !c.dead);
    }

    /// The init is gone: take what output is left, then leave.
    fn finish(mut self) {
        for o in &self.outputs {
            let to = Sink {
                log: &mut self.log,
                clients: &mut self.clients,
            };
            drain(o.fd.as_fd(), o.stream, to, &mut self.buf);
        }
        if let Some(m) = &self.console {
            let to = Sink {
                log: &mut self.log,
                clients: &mut self.clients,
            };
            drain(m.as_fd(), Stream::Stdout, to, &mut self.buf);
        }
        if let Some(w) = &mut self.log {
            let _ = w.finish();
        }
        let _ = std::fs::remove_file(self.dir.join(ATTACH_SOCKET));
    }
}

/// Opens `<dir>/LOG_FILE` for appending.
fn open_log(dir: &std::path::Path) -> Result<Writer<File>, Error> {
    let path = dir.join(LOG_FILE);
    let f: File = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::Io(format!("open {}", path.display()), e))?;
    Ok(Writer::new(f))
}

/// Where the container's output goes: the log and the attached clients.
struct Sink<'a> {
    log: &'a mut Option<Writer<File>>,
    clients: &'a mut [Client],
}

impl Sink<'_> {
    fn write(&mut self, stream: Stream, data: &[u8]) {
        if let Some(w) = self.log {
            let _ = w.write(stream, data);
        }
        to_clients(self.clients, data);
    }
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
fn pump(fd: BorrowedFd<'_>, stream: Stream, mut to: Sink<'_>, buf: &mut [u8]) -> bool {
    match nix::unistd::read(fd, buf) {
        Ok(0) => false,
        Ok(n) => {
            to.write(stream, &buf[..n]);
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
fn drain(fd: BorrowedFd<'_>, stream: Stream, mut to: Sink<'_>, buf: &mut [u8]) {
    // The reads below return EAGAIN instead of waiting.
    if let Ok(fl) = fcntl(fd, FcntlArg::F_GETFL) {
        let fl = OFlag::from_bits_retain(fl) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(fl));
    }
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => to.write(stream, &buf[..n]),
        }
    }
}

/// Handles a client's frames: input to the terminal, window sizes. False
/// when the client is gone or spoke nonsense.
fn from_client(c: &mut Client, console: Option<BorrowedFd<'_>>, buf: &mut [u8]) -> bool {
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
                    write_all(m, &data);
                }
            }
            Ok(Some(Frame::Resize { rows, cols })) => {
                if let Some(m) = console {
                    let _ = rt::tty::console::set_size(&m, rows, cols);
                }
            }
            Err(_) => return false,
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> bool {
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
        log::warn!("{e}");
    }
}
