//! A container's cgroup v2 usage in containerd's `io.containerd.cgroups.v2.Metrics`
//! (what `ctr task metrics` and the CRI stats show), from rt's own reader.

use std::path::Path;

use containerd_shim::protos::cgroups_v2::metrics::{
    CPUStat, HugeTlbStat, IOEntry, IOStat, MemoryEvents, MemoryStat, Metrics, PidsStat,
};
use rt::cgroup::stats::{read_oom_counts, read_stats, OomCounts, Stats};

use super::oom::OomWatch;

/// The live cgroup at `dir`; its OOM counts are at least what `oom` has
/// read (the watch may have caught a count the file no longer shows).
pub fn from_cgroup(dir: &Path, oom: Option<&OomWatch>) -> Metrics {
    let s = read_stats(dir);
    let mut m = from_stats(&s);
    if let Some(now) = read_oom_counts(dir) {
        let seen = oom.map(OomWatch::counts).unwrap_or_default();
        m.memory_events = Some(memory_events(
            OomCounts {
                ooms: now.ooms.max(seen.ooms),
                kills: now.kills.max(seen.kills),
                limit_hits: now.limit_hits.max(seen.limit_hits),
            },
            s.memory.as_ref().map_or(0, |mem| mem.usage.failcnt),
        ))
        .into();
    }
    m
}

/// A container whose cgroup may be gone: only the OOM counts its watch
/// read (every other figure would be a guess).
pub fn from_oom_counts(c: OomCounts) -> Metrics {
    let mut m = Metrics::new();
    m.memory_events = Some(memory_events(c, 0)).into();
    m
}

fn memory_events(c: OomCounts, max: u64) -> MemoryEvents {
    MemoryEvents {
        max,
        oom: c.ooms,
        oom_kill: c.kills,
        ..Default::default()
    }
}

pub fn from_stats(s: &Stats) -> Metrics {
    let mut m = Metrics::new();
    if let Some(c) = &s.cpu {
        m.cpu = Some(CPUStat {
            usage_usec: c.usage.total / 1000,
            user_usec: c.usage.user / 1000,
            system_usec: c.usage.kernel / 1000,
            nr_periods: c.throttling.periods,
            nr_throttled: c.throttling.throttled_periods,
            throttled_usec: c.throttling.throttled_time / 1000,
            ..Default::default()
        })
        .into();
    }
    if let Some(p) = &s.pids {
        m.pids = Some(PidsStat {
            current: p.current,
            limit: p.limit,
            ..Default::default()
        })
        .into();
    }
    if let Some(mem) = &s.memory {
        let raw = |k: &str| mem.raw.get(k).copied().unwrap_or(0);
        m.memory = Some(MemoryStat {
            anon: raw("anon"),
            file: raw("file"),
            kernel_stack: raw("kernel_stack"),
            slab: raw("slab"),
            sock: raw("sock"),
            shmem: raw("shmem"),
            file_mapped: raw("file_mapped"),
            file_dirty: raw("file_dirty"),
            file_writeback: raw("file_writeback"),
            anon_thp: raw("anon_thp"),
            inactive_anon: raw("inactive_anon"),
            active_anon: raw("active_anon"),
            inactive_file: raw("inactive_file"),
            active_file: raw("active_file"),
            unevictable: raw("unevictable"),
            slab_reclaimable: raw("slab_reclaimable"),
            slab_unreclaimable: raw("slab_unreclaimable"),
            pgfault: raw("pgfault"),
            pgmajfault: raw("pgmajfault"),
            usage: mem.usage.usage,
            usage_limit: mem.usage.limit,
            max_usage: mem.usage.max,
            swap_usage: mem.swap.usage,
            swap_limit: mem.swap.limit,
            ..Default::default()
        })
        .into();
    }
    if let Some(b) = &s.blkio {
        let mut io = IOStat::new();
        for (list, read) in [(&b.service_bytes, true), (&b.serviced, false)] {
            for e in list {
                let at = match io
                    .usage
                    .iter()
                    .position(|u| u.major == e.major && u.minor == e.minor)
                {
                    Some(at) => at,
                    None => {
                        io.usage.push(IOEntry {
                            major: e.major,
                            minor: e.minor,
                            ..Default::default()
                        });
                        io.usage.len() - 1
                    }
                };
                let u = &mut io.usage[at];
                match (e.op.as_str(), read) {
                    ("Read", true) => u.rbytes = e.value,
                    ("Write", true) => u.wbytes = e.value,
                    ("Read", false) => u.rios = e.value,
                    ("Write", false) => u.wios = e.value,
                    _ => {}
                }
            }
        }
        m.io = Some(io).into();
    }
    for (size, h) in &s.hugetlb {
        m.hugetlb.push(HugeTlbStat {
            current: h.usage,
            max: h.max,
            pagesize: size.clone(),
            failcnt: h.failcnt,
            ..Default::default()
        });
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use rt::cgroup::stats::{Blkio, BlkioEntry, Cpu, Hugetlb, Pids};

    #[test]
    fn usage_maps_to_containerds_fields() {
        let mut s = Stats {
            cpu: Some(Cpu::default()),
            pids: Some(Pids {
                current: 3,
                limit: 10,
            }),
            blkio: Some(Blkio {
                service_bytes: vec![
                    BlkioEntry {
                        major: 8,
                        minor: 0,
                        op: "Read".into(),
                        value: 4096,
                    },
                    BlkioEntry {
                        major: 8,
                        minor: 0,
                        op: "Write".into(),
                        value: 512,
                    },
                ],
                serviced: vec![],
            }),
            ..Default::default()
        };
        s.cpu.as_mut().unwrap().usage.total = 5_000_000;
        s.hugetlb.insert(
            "2MB".into(),
            Hugetlb {
                usage: 0,
                max: 4194304,
                failcnt: 1,
            },
        );
        let m = from_stats(&s);
        assert_eq!(m.cpu.usage_usec, 5000, "ns to µs");
        assert_eq!((m.pids.current, m.pids.limit), (3, 10));
        assert_eq!(m.io.usage.len(), 1, "one entry per device");
        assert_eq!((m.io.usage[0].rbytes, m.io.usage[0].wbytes), (4096, 512));
        assert_eq!(m.hugetlb[0].pagesize, "2MB");
        assert_eq!(m.hugetlb[0].max, 4194304);
        assert!(m.memory.is_none(), "no memory controller, no memory stats");
        assert!(m.memory_events.is_none());
    }

    #[test]
    fn oom_counts_reach_memory_events() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(d.join("memory.current"), "4096\n").unwrap();
        std::fs::write(d.join("memory.max"), "max\n").unwrap();
        std::fs::write(d.join("memory.stat"), "anon 1024\n").unwrap();
        let m = from_cgroup(d, None);
        assert_eq!(
            (
                m.memory_events.max,
                m.memory_events.oom,
                m.memory_events.oom_kill
            ),
            (4, 2, 1)
        );
        // The cgroup gone: the counts a watch read are all there is.
        let m = from_oom_counts(OomCounts {
            ooms: 1,
            kills: 1,
            ..Default::default()
        });
        assert_eq!(m.memory_events.oom_kill, 1);
        assert!(m.memory.is_none() && m.cpu.is_none());
    }
}
