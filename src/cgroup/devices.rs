//! Device access rules: `linux.resources.devices`, then the defaults every
//! container may use (as runc: a node listed in `linux.devices` is made,
//! but reaching it takes a rule of its own),
//! compiled to a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
//! container's cgroup (cgroup v2 has no devices controller files).
//!
//! Rules are matched last to first; the first match decides. A request
//! matches a rule when its type and numbers match and the requested access
//! is a subset of the rule's. No match denies.

use std::os::fd::BorrowedFd;

use oci_spec::runtime::{LinuxDeviceType, Spec};

use crate::error::{Context, Error, Result};

pub(super) const ACC_MKNOD: u32 = 1;
pub(super) const ACC_READ: u32 = 2;
pub(super) const ACC_WRITE: u32 = 4;
pub(super) const DEV_BLOCK: u32 = 1;
pub(super) const DEV_CHAR: u32 = 2;

/// One rule: `None` type, major or minor is a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

/// What every container may use whatever its rules say (runc's list).
pub const DEFAULT_ALLOWED: &[Rule] = &[
    Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    Rule {
        allow: true,
        typ: Some(DEV_BLOCK),
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: Some(1),
        minor: Some(3),
        access: 7,
    }, // null
    Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: Some(1),
        minor: Some(8),
        access: 7,
    }, // random
    Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: Some(1),
        minor: Some(7),
        access: 7,
    }, // full
    Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: Some(5),
        minor: Some(0),
        access: 7,
    }, // tty
    Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: Some(1),
        minor: Some(5),
        access: 7,
    }, // zero
    Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: Some(1),
        minor: Some(9),
        access: 7,
    }, // urandom
    Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: Some(5),
        minor: Some(1),
        access: 7,
    }, // console
    Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: Some(136),
        minor: None,
        access: 7,
    }, // pts
    Rule {
        allow: true,
        typ: Some(DEV_CHAR),
        major: Some(5),
        minor: Some(2),
        access: 7,
    }, // ptmx
];

/// r, w and m; any other letter means nothing and is ignored, with a
/// warning, as runc ignores it (runc's suite writes "rwa").
fn parse_access(s: &str, field: &str) -> u32 {
    let mut a = 0;
    for c in s.chars() {
        a |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                log::warn!(
                    "{field}.access: {c:?} in {s:?} ignored (only r, w and m mean something)"
                );
                0
            }
        };
    }
    a
}

fn number(n: Option<i64>) -> std::result::Result<Option<u32>, String> {
    match n {
        None | Some(-1) => Ok(None),
        // The device program compares them as 32-bit signed immediates.
        Some(v) => i32::try_from(v)
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("device number {v} is out of range")),
    }
}

fn type_code(t: LinuxDeviceType) -> Option<u32> {
    match t {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(DEV_BLOCK),
        LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
        // Fifos are not device nodes: no cgroup rule applies to them.
        LinuxDeviceType::P => Some(0),
    }
}

/// The compiled rule set of one container.
#[derive(Debug, Clone)]
pub struct Program {
    pub rules: Vec<Rule>,
}

impl Program {
    pub fn from_spec(spec: &Spec) -> Result<Program> {
        let linux = spec.linux().as_ref();
        let mut rules = Vec::new();
        let cgroup_rules = linux
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.devices().as_deref())
            .unwrap_or(&[]);
        for (i, d) in cgroup_rules.iter().enumerate() {
            let field = |reason: String| Error::InvalidField {
                field: format!("linux.resources.devices[{i}]"),
                reason,
            };
            rules.push(Rule {
                allow: d.allow(),
                typ: d.typ().map(type_code).unwrap_or(None),
                major: number(d.major()).map_err(field)?,
                minor: number(d.minor()).map_err(field)?,
                access: parse_access(
                    d.access().as_deref().unwrap_or("rwm"),
                    &format!("linux.resources.devices[{i}]"),
                ),
            });
        }
        rules.extend_from_slice(DEFAULT_ALLOWED);
        Ok(Program { rules })
    }

    /// Evaluates the rules in Rust, exactly as the BPF program does.
    pub fn allows(&self, typ: u32, major: u32, minor: u32, access: u32) -> bool {
        for r in self.rules.iter().rev() {
            if r.typ.is_some_and(|t| t != typ)
                || access & !r.access != 0
                || r.major.is_some_and(|m| m != major)
                || r.minor.is_some_and(|m| m != minor)
            {
                continue;
            }
            return r.allow;
        }
        false
    }

    /// The BPF instructions. r2 = device type, r3 = access, r4 = major,
    /// r5 = minor; each rule is a block that jumps past itself on a
    /// mismatch and returns its verdict on a match.
    // Casts: type codes and access bits are small, majors and minors are
    // within i32 (number()), a rule's block has at most 11 instructions.
    #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
    pub fn instructions(&self) -> Vec<Insn> {
        let mut p = vec![
            Insn::ldx_w(2, 1, 0),
            Insn::alu32_imm(AND, 2, 0xffff),
            Insn::ldx_w(3, 1, 0),
            Insn::alu32_imm(RSH, 3, 16),
            Insn::ldx_w(4, 1, 4),
            Insn::ldx_w(5, 1, 8),
        ];
        for r in self.rules.iter().rev() {
            let mut block: Vec<Insn> = Vec::new();
            let mut jumps = Vec::new();
            if let Some(t) = r.typ {
                jumps.push(block.len());
                block.push(Insn::jne_imm(2, t as i32));
            }
            if r.access & 7 != 7 {
                block.push(Insn::mov64_reg(1, 3));
                block.push(Insn::alu32_imm(AND, 1, (!r.access & 7) as i32));
                jumps.push(block.len());
                block.push(Insn::jne_imm(1, 0));
            }
            if let Some(m) = r.major {
                jumps.push(block.len());
                block.push(Insn::jne_imm(4, m as i32));
            }
            if let Some(m) = r.minor {
                jumps.push(block.len());
                block.push(Insn::jne_imm(5, m as i32));
            }
            block.push(Insn::mov64_imm(0, r.allow as i32));
            block.push(Insn::exit());
            let len = block.len();
            let unconditional = jumps.is_empty();
            for j in jumps {
                block[j].off = (len - j - 1) as i16;
            }
            p.extend(block);
            // Nothing after a rule that always matches is reachable, and
            // the verifier rejects unreachable instructions.
            if unconditional {
                return p;
            }
        }
        p.push(Insn::mov64_imm(0, 0));
        p.push(Insn::exit());
        p
    }

    /// Loads the program and attaches it to the cgroup (BPF_F_ALLOW_MULTI,
    /// so a manager's own program on an ancestor still applies).
    pub fn attach(&self, cgroup: BorrowedFd<'_>) -> Result<()> {
        let insns = self.instructions();
        let prog = match load(&insns, None) {
            Ok(fd) => fd,
            Err(e) => {
                // Load again with the verifier's log, only to explain.
                let mut log = vec![0u8; 64 * 1024];
                let _ = load(&insns, Some(&mut log));
                let msg = String::from_utf8_lossy(&log);
                let last = msg
                    .trim_matches('\0')
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim();
                return Err(Error::Sys {
                    context: format!(
                        "load the device filter{}",
                        if last.is_empty() {
                            String::new()
                        } else {
                            format!(" (verifier: {last})")
                        }
                    ),
                    source: e,
                }
                .in_field("linux.resources.devices"));
            }
        };
        crate::sys::bpf::attach_cgroup_device(cgroup, &prog)
            .ctx("linux.resources.devices: attach the device filter to the cgroup")?;
        Ok(())
    }
}

use crate::sys::bpf::{load_cgroup_device as load, Insn};

const AND: u8 = 0x50;
const RSH: u8 = 0x70;

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0xf),
            off,
            imm,
        }
    }
    /// dst = *(u32 *)(src + off)
    fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(0x61, dst, src, off, 0)
    }
    /// 32-bit ALU op with an immediate (BPF_ALU | op | BPF_K).
    fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
        Insn::new(0x04 | op, dst, 0, 0, imm)
    }
    fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(0xb7, dst, 0, 0, imm)
    }
    fn mov64_reg(dst: u8, src: u8) -> Insn {
        Insn::new(0xbf, dst, src, 0, 0)
    }
    /// if dst != imm goto +off (patched later)
    fn jne_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(0x55, dst, 0, 0, imm)
    }
    fn exit() -> Insn {
        Insn::new(0x95, 0, 0, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(devices: &str) -> Program {
        let spec: Spec = serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","linux":{{"resources":{{"devices":{devices}}}}}}}"#
        ))
        .unwrap();
        Program::from_spec(&spec).unwrap()
    }

    #[test]
    fn a_device_number_beyond_the_programs_32_bit_signed_immediates_is_refused() {
        let spec = |major: i64| -> Spec {
            serde_json::from_str(&format!(
                r#"{{"ociVersion":"1.0.2","linux":{{"resources":{{"devices":[{{"allow":true,"type":"c","major":{major},"access":"r"}}]}}}}}}"#
            ))
            .unwrap()
        };
        assert!(Program::from_spec(&spec(i64::from(i32::MAX))).is_ok());
        for bad in [1i64 << 31, 1 << 32, -2] {
            let e = Program::from_spec(&spec(bad)).unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "linux.resources.devices[0]: device number {bad} is out of range"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn deny_all_then_defaults() {
        let p = program(r#"[{"allow":false,"access":"rwm"}]"#);
        assert!(p.allows(DEV_CHAR, 1, 3, ACC_READ | ACC_WRITE));
        assert!(p.allows(DEV_CHAR, 136, 4, ACC_READ));
        assert!(!p.allows(DEV_BLOCK, 8, 0, ACC_READ));
        assert!(!p.allows(DEV_CHAR, 10, 200, ACC_READ));
        // mknod of anything is allowed, use is not.
        assert!(p.allows(DEV_BLOCK, 8, 0, ACC_MKNOD));
    }

    #[test]
    fn last_rule_wins_and_access_subsets() {
        let p = program(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"b","major":8,"minor":0,"access":"r"},
                {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#,
        );
        assert!(p.allows(DEV_BLOCK, 8, 0, ACC_READ));
        assert!(!p.allows(DEV_BLOCK, 8, 0, ACC_WRITE));
        // The defaults come after the user's rules: /dev/null stays usable.
        assert!(p.allows(DEV_CHAR, 1, 3, ACC_WRITE));
    }

    #[test]
    fn bad_rules_name_the_field() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"resources":{"devices":[{"allow":true,"major":4294967296}]}}}"#,
        )
        .unwrap();
        let e = Program::from_spec(&spec).unwrap_err().to_string();
        assert!(
            e.contains("linux.resources.devices[0]") && e.contains("4294967296"),
            "{e}"
        );
    }

    #[test]
    fn letters_other_than_rwm_mean_nothing() {
        // runc's suite denies "rwa": a, like any other letter, is ignored.
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"resources":{"devices":[
                {"allow":true,"access":"rwm"},
                {"allow":false,"type":"c","major":1,"minor":11,"access":"rwa"},
                {"allow":false,"type":"c","major":1,"minor":12,"access":"a"}]}}}"#,
        )
        .unwrap();
        let p = Program::from_spec(&spec).unwrap();
        assert!(!p.allows(DEV_CHAR, 1, 11, ACC_READ));
        assert!(!p.allows(DEV_CHAR, 1, 11, ACC_WRITE));
        assert!(
            p.allows(DEV_CHAR, 1, 12, ACC_READ),
            "a rule of no access denies nothing"
        );
    }

    #[test]
    fn jumps_land_inside_the_program() {
        let p = program(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":4,"access":"rw"}]"#,
        );
        let insns = p.instructions();
        for (i, ins) in insns.iter().enumerate() {
            if ins.code == 0x55 {
                let target = i + 1 + usize::try_from(ins.off).expect("a forward jump");
                assert!(target < insns.len());
            }
        }
        assert_eq!(insns.last().unwrap().code, 0x95);
    }
}
