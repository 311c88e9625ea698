//! The user's D-Bus from inside a user namespace whose root is that user
//! outside (rootless Podman runs rt there). libdbus's EXTERNAL
//! authentication sends the euid it sees (0) while the bus daemon sees the
//! outer uid on the socket, so the bus refuses it. Here rt does the SASL
//! handshake itself with the outer uid, then lets libdbus talk through a
//! one-connection bridge on a private abstract socket, whose own handshake
//! rt answers. Only used with `--systemd-cgroup` in such a namespace.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use dbus::blocking::Connection;
use dbus::channel::Channel;

use crate::error::{Error, Result};

/// How long the bus may take to answer the handshake.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest SASL line accepted (the spec's lines are short).
const MAX_LINE: usize = 16 * 1024;

/// Where the user's bus is: an address as D-Bus writes it, and the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusAddress {
    pub address: String,
    pub socket: Socket,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socket {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

fn failed(address: &str, msg: impl std::fmt::Display) -> Error {
    Error::Systemd {
        what: format!("connect to the user's bus {address}"),
        msg: msg.to_string(),
    }
}

/// The host uid that uid 0 of this user namespace is, from uid_map's text.
pub fn outer_uid(uid_map: &str) -> Option<u32> {
    uid_map.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3 && f[0] == "0")
            .then(|| f[1].parse().ok())
            .flatten()
    })
}

/// Root of this user namespace and another uid outside: that uid.
pub fn namespaced_root_uid() -> Option<u32> {
    if crate::rootless::detect() != crate::rootless::Mode::NamespacedRoot {
        return None;
    }
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    outer_uid(&map).filter(|&u| u != 0)
}

fn unescape(v: &str) -> Option<Vec<u8>> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The user's bus: `$DBUS_SESSION_BUS_ADDRESS` (its first unix: entry with
/// a path or an abstract name), else `$XDG_RUNTIME_DIR/bus`, else
/// /run/user/<uid>/bus.
pub fn find(session: Option<&str>, runtime_dir: Option<&str>, uid: u32) -> Result<BusAddress> {
    if let Some(addr) = session.filter(|s| !s.is_empty()) {
        for entry in addr.split(';') {
            let Some(params) = entry.strip_prefix("unix:") else {
                continue;
            };
            for kv in params.split(',') {
                let socket = if let Some(p) = kv.strip_prefix("path=") {
                    unescape(p).map(|p| {
                        Socket::Path(PathBuf::from(
                            <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(p),
                        ))
                    })
                } else if let Some(a) = kv.strip_prefix("abstract=") {
                    unescape(a).map(Socket::Abstract)
                } else {
                    continue;
                };
                let socket = socket.ok_or_else(|| failed(addr, "bad escape in the address"))?;
                return Ok(BusAddress {
                    address: addr.to_string(),
                    socket,
                });
            }
        }
        return Err(failed(
            addr,
            "DBUS_SESSION_BUS_ADDRESS has no unix:path= or unix:abstract= entry",
        ));
    }
    let dir = runtime_dir
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{uid}")));
    let path = dir.join("bus");
    Ok(BusAddress {
        address: format!("unix:path={}", path.display()),
        socket: Socket::Path(path),
    })
}

/// Reads one `\r\n`-ended line byte by byte (nothing past it is consumed).
fn read_line(r: &mut impl Read) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8];
    loop {
        if r.read(&mut b)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the bus closed the connection during authentication",
            ));
        }
        line.push(b[0]);
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            return String::from_utf8(line).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "a SASL line not UTF-8")
            });
        }
        if line.len() > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a SASL line too long",
            ));
        }
    }
}

/// The hex of the decimal uid, as EXTERNAL's initial response is.
fn external_identity(uid: u32) -> String {
    uid.to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The client side of the D-Bus SASL handshake, EXTERNAL as `uid`: the
/// server's guid once it said OK and was sent BEGIN.
pub fn authenticate(s: &mut (impl Read + Write), uid: u32) -> std::result::Result<String, String> {
    let hello = format!("\0AUTH EXTERNAL {}\r\n", external_identity(uid));
    s.write_all(hello.as_bytes())
        .map_err(|e| format!("send AUTH: {e}"))?;
    let reply = read_line(s).map_err(|e| format!("read the AUTH reply: {e}"))?;
    let guid = match reply.split_once(' ') {
        Some(("OK", guid)) if !guid.is_empty() => guid.to_string(),
        _ if reply.starts_with("REJECTED") => {
            return Err(format!(
                "the bus rejected EXTERNAL authentication as uid {uid} ({reply})"
            ))
        }
        _ => return Err(format!("unexpected reply to AUTH: {reply:?}")),
    };
    s.write_all(b"BEGIN\r\n")
        .map_err(|e| format!("send BEGIN: {e}"))?;
    Ok(guid)
}

/// The server side towards libdbus: OK with `guid` to its AUTH, ERROR to
/// anything else (NEGOTIATE_UNIX_FD among them), until BEGIN. Returns the
/// bytes it sent past BEGIN, if read already.
pub fn answer(s: &mut UnixStream, guid: &str) -> std::io::Result<Vec<u8>> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut nul = [0u8];
    r.read_exact(&mut nul)?;
    if nul[0] != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no NUL byte before authentication",
        ));
    }
    loop {
        let mut line = Vec::new();
        r.by_ref()
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\r\n") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a SASL line cut short",
            ));
        }
        let cmd = &line[..line.len() - 2];
        if cmd == b"BEGIN" {
            return Ok(r.buffer().to_vec());
        }
        if cmd.starts_with(b"AUTH ") {
            s.write_all(format!("OK {guid}\r\n").as_bytes())?;
        } else {
            s.write_all(b"ERROR\r\n")?;
        }
    }
}

fn connect_socket(socket: &Socket) -> std::io::Result<UnixStream> {
    match socket {
        Socket::Path(p) => UnixStream::connect(p),
        Socket::Abstract(name) => UnixStream::connect_addr(&SocketAddr::from_abstract_name(name)?),
    }
}

/// Copies `from` to `to` until either ends, then shuts both down.
fn pump(mut from: UnixStream, mut to: UnixStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// A libdbus connection to the user's bus, authenticated as `uid`.
pub fn connect(bus: &BusAddress, uid: u32) -> Result<Connection> {
    let addr = bus.address.as_str();
    let mut upstream = connect_socket(&bus.socket).map_err(|e| failed(addr, e))?;
    upstream
        .set_read_timeout(Some(AUTH_TIMEOUT))
        .map_err(|e| failed(addr, e))?;
    let guid = authenticate(&mut upstream, uid).map_err(|e| failed(addr, e))?;
    upstream
        .set_read_timeout(None)
        .map_err(|e| failed(addr, e))?;

    let name = format!(
        "rt-user-bus-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let listener = SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|a| UnixListener::bind_addr(&a))
        .map_err(|e| failed(addr, format!("bridge socket: {e}")))?;
    #[allow(clippy::cast_possible_wrap)] // pid_max is at most 2^22: a pid fits an int
    let me = std::process::id() as i32;
    let bridge = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut client, _) = listener.accept()?;
        drop(listener);
        let cred =
            nix::sys::socket::getsockopt(&client, nix::sys::socket::sockopt::PeerCredentials)
                .map_err(std::io::Error::from)?;
        if cred.pid() != me {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("the bridge was reached by pid {}, not rt", cred.pid()),
            ));
        }
        let early = answer(&mut client, &guid)?;
        upstream.write_all(&early)?;
        let (c2, u2) = (client.try_clone()?, upstream.try_clone()?);
        std::thread::spawn(move || pump(u2, c2));
        std::thread::spawn(move || pump(client, upstream));
        Ok(())
    });
    // libdbus authenticates during its first call (Hello, in register),
    // so the bridge is joined after it; its error says more than
    // libdbus's. Had libdbus not connected, the bridge would still wait.
    let mut channel = Channel::open_private(&format!("unix:abstract={name}"))
        .map_err(|e| failed(addr, e.message().unwrap_or("failed")))?;
    let registered = channel.register();
    let bridged = bridge
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the bridge thread panicked")));
    bridged.map_err(|e| failed(addr, format!("bridge: {e}")))?;
    registered.map_err(|e| failed(addr, e.message().unwrap_or("Hello failed")))?;
    Ok(Connection::from(channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_uid_is_what_root_maps_to() {
        assert_eq!(outer_uid("         0       1000          1\n"), Some(1000));
        assert_eq!(
            outer_uid("1 100000 65536\n         0       1000          1\n"),
            Some(1000)
        );
        assert_eq!(outer_uid("1000 1000 1\n"), None);
    }

    #[test]
    fn finds_the_bus_in_order() {
        let b = find(Some("unix:path=/run/user/7/bus,guid=ab"), Some("/x"), 7).unwrap();
        assert_eq!(b.socket, Socket::Path("/run/user/7/bus".into()));
        let b = find(Some("tcp:host=h;unix:abstract=a%20b"), None, 7).unwrap();
        assert_eq!(b.socket, Socket::Abstract(b"a b".to_vec()));
        let b = find(None, Some("/xdg"), 7).unwrap();
        assert_eq!(b.socket, Socket::Path("/xdg/bus".into()));
        assert_eq!(b.address, "unix:path=/xdg/bus");
        let b = find(None, None, 1000).unwrap();
        assert_eq!(b.socket, Socket::Path("/run/user/1000/bus".into()));
        let e = find(Some("tcp:host=h,port=1"), None, 7)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tcp:host=h,port=1"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }

    /// A fake bus server on a socketpair: what it read, after replying.
    fn fake(reply: &'static [u8], uid: u32) -> (std::result::Result<String, String>, Vec<u8>) {
        let (mut rt, mut bus) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let mut got = vec![0u8; 1];
            bus.read_exact(&mut got).unwrap();
            let line = read_line(&mut bus).unwrap();
            got.extend_from_slice(line.as_bytes());
            got.extend_from_slice(b"\r\n");
            bus.write_all(reply).unwrap();
            if reply.starts_with(b"OK") {
                got.extend_from_slice(read_line(&mut bus).unwrap().as_bytes());
            }
            got
        });
        let r = authenticate(&mut rt, uid);
        drop(rt);
        (r, server.join().unwrap())
    }

    #[test]
    fn sends_external_with_the_outer_uid_then_begin() {
        let (r, got) = fake(b"OK 0123abcd\r\n", 1000);
        assert_eq!(r.unwrap(), "0123abcd");
        // "1000" is 31 30 30 30 in hex.
        assert_eq!(got, b"\0AUTH EXTERNAL 31303030\r\nBEGIN".to_vec());
    }

    #[test]
    fn rejected_and_error_are_clear_failures() {
        let (r, _) = fake(b"REJECTED EXTERNAL\r\n", 1000);
        let e = r.unwrap_err();
        assert!(e.contains("rejected") && e.contains("1000"), "{e}");
        let (r, _) = fake(b"ERROR\r\n", 1000);
        assert!(r.unwrap_err().contains("unexpected reply"));
        let (r, _) = fake(b"", 1000);
        assert!(r.unwrap_err().contains("closed"));
    }

    #[test]
    fn answers_libdbus_and_keeps_bytes_past_begin() {
        let (mut rt, mut lib) = UnixStream::pair().unwrap();
        lib.write_all(b"\0AUTH EXTERNAL 30\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\nl\x01\x00")
            .unwrap();
        let early = answer(&mut rt, "feed").unwrap();
        assert_eq!(early, b"l\x01\x00".to_vec());
        drop(rt);
        let mut replies = String::new();
        lib.read_to_string(&mut replies).unwrap();
        assert_eq!(replies, "OK feed\r\nERROR\r\n");
    }
}
