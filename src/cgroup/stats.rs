//! A container's resource usage read from its cgroup v2 files, in the
//! shape of runc's `events` JSON (`{"type": "stats", "id", "data"}`, with
//! cpu, memory, pids, blkio and hugetlb), and the OOM-kill count that
//! `events` turns into "oom" events. A controller the cgroup does not
//! have leaves its part out rather than reporting zeros as if measured.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

/// One line of `events`, with runc's keys in runc's order (callers match
/// the line's start, `{"type":"stats","id":...`): "stats" with `data`,
/// "oom" without.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl<'a> Event<'a> {
    /// A "stats" event: what `dir` reads now.
    pub fn stats(id: &'a str, dir: &Path) -> Self {
        Event {
            kind: "stats",
            id,
            data: Some(read_stats(dir)),
        }
    }

    /// An "oom" event.
    pub fn oom(id: &'a str) -> Self {
        Event {
            kind: "oom",
            id,
            data: None,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio: Option<Blkio>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds, as runc reports them (cgroup v2 counts microseconds).
#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    pub total: u64,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Throttling {
    pub periods: u64,
    #[serde(rename = "throttledPeriods")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    /// 0 means no limit (runc's convention for "max").
    pub limit: u64,
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    pub current: u64,
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Blkio {
    #[serde(rename = "ioServiceBytesRecursive")]
    pub service_bytes: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive")]
    pub serviced: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// A single number, "max" being 0 (no limit).
fn number(dir: &Path, file: &str) -> Option<u64> {
    let v = read(dir, file)?;
    let v = v.trim();
    if v == "max" {
        Some(0)
    } else {
        v.parse().ok()
    }
}

/// A flat-keyed file (`cpu.stat`, `memory.stat`, `memory.events`).
fn keyed(dir: &Path, file: &str) -> Option<BTreeMap<String, u64>> {
    let text = read(dir, file)?;
    Some(
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect(),
    )
}

/// Reads the stats of the cgroup at `dir`.
pub fn read_stats(dir: &Path) -> Stats {
    let mut s = Stats::default();
    if let Some(c) = keyed(dir, "cpu.stat") {
        let g = |k: &str| c.get(k).copied().unwrap_or(0);
        s.cpu = Some(Cpu {
            usage: CpuUsage {
                total: g("usage_usec") * 1000,
                kernel: g("system_usec") * 1000,
                user: g("user_usec") * 1000,
            },
            throttling: Throttling {
                periods: g("nr_periods"),
                throttled_periods: g("nr_throttled"),
                throttled_time: g("throttled_usec") * 1000,
            },
        });
    }
    if let Some(usage) = number(dir, "memory.current") {
        let events = keyed(dir, "memory.events").unwrap_or_default();
        s.memory = Some(Memory {
            usage: MemoryEntry {
                limit: number(dir, "memory.max").unwrap_or(0),
                usage,
                max: number(dir, "memory.peak").unwrap_or(0),
                failcnt: events.get("max").copied().unwrap_or(0),
            },
            swap: MemoryEntry {
                limit: number(dir, "memory.swap.max").unwrap_or(0),
                usage: number(dir, "memory.swap.current").unwrap_or(0),
                max: number(dir, "memory.swap.peak").unwrap_or(0),
                failcnt: 0,
            },
            raw: keyed(dir, "memory.stat").unwrap_or_default(),
        });
    }
    if let Some(current) = number(dir, "pids.current") {
        s.pids = Some(Pids {
            current,
            limit: number(dir, "pids.max").unwrap_or(0),
        });
    }
    if let Some(text) = read(dir, "io.stat") {
        let mut b = Blkio::default();
        // "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0"
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
                continue;
            };
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(value) = v.parse() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut b.service_bytes, "Read"),
                    "wbytes" => (&mut b.service_bytes, "Write"),
                    "rios" => (&mut b.serviced, "Read"),
                    "wios" => (&mut b.serviced, "Write"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value,
                });
            }
        }
        s.blkio = Some(b);
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(size) = name
                .strip_prefix("hugetlb.")
                .and_then(|n| n.strip_suffix(".current"))
            else {
                continue;
            };
            if size.contains('.') {
                continue; // hugetlb.2MB.rsvd.current
            }
            let events = keyed(dir, &format!("hugetlb.{size}.events")).unwrap_or_default();
            s.hugetlb.insert(
                size.to_string(),
                Hugetlb {
                    usage: number(dir, &name).unwrap_or(0),
                    max: number(dir, &format!("hugetlb.{size}.max")).unwrap_or(0),
                    failcnt: events.get("max").copied().unwrap_or(0),
                },
            );
        }
    }
    s
}

/// How many processes the OOM killer has killed in the cgroup.
pub fn oom_kills(dir: &Path) -> u64 {
    oom_counts(dir).kills
}

/// `memory.events`' OOM counters: `max` (`limit_hits`) moves each time
/// the cgroup's usage is about to pass its limit, `oom` when reclaim then
/// fails (before the killer picks a victim), `oom_kill` once the victim
/// has been sent SIGKILL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OomCounts {
    pub ooms: u64,
    pub kills: u64,
    pub limit_hits: u64,
}

/// Both counters, zero where the file or a key is missing.
pub fn oom_counts(dir: &Path) -> OomCounts {
    read_oom_counts(dir).unwrap_or_default()
}

/// Both counters, None where `memory.events` cannot be read (the cgroup
/// is gone, or has no memory controller).
pub fn read_oom_counts(dir: &Path) -> Option<OomCounts> {
    let e = keyed(dir, "memory.events")?;
    Some(OomCounts {
        ooms: e.get("oom").copied().unwrap_or(0),
        kills: e.get("oom_kill").copied().unwrap_or(0),
        limit_hits: e.get("max").copied().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_cgroup_in_runcs_shape() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let w = |f: &str, v: &str| fs::write(d.join(f), v).unwrap();
        w("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 3\nthrottled_usec 70\n");
        w("memory.current", "4096\n");
        w("memory.max", "max\n");
        w("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n");
        w("memory.stat", "anon 1024\nfile 2048\n");
        w("pids.current", "3\n");
        w("pids.max", "10\n");
        w(
            "io.stat",
            "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        w("hugetlb.2MB.current", "0\n");
        w("hugetlb.2MB.max", "4194304\n");
        w("hugetlb.2MB.rsvd.current", "0\n");
        let v = serde_json::to_value(read_stats(d)).unwrap();
        assert_eq!(v["cpu"]["usage"]["total"], 1_500_000);
        assert_eq!(v["cpu"]["usage"]["kernel"], 500_000);
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 3);
        assert_eq!(v["memory"]["usage"]["usage"], 4096);
        assert_eq!(v["memory"]["usage"]["limit"], 0);
        assert_eq!(v["memory"]["usage"]["failcnt"], 2);
        assert_eq!(v["memory"]["raw"]["file"], 2048);
        assert_eq!(v["pids"], serde_json::json!({"current": 3, "limit": 10}));
        assert_eq!(v["blkio"]["ioServiceBytesRecursive"][1]["op"], "Write");
        assert_eq!(v["blkio"]["ioServicedRecursive"][0]["value"], 1);
        assert_eq!(
            v["hugetlb"],
            serde_json::json!({"2MB": {"usage": 0, "max": 4194304, "failcnt": 0}})
        );
        assert_eq!(oom_kills(d), 1);
        assert_eq!(
            oom_counts(d),
            OomCounts {
                ooms: 1,
                kills: 1,
                limit_hits: 2
            }
        );
        assert_eq!(read_oom_counts(&d.join("gone")), None);
        assert_eq!(oom_counts(&d.join("gone")), OomCounts::default());
    }

    #[test]
    fn events_are_runcs_lines_in_runcs_key_order() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("pids.current"), "2\n").unwrap();
        fs::write(t.path().join("pids.max"), "max\n").unwrap();
        let line = serde_json::to_string(&Event::stats("c1", t.path())).unwrap();
        assert!(
            line.starts_with(r#"{"type":"stats","id":"c1","data":{"#),
            "{line}"
        );
        assert_eq!(
            serde_json::to_string(&Event::oom("c1")).unwrap(),
            r#"{"type":"oom","id":"c1"}"#
        );
    }

    #[test]
    fn a_missing_controller_is_left_out() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("cpu.stat"), "usage_usec 1\n").unwrap();
        let v = serde_json::to_value(read_stats(t.path())).unwrap();
        assert!(v.get("memory").is_none() && v.get("pids").is_none(), "{v}");
        assert_eq!(oom_kills(t.path()), 0);
    }
}
