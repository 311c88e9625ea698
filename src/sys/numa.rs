//! set_mempolicy(2), which libc and nix do not wrap.

/// set_mempolicy(2) for the calling thread: `mode` with its flags or'ed
/// in, and the node mask as words of 64 nodes (empty: no nodes).
pub fn set_mempolicy(mode: libc::c_int, nodemask: &[libc::c_ulong]) -> nix::Result<()> {
    let (ptr, maxnode) = if nodemask.is_empty() {
        (std::ptr::null(), 0)
    } else {
        // The kernel takes maxnode as one more than the bits it reads.
        (
            nodemask.as_ptr(),
            (nodemask.len() * libc::c_ulong::BITS as usize + 1) as libc::c_ulong,
        )
    };
    // SAFETY: the kernel reads at most maxnode - 1 bits from `ptr`, which
    // points at `nodemask` (that many bits long) or is null with
    // maxnode 0.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    nix::errno::Errno::result(r).map(drop)
}
