//! `linux.netDevices` (runtime-spec 1.3): host interfaces moved, by name,
//! into the container's network namespace once its init exists, before
//! its program runs. Moving a device flushes its addresses, so its
//! permanent ones (configured, not learnt: IFA_F_PERMANENT) are read on
//! the host first and added back inside; then it is renamed if `name`
//! says so (in the same request as the move, so the name is never taken
//! by surprise in between) and brought up. rtnetlink over a blocking
//! socket (netlink-packet-route, netlink-sys), no async runtime.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sched::CloneFlags;
use oci_spec::runtime::LinuxNetDevice;

use crate::config::netdev::container_name;
use crate::error::{Context, Error, Result};

/// The devices to move, checked on the host: (host name, name inside).
#[derive(Debug, Clone)]
pub struct Plan {
    devices: Vec<(String, String)>,
}

/// Checks, before anything is made, that every host interface exists and
/// that the container's network namespace (when joined by path) is not
/// rt's own.
pub fn check(
    devices: &HashMap<String, LinuxNetDevice>,
    netns_path: Option<&std::path::Path>,
) -> Result<Plan> {
    if let Some(path) = netns_path {
        use std::os::unix::fs::MetadataExt;
        let theirs = std::fs::metadata(path).with_ctx(|| format!("stat {}", path.display()))?;
        let ours = std::fs::metadata("/proc/self/ns/net").ctx("stat /proc/self/ns/net")?;
        if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
            return Err(Error::InvalidField {
                field: "linux.netDevices".into(),
                reason: format!(
                    "the network namespace {} is the host's; devices can only be moved into \
                     another one",
                    path.display()
                ),
            });
        }
    }
    let mut rtnl = Rtnl::here()?;
    let mut hosts: Vec<&String> = devices.keys().collect();
    hosts.sort();
    let mut plan = Plan { devices: vec![] };
    for host in hosts {
        rtnl.link(host).map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) => Error::InvalidField {
                field: "linux.netDevices".into(),
                reason: format!("host interface {host:?} does not exist"),
            },
            _ => Error::Io {
                context: format!("look up {host:?}"),
                source: e,
            }
            .in_field("linux.netDevices"),
        })?;
        let name = container_name(host, &devices[host]).to_string();
        plan.devices.push((host.clone(), name));
    }
    Ok(plan)
}

impl Plan {
    /// Moves every device into the network namespace of process `pid`
    /// (the container's init, not yet running its program).
    pub fn move_into(&self, pid: i32) -> Result<()> {
        let path = format!("/proc/{pid}/ns/net");
        let netns = File::open(&path).with_ctx(|| format!("open {path}"))?;
        let mut host = Rtnl::here()?;
        let mut inside = Rtnl::in_netns(netns.as_fd())?;
        for (from, to) in &self.devices {
            let fail = |what: &str, e: io::Error| {
                Error::Io {
                    context: format!("{from:?}: {what}"),
                    source: e,
                }
                .in_field("linux.netDevices")
            };
            let index = host.link(from).map_err(|e| fail("look up", e))?;
            let addresses = host
                .permanent_addresses(index)
                .map_err(|e| fail("read its addresses", e))?;
            host.move_link(
                index,
                netns.as_raw_fd(),
                (to != from).then_some(to.as_str()),
            )
            .map_err(|e| fail("move it into the container", e))?;
            let index = inside
                .link(to)
                .map_err(|e| fail("find it in the container", e))?;
            for a in addresses {
                inside
                    .add_address(index, a)
                    .map_err(|e| fail("add its address back", e))?;
            }
            inside.up(index).map_err(|e| fail("bring it up", e))?;
            log::debug!("linux.netDevices: {from} is {to} in the container");
        }
        Ok(())
    }
}

/// A blocking rtnetlink socket.
struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    /// A socket in rt's own network namespace.
    fn here() -> Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE).ctx("linux.netDevices: netlink socket")?;
        sock.bind_auto()
            .ctx("linux.netDevices: bind netlink socket")?;
        sock.connect(&SocketAddr::new(0, 0))
            .ctx("linux.netDevices: connect netlink socket")?;
        // The kernel answers at once; a reply that never comes must not
        // hang the create.
        let timeout = nix::sys::time::TimeVal::new(10, 0);
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)
            .ctx("linux.netDevices: netlink socket timeout")?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// A socket in the network namespace `netns`: a socket belongs to the
    /// namespace it was made in, so rt enters it for the socket call only
    /// (rt is single-threaded here) and goes back at once.
    fn in_netns(netns: BorrowedFd<'_>) -> Result<Rtnl> {
        let own = File::open("/proc/thread-self/ns/net").ctx("open /proc/thread-self/ns/net")?;
        nix::sched::setns(netns, CloneFlags::CLONE_NEWNET)
            .ctx("linux.netDevices: enter the container's network namespace")?;
        let made = Rtnl::here();
        nix::sched::setns(own.as_fd(), CloneFlags::CLONE_NEWNET)
            .ctx("linux.netDevices: return to rt's network namespace")?;
        made
    }

    /// Sends `msg` and collects the replies until the ack, the end of a
    /// dump or an error.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        packet.header.flags = NLM_F_REQUEST | flags;
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut at = 0;
            while at < data.len() {
                let m: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&data[at..])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    match m.payload {
                        NetlinkPayload::InnerMessage(r) => replies.push(r),
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(replies),
                                Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                            }
                        }
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                at += len;
            }
        }
    }

    /// The index of the interface `name` (ENODEV when there is none).
    fn link(&mut self, name: &str) -> io::Result<u32> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        let replies = self.request(RouteNetlinkMessage::GetLink(m), NLM_F_ACK)?;
        replies
            .into_iter()
            .find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// The interface's IPv4 and IPv6 addresses that were configured (not
    /// learnt, not temporary), ready to be added again. IPv6 link-local
    /// addresses are left out: the kernel makes them anew when the
    /// device comes up.
    fn permanent_addresses(&mut self, index: u32) -> io::Result<Vec<AddressMessage>> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewAddress(a) = r else {
                continue;
            };
            if a.header.index != index
                || !matches!(a.header.family, AddressFamily::Inet | AddressFamily::Inet6)
            {
                continue;
            }
            let flags = a
                .attributes
                .iter()
                .find_map(|x| match x {
                    AddressAttribute::Flags(f) => Some(*f),
                    _ => None,
                })
                .unwrap_or_else(|| AddressFlags::from_bits_truncate(a.header.flags.bits().into()));
            if !flags.contains(AddressFlags::Permanent) {
                continue;
            }
            if a.header.family == AddressFamily::Inet6 && a.header.scope == AddressScope::Link {
                continue;
            }
            let mut m = AddressMessage::default();
            m.header.family = a.header.family;
            m.header.prefix_len = a.header.prefix_len;
            m.header.scope = a.header.scope;
            m.header.flags = AddressHeaderFlags::empty();
            // The label carries the old name ("eth0:1") and the cache info
            // the old lifetimes: neither goes across.
            m.attributes = a
                .attributes
                .into_iter()
                .filter(|x| {
                    matches!(
                        x,
                        AddressAttribute::Address(_)
                            | AddressAttribute::Local(_)
                            | AddressAttribute::Broadcast(_)
                    )
                })
                .collect();
            out.push(m);
        }
        Ok(out)
    }

    /// Moves the interface into the namespace `netns` (a descriptor),
    /// renaming it there if `rename` is given.
    fn move_link(&mut self, index: u32, netns: i32, rename: Option<&str>) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::NetNsFd(netns));
        if let Some(name) = rename {
            m.attributes.push(LinkAttribute::IfName(name.to_string()));
        }
        self.request(RouteNetlinkMessage::SetLink(m), NLM_F_ACK)
            .map(drop)
    }

    fn add_address(&mut self, index: u32, mut a: AddressMessage) -> io::Result<()> {
        a.header.index = index;
        self.request(
            RouteNetlinkMessage::NewAddress(a),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    fn up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), NLM_F_ACK)
            .map(drop)
    }
}
