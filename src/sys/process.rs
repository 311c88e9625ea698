//! Facts about processes read from /proc: a process's start time, and
//! rt's own executable.

/// The device and inode of rt's own executable, looked up once.
pub fn runtime_exe() -> Option<(u64, u64)> {
    static EXE: std::sync::OnceLock<Option<(u64, u64)>> = std::sync::OnceLock::new();
    *EXE.get_or_init(|| {
        let st = nix::sys::stat::stat("/proc/self/exe").ok()?;
        Some((st.st_dev, st.st_ino))
    })
}

/// A process's start time in clock ticks since boot (field 22 of
/// /proc/<pid>/stat), or None if it is gone or a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let st = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    if st.state == 'Z' || st.state == 'X' {
        return None;
    }
    Some(st.starttime)
}
