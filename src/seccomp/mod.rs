//! `linux.seccomp`: an OCI profile compiled to BPF with `seccompiler`.
//!
//! A `seccompiler::SeccompFilter` has one match action and one mismatch
//! action, while each OCI rule has its own. The kernel runs every
//! installed filter and keeps the result of highest precedence
//! (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > TRACE > LOG > ALLOW), so a
//! profile becomes:
//! - a *default* filter: every rule of the profile (whatever its action)
//!   matches ALLOW, anything else gets the default action;
//! - one filter per distinct rule action (action and its errno/trace
//!   value): its rules match that action, anything else is ALLOW.
//!
//! A syscall no rule matches is allowed by every action filter and gets
//! the default action from the default filter. A syscall an ERRNO rule
//! matches is allowed by the default filter and refused by its action
//! filter: ERRNO wins. Rules of one profile that contradict each other
//! resolve to the stronger action.
//!
//! SCMP_ACT_NOTIFY: seccompiler has no user-notification action, so its
//! rules are built with a marker ERRNO value that no real errno has, and
//! the marker's return instructions are rewritten to SECCOMP_RET_USER_NOTIF
//! (which ranks between ERRNO and TRACE). That filter is installed with
//! SECCOMP_FILTER_FLAG_NEW_LISTENER; its descriptor goes to the agent at
//! `listenerPath` (see `notify`).
//!
//! Architectures: the filters are built for x86_64. A syscall made through
//! the i386 entry (`int 0x80`) fails seccompiler's architecture check and
//! kills the process. x32 syscalls carry the x86_64 architecture with bit
//! 30 set in their number, so no x86_64 rule matches them; a first filter
//! kills the process on them too, so a deny-list profile cannot be
//! bypassed through the x32 table.

pub mod notify;
pub mod syscalls_x86_64;

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

/// The actions, operators and flags rt implements (`rt features`).
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];
pub const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The x32 ABI marks its syscall numbers with this bit.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The ERRNO data standing in for SCMP_ACT_NOTIFY until the program is
/// built: errno values stop at 4095.
const NOTIFY_MARK: u32 = 0xfffe;
const RET_NOTIFY_MARK: u32 = libc::SECCOMP_RET_ERRNO | NOTIFY_MARK;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 1 << 5;

/// Where a profile with SCMP_ACT_NOTIFY rules sends its listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub listener_path: std::path::PathBuf,
    pub metadata: Option<String>,
}

/// A profile ready to install: BPF programs in installation order, and
/// the seccomp(2) flags.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub programs: Vec<BpfProgram>,
    pub flags: libc::c_ulong,
    /// The program that notifies an agent, if any (an index into
    /// `programs`), and the agent.
    pub notify: Option<(usize, Agent)>,
    /// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, for the notifying filter.
    pub wait_killable: bool,
}

impl Compiled {
    /// An agent must get the listener while the process still talks to
    /// rt, so such a profile is installed at the end of setup, not at the
    /// exec.
    pub fn has_agent(&self) -> bool {
        self.notify.is_some()
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidField {
        field: "linux.seccomp".into(),
        reason: msg.into(),
    }
}

/// The OCI action as seccompiler's, with libseccomp's defaults for the
/// errno (EPERM) and trace values.
fn action(a: LinuxSeccompAction, ret: Option<u32>) -> Result<SeccompAction> {
    use LinuxSeccompAction::*;
    Ok(match a {
        ScmpActAllow => SeccompAction::Allow,
        ScmpActErrno => SeccompAction::Errno(ret.unwrap_or(libc::EPERM as u32)),
        ScmpActTrace => SeccompAction::Trace(ret.unwrap_or(libc::EPERM as u32)),
        ScmpActKill | ScmpActKillThread => SeccompAction::KillThread,
        ScmpActKillProcess => SeccompAction::KillProcess,
        ScmpActTrap => SeccompAction::Trap,
        ScmpActLog => SeccompAction::Log,
        ScmpActNotify => SeccompAction::Errno(NOTIFY_MARK),
    })
}

fn condition(sys: &str, arg: &oci_spec::runtime::LinuxSeccompArg) -> Result<SeccompCondition> {
    use LinuxSeccompOperator::*;
    let (op, value) = match arg.op() {
        ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        // libseccomp's masked compare: (arg & value) == valueTwo.
        ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| invalid(format!("{sys}: argument index {} is not 0-5", arg.index())))?;
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| invalid(format!("{sys}: {e}")))
}

/// Rules per syscall number; `None` means "unconditionally".
type ActionRules = BTreeMap<u32, (SeccompAction, RuleMap)>;
type RuleMap = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn add_rule(map: &mut RuleMap, nr: i64, rule: Option<SeccompRule>) {
    let entry = map.entry(nr).or_insert_with(|| Some(Vec::new()));
    match (entry.as_mut(), rule) {
        // Already unconditional: nothing narrows it.
        (None, _) => {}
        (Some(_), None) => *entry = None,
        (Some(rules), Some(r)) => rules.push(r),
    }
}

fn to_seccompiler(map: RuleMap) -> BTreeMap<i64, Vec<SeccompRule>> {
    // seccompiler matches a syscall with an empty rule list unconditionally.
    map.into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect()
}

/// The rules of the profile for `sys`, or None when it has no conditions.
/// All conditions of an entry must hold at once, except when two of them
/// test the same argument: then each condition is a rule of its own, and
/// any one of them matches (runc's reading, which profiles such as
/// `"args": [{"index": 0, "value": 100}, {"index": 0, "value": 9001}]`
/// rely on; no argument can equal both).
fn rules_of(sys: &str, s: &LinuxSyscall) -> Result<Option<Vec<SeccompRule>>> {
    let args = s.args().as_deref().unwrap_or(&[]);
    if args.is_empty() {
        return Ok(None);
    }
    let conds = args
        .iter()
        .map(|a| condition(sys, a))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = [false; 6];
    let same_arg_twice = args.iter().any(|a| {
        let i = a.index();
        std::mem::replace(&mut seen[i], true)
    });
    let rule =
        |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(|e| invalid(format!("{sys}: {e}")));
    Ok(Some(if same_arg_twice {
        conds
            .into_iter()
            .map(|c| rule(vec![c]))
            .collect::<Result<_>>()?
    } else {
        vec![rule(conds)?]
    }))
}

/// Compiles a profile. Syscall names this architecture does not have are
/// skipped, as runc does (profiles list syscalls of every architecture).
pub fn compile(profile: &LinuxSeccomp) -> Result<Compiled> {
    let agent = agent_of(profile)?;
    if profile
        .syscalls()
        .iter()
        .flatten()
        .any(|s| s.errno_ret() == Some(NOTIFY_MARK))
    {
        return Err(invalid(format!("errnoRet {NOTIFY_MARK} is not an errno")));
    }
    let (flags, wait_killable) = filter_flags(profile);
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let (all, by_action) = rules_by_action(profile)?;
    let mut programs = vec![x32_guard()];
    for (_, (act, rules)) in by_action {
        programs.push(build(rules, SeccompAction::Allow, act)?);
    }
    // The default filter last: once it is in, seccomp(2) itself must pass
    // it, which an allow-list profile need not allow.
    if default != SeccompAction::Allow {
        let newest = all.keys().max().copied();
        let mut prog = build(all, default, SeccompAction::Allow)?;
        if let Some(newest) = newest {
            prog = newer_than_profile_enosys(newest, prog);
        }
        programs.push(prog);
    }
    let notify_at = mark_notify(&mut programs);
    if wait_killable && notify_at.is_empty() {
        return Err(invalid(
            "flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is for profiles with SCMP_ACT_NOTIFY rules",
        ));
    }
    let notify = match (notify_at.as_slice(), agent) {
        ([], _) => None,
        ([i], Some(a)) => Some((*i, a)),
        _ => {
            return Err(Error::Unsupported(
                "linux.seccomp: SCMP_ACT_NOTIFY as the default action and for rules at once".into(),
            ))
        }
    };
    Ok(Compiled {
        programs,
        flags,
        notify,
        wait_killable,
    })
}

/// The seccomp agent a notifying profile sends its listener to.
fn agent_of(profile: &LinuxSeccomp) -> Result<Option<Agent>> {
    // The filter is in before rt's last writes (the agent's listener,
    // the exec fifo): a notified write would wait on an agent that waits
    // on rt. runc refuses it in the same words.
    let notified_write = profile.syscalls().iter().flatten().any(|s| {
        s.action() == LinuxSeccompAction::ScmpActNotify && s.names().iter().any(|n| n == "write")
    });
    if notified_write {
        return Err(invalid(
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ));
    }
    let notifies = profile.default_action() == LinuxSeccompAction::ScmpActNotify
        || profile
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify);
    Ok(match (notifies, profile.listener_path()) {
        (true, Some(p)) if p.is_absolute() => Some(Agent {
            listener_path: p.clone(),
            metadata: profile.listener_metadata().clone(),
        }),
        (true, Some(p)) => {
            return Err(invalid(format!(
                "listenerPath {}: must be an absolute path",
                p.display()
            )))
        }
        (true, None) => {
            return Err(invalid(
                "SCMP_ACT_NOTIFY needs listenerPath (the seccomp agent's socket)",
            ))
        }
        // runc ignores it (its suite checks that such a profile runs).
        (false, Some(p)) => {
            log::warn!(
                "linux.seccomp.listenerPath {}: ignored, no rule uses SCMP_ACT_NOTIFY",
                p.display()
            );
            None
        }
        (false, None) => None,
    })
}

/// The filter flags for seccomp(2), and whether the notifying filter
/// waits killably (WAIT_KILLABLE_RECV, which only it may carry).
fn filter_flags(profile: &LinuxSeccomp) -> (libc::c_ulong, bool) {
    let mut flags: libc::c_ulong = 0;
    let mut wait_killable = false;
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // Only meaningful with a listener: kept for the notifying
            // filter (see install), checked below.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                wait_killable = true;
                0
            }
            // One thread: the init or the exec'd process, before exec.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
        } as libc::c_ulong;
    }
    (flags, wait_killable)
}

/// Rules by action: every rule (for the default filter, where they allow)
/// and, per distinct non-allow action, the rules that take it. Keyed by
/// the action's BPF return value, so ERRNO(1) and ERRNO(38) are different
/// filters. Names this architecture lacks are skipped.
fn rules_by_action(profile: &LinuxSeccomp) -> Result<(RuleMap, ActionRules)> {
    let mut all: RuleMap = BTreeMap::new();
    let mut by_action: ActionRules = BTreeMap::new();
    for (i, s) in profile.syscalls().iter().flatten().enumerate() {
        let act = action(s.action(), s.errno_ret())
            .map_err(|e| invalid(format!("syscalls[{i}]: {e}")))?;
        for name in s.names() {
            let Some(nr) = syscalls_x86_64::number(name) else {
                log::debug!("seccomp: no syscall {name} on x86_64; skipped");
                continue;
            };
            let rules: Vec<Option<SeccompRule>> = match rules_of(name, s)? {
                None => vec![None],
                Some(r) => r.into_iter().map(Some).collect(),
            };
            for rule in rules {
                add_rule(&mut all, nr, rule.clone());
                if act != SeccompAction::Allow {
                    let entry = by_action
                        .entry(u32::from(act.clone()))
                        .or_insert_with(|| (act.clone(), BTreeMap::new()));
                    add_rule(&mut entry.1, nr, rule);
                }
            }
        }
    }
    Ok((all, by_action))
}

/// One seccompiler filter compiled to BPF.
fn build(rules: RuleMap, mismatch: SeccompAction, matched: SeccompAction) -> Result<BpfProgram> {
    let filter = SeccompFilter::new(to_seccompiler(rules), mismatch, matched, TargetArch::x86_64)
        .map_err(|e| invalid(e.to_string()))?;
    BpfProgram::try_from(filter).map_err(|e| invalid(e.to_string()))
}

/// The notify marker becomes USER_NOTIF; returns the programs that hold
/// it (the kernel allows one listener per process, so there may be one).
fn mark_notify(programs: &mut [BpfProgram]) -> Vec<usize> {
    let mut notify_at = Vec::new();
    for (i, prog) in programs.iter_mut().enumerate() {
        let mut marked = false;
        for ins in prog.iter_mut() {
            if ins.code == 0x06 && ins.k == RET_NOTIFY_MARK {
                ins.k = SECCOMP_RET_USER_NOTIF;
                marked = true;
            }
        }
        if marked {
            notify_at.push(i);
        }
    }
    notify_at
}

/// The default filter, preceded by: a syscall numbered above every one
/// the profile names gets ENOSYS, not the default action. A profile
/// written before the syscall existed cannot mean to refuse it, and
/// ENOSYS is what makes a program fall back to the older call it
/// replaces (glibc's rseq, clone3, faccessat2...); runc does the same.
/// Only for the native architecture: the x32 guard and the architecture
/// check of the filter itself still apply.
fn newer_than_profile_enosys(newest: i64, prog: BpfProgram) -> BpfProgram {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
    const JGT_K: u16 = 0x05 | 0x20; // BPF_JMP | BPF_JGT | BPF_K
    const RET_K: u16 = 0x06;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let ins = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let mut out = vec![
        // seccomp_data.arch is at offset 4, .nr at 0.
        ins(LD_W_ABS, 0, 0, 4),
        ins(JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
        ins(LD_W_ABS, 0, 0, 0),
        ins(JGT_K, 0, 1, u32::try_from(newest).unwrap_or(u32::MAX)),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ];
    // Jumps in BPF are relative and only forward: the program after the
    // stub is unchanged.
    out.extend(prog);
    out
}

/// A filter that kills the process on any x32 syscall, allowing the rest.
fn x32_guard() -> BpfProgram {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
    const JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let stmt = |code, k| sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        // seccomp_data.nr is at offset 0.
        stmt(LD_W_ABS, 0),
        sock_filter {
            code: JSET_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(RET_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Installs the filters in the calling thread. Without no_new_privs this
/// needs CAP_SYS_ADMIN, which the init holds for it until right after
/// (see `init::process::finish_process`). Returns the notification listener, if the profile
/// has an agent.
pub fn install(c: &Compiled) -> Result<Option<std::os::fd::OwnedFd>> {
    let mut listener = None;
    for (i, prog) in c.programs.iter().enumerate() {
        let notifies = c.notify.as_ref().is_some_and(|(at, _)| *at == i);
        let flags = match (notifies, c.wait_killable) {
            (true, true) => {
                c.flags | SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
            (true, false) => c.flags | SECCOMP_FILTER_FLAG_NEW_LISTENER,
            (false, _) => c.flags,
        };
        let fd = crate::sys::seccomp::set_mode_filter(prog, flags as libc::c_ulong, notifies)
            .map_err(|source| Error::Sys {
                context: "linux.seccomp: install the filter".into(),
                source,
            })?;
        if fd.is_some() {
            listener = fd;
        }
    }
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn one_filter_per_distinct_action() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}
            ]
        }));
        let c = compile(&p).unwrap();
        // x32 guard, default, ERRNO(38), KILL_PROCESS.
        assert_eq!(c.programs.len(), 4);
    }

    #[test]
    fn allow_by_default_needs_no_default_filter() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]
        }));
        assert_eq!(compile(&p).unwrap().programs.len(), 2);
    }

    #[test]
    fn a_notified_write_is_refused() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        let e = compile(&p).unwrap_err().to_string();
        assert!(
            e.contains("SCMP_ACT_NOTIFY cannot be used for the write syscall"),
            "{e}"
        );
    }

    #[test]
    fn notify_needs_a_listener_and_bad_args_are_errors() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        assert!(compile(&p)
            .unwrap_err()
            .to_string()
            .contains("listenerPath"));
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "m",
            "syscalls": [{"names": ["mount", "umount2"], "action": "SCMP_ACT_NOTIFY"},
                         {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
        }));
        let c = compile(&p).unwrap();
        let (at, agent) = c.notify.clone().expect("a notifying program");
        assert_eq!(agent.listener_path, std::path::Path::new("/run/agent.sock"));
        assert_eq!(agent.metadata.as_deref(), Some("m"));
        assert!(c.programs[at].iter().any(|i| i.k == SECCOMP_RET_USER_NOTIF));
        assert!(c.programs.iter().flatten().all(|i| i.k != RET_NOTIFY_MARK));
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]
        }));
        let c = compile(&p).expect("a listenerPath no rule needs is ignored");
        assert!(c.notify.is_none());
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]
        }));
        assert!(compile(&p)
            .unwrap_err()
            .to_string()
            .contains("argument index 7"));
    }
}
