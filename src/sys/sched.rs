//! sched_setattr(2), ioprio_set(2) and personality(2), which libc and nix
//! do not wrap.

/// The kernel's `struct sched_attr` (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_setattr(2) for the calling thread.
pub fn sched_setattr(attr: &SchedAttr) -> nix::Result<()> {
    // SAFETY: sched_setattr(0 = this thread, a valid sched_attr whose
    // size field is its size, flags 0); the kernel only reads it.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const SchedAttr, 0) };
    nix::errno::Errno::result(r).map(drop)
}

/// ioprio_set(2) for the calling process.
pub fn ioprio_set(value: libc::c_int) -> nix::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set takes three integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    nix::errno::Errno::result(r).map(drop)
}

/// personality(2).
pub fn personality(value: libc::c_ulong) -> nix::Result<()> {
    // SAFETY: personality takes one integer.
    let r = unsafe { libc::personality(value) };
    nix::errno::Errno::result(r).map(drop)
}
