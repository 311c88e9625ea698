//! bpf(2), which nix does not wrap: loading a BPF_PROG_TYPE_CGROUP_DEVICE
//! program and attaching it to a cgroup.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// bpf(BPF_PROG_LOAD) of a cgroup device program.
pub fn load_cgroup_device(insns: &[Insn], log: Option<&mut Vec<u8>>) -> nix::Result<OwnedFd> {
    let license = c"Apache";
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, 15); // BPF_PROG_TYPE_CGROUP_DEVICE
    put_u32(
        &mut attr,
        4,
        u32::try_from(insns.len()).map_err(|_| nix::Error::E2BIG)?,
    );
    put_u64(&mut attr, 8, insns.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    if let Some(log) = log {
        put_u32(&mut attr, 24, 1); // log_level
        put_u32(
            &mut attr,
            28,
            u32::try_from(log.len()).map_err(|_| nix::Error::EINVAL)?,
        );
        put_u64(&mut attr, 32, log.as_mut_ptr() as u64);
    }
    // SAFETY: `attr` is a zeroed bpf_attr for BPF_PROG_LOAD whose pointers
    // (instructions, license, log buffer) outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            5, /* BPF_PROG_LOAD */
            attr.as_ptr(),
            attr.len(),
        )
    };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(super::fd::syscall_int(fd)) })
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// bpf(BPF_PROG_ATTACH) of a device program to a cgroup, beside the
/// programs already there (BPF_F_ALLOW_MULTI).
pub fn attach_cgroup_device(cgroup: impl AsFd, prog: impl AsFd) -> nix::Result<()> {
    let mut attr = [0u8; 128];
    put_u32(&mut attr, 0, super::fd::as_u32(cgroup.as_fd().as_raw_fd()));
    put_u32(&mut attr, 4, super::fd::as_u32(prog.as_fd().as_raw_fd()));
    put_u32(&mut attr, 8, 6); // BPF_CGROUP_DEVICE
    put_u32(&mut attr, 12, 2); // BPF_F_ALLOW_MULTI
                               // SAFETY: a zeroed bpf_attr for BPF_PROG_ATTACH with two valid fds.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            8, /* BPF_PROG_ATTACH */
            attr.as_ptr(),
            attr.len(),
        )
    };
    nix::errno::Errno::result(r).map(drop)
}
