//! Talking to CRIU: `criu swrk FD` started with one end of a
//! SOCK_SEQPACKET socketpair, one request sent (its messages are
//! rust-criu's, generated from CRIU's rpc.proto), the notifications CRIU
//! sends on the way answered, and its final response read.
//!
//! CRIU opens the descriptors a request names (`images_dir_fd`,
//! `work_dir_fd`) through /proc/<rt's pid>/fd, so they stay O_CLOEXEC;
//! only the socket's end for swrk is inherited.

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sys::socket::{send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use protobuf::Message;
use rust_criu::rust_criu_protobuf::rpc;

use crate::error::{Context, Error, Result};

/// The CRIU binary rt drives (`--criu`, default `criu` from PATH).
#[derive(Debug, Clone)]
pub struct Criu {
    pub binary: PathBuf,
    /// A cgroup directory criu swrk is placed in before its request (a
    /// restore: the restored processes start in the container's cgroup).
    pub cgroup: Option<PathBuf>,
}

/// A notification CRIU sent during a request (`notify_scripts`): the
/// script's name, the pid it is about, and a descriptor it passed
/// (the pty master of `orphan-pts-master`).
pub struct Notify {
    pub script: String,
    pub pid: i32,
    pub fd: Option<OwnedFd>,
}

/// CRIU's version, as its VERSION answer gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: i32,
    pub minor: i32,
    pub sublevel: i32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.sublevel)
    }
}

/// The oldest CRIU rt drives (the RPC options it sets are all there).
pub const MIN_VERSION: Version = Version {
    major: 3,
    minor: 0,
    sublevel: 0,
};

/// The log of CRIU's check, in rt's scratch directory.
const CHECK_LOG: &str = "check.log";

/// The largest message CRIU sends (its responses are small).
const MAX_MESSAGE: usize = 64 * 1024;

impl Criu {
    pub fn new(binary: Option<&Path>) -> Criu {
        Criu {
            binary: binary.map_or_else(|| PathBuf::from("criu"), Path::to_path_buf),
            cgroup: None,
        }
    }

    fn unavailable(&self, reason: impl Into<String>) -> Error {
        Error::CriuUnavailable {
            criu: self.binary.clone(),
            reason: reason.into(),
        }
    }

    /// That this CRIU can be used here: its version answered and recent
    /// enough, and its own check of the kernel (`criu check`) passed.
    /// Otherwise [`Error::CriuUnavailable`] with CRIU's reason.
    pub fn usable(&self) -> Result<Version> {
        let resp = self.call(request(rpc::Criu_req_type::VERSION, None), &mut |_| Ok(()))?;
        let v = resp
            .version
            .as_ref()
            .map(|v| Version {
                major: v.major_number(),
                minor: v.minor_number(),
                sublevel: v.sublevel(),
            })
            .ok_or_else(|| self.unavailable("its VERSION answer has no version"))?;
        if v < MIN_VERSION {
            return Err(self.unavailable(format!(
                "version {v} is older than {MIN_VERSION}, the oldest rt drives"
            )));
        }
        // CRIU's check logs why it fails: into a scratch directory of
        // rt's, read and removed again.
        let scratch = std::env::temp_dir().join(format!("rt-criu-check-{}", std::process::id()));
        let checked = self.check_in(&scratch);
        let log = fs::read_to_string(scratch.join(CHECK_LOG)).unwrap_or_default();
        let _ = fs::remove_dir_all(&scratch);
        match checked {
            Ok(_) => Ok(v),
            Err(Error::Criu { reason, .. }) => Err(self.unavailable(format!(
                "CRIU {v} fails its check of this kernel: {}",
                first_error(&log).unwrap_or(reason)
            ))),
            Err(e) => Err(e),
        }
    }

    /// `criu check` over RPC, its log in `dir` (made 0700 here).
    fn check_in(&self, dir: &Path) -> Result<rpc::Criu_resp> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .with_ctx(|| format!("mkdir {}", dir.display()))?;
        let fd = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .with_ctx(|| format!("open {}", dir.display()))?;
        let mut o = rpc::Criu_opts::new();
        o.set_images_dir_fd(fd.as_raw_fd());
        o.set_work_dir_fd(fd.as_raw_fd());
        o.set_log_file(CHECK_LOG.into());
        o.set_log_level(4);
        self.call(request(rpc::Criu_req_type::CHECK, Some(o)), &mut |_| Ok(()))
    }

    /// Sends one request and answers CRIU's notifications with `notify`
    /// (an error there fails the request) until its final response.
    /// A response that says it failed is [`Error::Criu`], with CRIU's
    /// message and the last error line it wrote to stderr.
    pub fn call(
        &self,
        req: rpc::Criu_req,
        notify: &mut dyn FnMut(Notify) -> Result<()>,
    ) -> Result<rpc::Criu_resp> {
        let kind = req.type_();
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx("socketpair for criu swrk")?;
        // The one descriptor criu inherits; rt is single-threaded, so no
        // other fork sees it without O_CLOEXEC.
        crate::sys::fd::clear_cloexec(theirs.as_raw_fd()).ctx("criu swrk socket")?;
        let child = Command::new(&self.binary)
            .arg("swrk")
            .arg(theirs.as_raw_fd().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        drop(theirs);
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(
                    self.unavailable("no such program (install criu, or name it with --criu)")
                )
            }
            Err(e) => return Err(self.unavailable(format!("cannot run it: {e}"))),
        };
        let result = match &self.cgroup {
            Some(dir) => fs::write(dir.join("cgroup.procs"), child.id().to_string())
                .with_ctx(|| format!("place criu swrk in the cgroup {}", dir.display())),
            None => Ok(()),
        }
        .and_then(|()| exchange(&ours, &req, notify));
        if result.is_err() {
            let _ = child.kill();
        }
        drop(ours);
        let stderr = finish(&mut child);
        let resp = match result {
            Ok(r) => r,
            // CRIU went away without answering: what it said on stderr is why.
            Err(Error::Protocol(msg)) => {
                let why = last_error(&stderr).unwrap_or(msg);
                return Err(self.unavailable(why));
            }
            Err(e) => return Err(e),
        };
        if resp.success() {
            return Ok(resp);
        }
        let mut reason = resp.cr_errmsg().to_string();
        if let Some(line) = last_error(&stderr) {
            if !reason.is_empty() {
                reason.push_str(": ");
            }
            reason.push_str(&line);
        }
        if reason.is_empty() {
            reason = format!(
                "{:?} failed (errno {})",
                resp.type_(),
                nix::errno::Errno::from_raw(resp.cr_errno())
            );
        }
        Err(Error::Criu {
            request: request_name(kind),
            reason,
        })
    }

    /// The feature CRIU must have for `lazy-pages` or memory tracking
    /// (pre-dump): false when this CRIU or kernel lacks it.
    pub fn has_feature(&self, lazy_pages: bool, mem_track: bool) -> Result<bool> {
        let mut req_features = rpc::Criu_features::new();
        if lazy_pages {
            req_features.set_lazy_pages(true);
        }
        if mem_track {
            req_features.set_mem_track(true);
        }
        let mut req = request(rpc::Criu_req_type::FEATURE_CHECK, None);
        req.features = protobuf::MessageField::some(req_features);
        let resp = self.call(req, &mut |_| Ok(()))?;
        let f = resp.features.as_ref();
        Ok(f.is_some_and(|f| (!lazy_pages || f.lazy_pages()) && (!mem_track || f.mem_track())))
    }
}

/// A request of `kind` with `opts`.
pub fn request(kind: rpc::Criu_req_type, opts: Option<rpc::Criu_opts>) -> rpc::Criu_req {
    let mut req = rpc::Criu_req::new();
    req.set_type(kind);
    if let Some(o) = opts {
        req.opts = protobuf::MessageField::some(o);
    }
    req
}

fn request_name(kind: rpc::Criu_req_type) -> &'static str {
    match kind {
        rpc::Criu_req_type::DUMP => "dump",
        rpc::Criu_req_type::PRE_DUMP => "pre-dump",
        rpc::Criu_req_type::RESTORE => "restore",
        rpc::Criu_req_type::CHECK => "check",
        rpc::Criu_req_type::VERSION => "version",
        rpc::Criu_req_type::FEATURE_CHECK => "feature check",
        _ => "request",
    }
}

/// The request and the conversation on the socket. A peer that closes
/// the socket without a final answer is [`Error::Protocol`].
fn exchange(
    sock: &OwnedFd,
    req: &rpc::Criu_req,
    notify: &mut dyn FnMut(Notify) -> Result<()>,
) -> Result<rpc::Criu_resp> {
    send_message(sock, req)?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    // A notification we failed (a hook on restore): CRIU is told, undoes
    // what it made (it kills the restored tree) and answers; the error is
    // returned after that answer, so that nothing it made is left.
    let mut failed: Option<Error> = None;
    loop {
        let (n, fd) = match crate::sys::socket::recv_with_fd(sock.as_fd(), &mut buf) {
            Ok(r) => r,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::Protocol(format!("criu swrk: receive: {e}"))),
        };
        if n == 0 {
            return Err(Error::Protocol("criu swrk exited without answering".into()));
        }
        let resp = rpc::Criu_resp::parse_from_bytes(&buf[..n])
            .map_err(|e| Error::Protocol(format!("criu swrk: malformed answer: {e}")))?;
        if resp.type_() != rpc::Criu_req_type::NOTIFY {
            return match failed {
                Some(e) => Err(e),
                None => Ok(resp),
            };
        }
        let n = resp.notify.as_ref();
        let result = match failed {
            Some(_) => Ok(()),
            None => notify(Notify {
                script: n.map(|n| n.script().to_string()).unwrap_or_default(),
                pid: n.map_or(0, |n| n.pid()),
                fd,
            }),
        };
        let mut ack = rpc::Criu_req::new();
        ack.set_type(rpc::Criu_req_type::NOTIFY);
        ack.set_notify_success(result.is_ok() && failed.is_none());
        send_message(sock, &ack)?;
        if let Err(e) = result {
            failed = Some(e);
        }
    }
}

fn send_message(sock: &OwnedFd, msg: &rpc::Criu_req) -> Result<()> {
    let bytes = msg
        .write_to_bytes()
        .map_err(|e| Error::Protocol(format!("criu request: {e}")))?;
    match send(sock.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL) {
        Ok(_) => Ok(()),
        // CRIU is gone: its stderr says why.
        Err(e) => Err(Error::Protocol(format!("criu swrk: send: {e}"))),
    }
}

/// Waits for criu swrk and returns what it wrote to stderr.
fn finish(child: &mut Child) -> String {
    let mut out = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut out);
    }
    let _ = child.wait();
    out
}

/// The last of CRIU's "Error (file:line): message" lines, as its message.
pub fn last_error(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .filter(|l| l.contains("Error ("))
        .map(|l| match l.split_once("): ") {
            Some((_, msg)) => msg.trim().to_string(),
            None => l.trim().to_string(),
        })
        .find(|m| !m.is_empty())
}

/// The first "Error" line of a CRIU log: the cause (later ones follow
/// from it).
pub fn first_error(log: &str) -> Option<String> {
    log.lines()
        .filter(|l| l.contains("Error ("))
        .map(|l| match l.split_once("): ") {
            Some((_, msg)) => msg.trim().to_string(),
            None => l.trim().to_string(),
        })
        .find(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "(00.000011) Version: 3.17.1\n\
        Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n\
        Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n\
        Error (criu/crtools.c:260): Could not initialize kernel features detection.\n";

    #[test]
    fn criu_log_errors_are_read_as_their_messages() {
        assert_eq!(
            first_error(LOG).as_deref(),
            Some("vdso: Unexpected rt vDSO area bounds")
        );
        assert_eq!(
            last_error(LOG).as_deref(),
            Some("Could not initialize kernel features detection.")
        );
        assert_eq!(last_error("(0.1) all good\n"), None);
    }

    /// CRIU's side of a restore whose first notification the caller
    /// fails: what it sent, and the acks it got back.
    fn peer(sock: OwnedFd) -> Vec<bool> {
        let send_resp = |r: &rpc::Criu_resp| {
            send(
                sock.as_raw_fd(),
                &r.write_to_bytes().unwrap(),
                MsgFlags::empty(),
            )
            .unwrap();
        };
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = nix::unistd::read(&sock, &mut buf).unwrap();
        let req = rpc::Criu_req::parse_from_bytes(&buf[..n]).unwrap();
        assert_eq!(req.type_(), rpc::Criu_req_type::RESTORE);
        let mut acks = vec![];
        for script in ["setup-namespaces", "post-setup-namespaces"] {
            let mut r = rpc::Criu_resp::new();
            r.set_type(rpc::Criu_req_type::NOTIFY);
            r.set_success(true);
            r.notify.mut_or_insert_default().set_script(script.into());
            send_resp(&r);
            let n = nix::unistd::read(&sock, &mut buf).unwrap();
            acks.push(
                rpc::Criu_req::parse_from_bytes(&buf[..n])
                    .unwrap()
                    .notify_success(),
            );
        }
        // CRIU gave up and undid the restore: its final answer.
        let mut r = rpc::Criu_resp::new();
        r.set_type(rpc::Criu_req_type::RESTORE);
        r.set_success(false);
        send_resp(&r);
        acks
    }

    #[test]
    fn a_failed_notification_is_returned_after_criu_has_answered() {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let criu = std::thread::spawn(move || peer(theirs));
        let mut calls = 0;
        let got = exchange(
            &ours,
            &request(rpc::Criu_req_type::RESTORE, None),
            &mut |_| {
                calls += 1;
                Err(Error::Internal("the hook failed"))
            },
        );
        // CRIU was told both times, and its answer was read (the thread
        // sent it) before the hook's error came back, not CRIU's. (Had
        // exchange returned at once, the peer would read EOF and panic.)
        drop(ours);
        assert_eq!(
            criu.join().expect("CRIU's side ran to its answer"),
            [false, false]
        );
        assert_eq!(calls, 1, "no notification is handled after one failed");
        assert!(
            matches!(got, Err(Error::Internal("the hook failed"))),
            "{got:?}"
        );
    }

    #[test]
    fn a_missing_binary_is_unavailable_in_one_line() {
        let e = Criu::new(Some(Path::new("/nonexistent/criu")))
            .usable()
            .unwrap_err();
        assert!(matches!(e, Error::CriuUnavailable { .. }), "{e:?}");
        let line = e.to_string();
        assert!(line.contains("/nonexistent/criu"), "{line}");
        assert!(line.contains("no such program"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}
