//! The new mount API that nix does not wrap: open_tree(2),
//! mount_setattr(2) and move_mount(2).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// The kernel's `struct mount_attr`.
#[repr(C)]
#[derive(Default)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// open_tree(OPEN_TREE_CLONE) of the mount at `src`: a detached copy,
/// with its submounts when `recursive`.
pub fn open_tree_clone(src: impl AsFd, recursive: bool) -> nix::Result<OwnedFd> {
    let mut flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree on a valid descriptor with an empty C string; it
    // returns a new descriptor, owned below.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            src.as_fd().as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    let tree = nix::errno::Errno::result(tree)?;
    // SAFETY: a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(super::fd::syscall_int(tree)) })
}

/// mount_setattr(2) on the mount `fd` refers to (AT_EMPTY_PATH), and on
/// its submounts too when `recursive`.
pub fn mount_setattr(fd: impl AsFd, recursive: bool, attr: &MountAttr) -> nix::Result<()> {
    let at = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: a valid descriptor, an empty C string and a properly sized
    // mount_attr that the kernel only reads.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            at,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

/// move_mount(2) of the detached tree `from` onto the directory `to`.
pub fn move_mount(from: impl AsFd, to: impl AsFd) -> nix::Result<()> {
    // SAFETY: move_mount between two valid descriptors with empty paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_fd().as_raw_fd(),
            c"".as_ptr(),
            to.as_fd().as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

/// A new superblock of `fstype` with `options` (key, value), made with
/// fsopen/fsconfig and returned as a detached mount (fsmount) with
/// `attr` (MOUNT_ATTR_*): attached later by descriptor, never by path.
pub fn fs_detached(
    fstype: &std::ffi::CStr,
    options: &[(&std::ffi::CStr, &std::ffi::CStr)],
    attr: u64,
) -> nix::Result<OwnedFd> {
    // SAFETY: fsopen with a NUL-terminated name; it returns a new
    // descriptor, owned below.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    let fs = nix::errno::Errno::result(fs)?;
    // SAFETY: a new descriptor nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(super::fd::syscall_int(fs)) };
    for (key, value) in options {
        // SAFETY: fsconfig on our fs context with two NUL-terminated
        // strings the kernel only reads.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        nix::errno::Errno::result(r)?;
    }
    // SAFETY: fsconfig's create command takes no pointers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    nix::errno::Errno::result(r)?;
    // SAFETY: fsmount on our configured context; it returns a new
    // descriptor, owned below.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attr) };
    let m = nix::errno::Errno::result(m)?;
    // SAFETY: a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(super::fd::syscall_int(m)) })
}
