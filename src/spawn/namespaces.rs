//! The namespace plan (`config/namespace_plan.rs`) applied on rt's side:
//! the paths it joins opened (each checked to be of its type), and the
//! pid and time namespaces given by path entered by rt itself before the
//! clone so that the init is born inside them.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;

use crate::config::namespace_plan::{NamespacePlan, NsJoin};
use crate::error::{Context, Error, Result};

pub use crate::config::namespaces::flag;

/// A namespace to join: its type and an open descriptor on its nsfs file.
#[derive(Debug)]
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// The namespace plan with its paths opened: what spawn and the init
/// apply. Every decision is the plan's (`config/namespace_plan.rs`).
#[derive(Debug)]
pub struct Plan {
    pub ns: NamespacePlan,
    /// `ns.parent_joins`, opened, in its order.
    pub parent_joins: Vec<Join>,
    /// `ns.child_joins`, opened, in its order (user first).
    pub child_joins: Vec<Join>,
    /// With `ns.pid_intermediate`: the user namespace the intermediate
    /// joins before it unshares the pid namespace.
    pub new_pid_in: Option<OwnedFd>,
}

impl Plan {
    /// Opens the namespaces `ns` joins by path, each checked to be a
    /// namespace of the type its entry names.
    pub fn open(ns: NamespacePlan) -> Result<Plan> {
        Plan::with_fds(ns, |j| {
            let fd = open(&j.path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).with_ctx(
                || {
                    format!(
                        "linux.namespaces: open {} namespace {}",
                        crate::config::namespaces::name(j.typ),
                        j.path.display()
                    )
                },
            )?;
            check_type(j.typ, &fd, &j.path)?;
            Ok(fd)
        })
    }

    /// The plan with each join's descriptor from `fd_of`.
    pub fn with_fds(
        ns: NamespacePlan,
        mut fd_of: impl FnMut(&NsJoin) -> Result<OwnedFd>,
    ) -> Result<Plan> {
        let mut opened = |joins: &[NsJoin]| -> Result<Vec<Join>> {
            joins
                .iter()
                .map(|j| {
                    Ok(Join {
                        typ: j.typ,
                        path: j.path.clone(),
                        fd: fd_of(j)?,
                    })
                })
                .collect()
        };
        let parent_joins = opened(&ns.parent_joins)?;
        let child_joins = opened(&ns.child_joins)?;
        let new_pid_in = if ns.pid_intermediate {
            let user = child_joins
                .iter()
                .find(|j| j.typ == LinuxNamespaceType::User)
                .ok_or(Error::Internal(
                    "the plan's pid intermediate has no user namespace to join",
                ))?;
            Some(user.fd.try_clone().ctx("dup the user namespace")?)
        } else {
            None
        };
        Ok(Plan {
            ns,
            parent_joins,
            child_joins,
            new_pid_in,
        })
    }

    /// Enters the pid/time namespaces given by path in rt's own process,
    /// for the children it clones next. rt is single-threaded, as setns
    /// requires for these. A joined time namespace is rt's own clock too
    /// (and a pid namespace its hooks'): the returned [`Entered`] takes rt
    /// back once the clone is made, so that the start time rt records of
    /// the init, and what its hooks see, are the host's.
    pub fn enter_parent_namespaces(&self) -> Result<Entered> {
        let mut entered = Entered { back: Vec::new() };
        for j in &self.parent_joins {
            let own = match j.typ {
                LinuxNamespaceType::Pid => Some("/proc/self/ns/pid_for_children"),
                LinuxNamespaceType::Time => Some("/proc/self/ns/time_for_children"),
                _ => None,
            };
            if let Some(own) = own {
                let fd = open(own, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                    .with_ctx(|| format!("open {own}"))?;
                entered.back.push((j.typ, fd));
            }
            if let Err(e) = nix::sched::setns(j.fd.as_fd(), flag(j.typ)) {
                let hint = if e == nix::Error::EPERM
                    && !self.ns.user_in_parent
                    && !crate::rootless::detect().root_in_own_namespace()
                {
                    " (rootless: give the user namespace that owns it by path too)"
                } else {
                    ""
                };
                return Err(e).with_ctx(|| {
                    format!(
                        "join {} namespace {}{hint}",
                        crate::config::namespaces::name(j.typ),
                        j.path.display()
                    )
                });
            }
        }
        Ok(entered)
    }
}

/// rt's own pid and time namespaces from before it joined a container's.
pub struct Entered {
    back: Vec<(LinuxNamespaceType, OwnedFd)>,
}

impl Entered {
    /// Goes back to them. Where rt may not (rootless, having joined a
    /// user namespace for the clone) it stays: its clock is then the
    /// container's, as it was before this existed.
    pub fn leave(self) {
        for (typ, fd) in self.back.into_iter().rev() {
            if let Err(e) = nix::sched::setns(fd.as_fd(), flag(typ)) {
                log::debug!(
                    "back to rt's own {} namespace: {e}",
                    crate::config::namespaces::name(typ)
                );
            }
        }
    }
}

/// Refuses a namespace file of another type than the entry says (setns
/// would fail with a bare EINVAL later, in the init) or a file that is no
/// namespace at all.
fn check_type(t: LinuxNamespaceType, fd: &OwnedFd, path: &std::path::Path) -> Result<()> {
    use crate::config::namespaces::name;
    let want = flag(t).bits();
    let types = [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Time,
    ];
    match crate::sys::ns::ns_type(fd.as_fd()) {
        Ok(got) if got == want => Ok(()),
        Ok(got) => {
            let is = types
                .iter()
                .find(|x| flag(**x).bits() == got)
                .map_or("unknown", |x| name(*x));
            Err(Error::InvalidField {
                field: "linux.namespaces".into(),
                reason: format!(
                    "{} is a {is} namespace, not the {} namespace the entry names",
                    path.display(),
                    name(t)
                ),
            })
        }
        Err(nix::Error::ENOTTY) | Err(nix::Error::EINVAL) => Err(Error::InvalidField {
            field: "linux.namespaces".into(),
            reason: format!(
                "{} (for the {} namespace) is not a namespace file",
                path.display(),
                name(t)
            ),
        }),
        Err(e) => Err(e).with_ctx(|| format!("linux.namespaces: {}", path.display())),
    }
}

#[cfg(test)]
mod open_plan_tests {
    //! The plan's paths opened, without root: a process may open its own
    //! namespace files.
    use std::path::Path;

    use super::*;

    fn planned(child: &[(LinuxNamespaceType, &str)]) -> NamespacePlan {
        let mut ns = NamespacePlan::empty();
        ns.child_joins = child
            .iter()
            .map(|(typ, path)| NsJoin {
                typ: *typ,
                path: path.into(),
            })
            .collect();
        ns
    }

    fn err(child: &[(LinuxNamespaceType, &str)]) -> String {
        Plan::open(planned(child)).unwrap_err().to_string()
    }

    #[test]
    fn a_namespace_of_the_entrys_type_is_opened_in_the_plans_order() {
        use LinuxNamespaceType::*;
        let plan = Plan::open(planned(&[
            (User, "/proc/self/ns/user"),
            (Network, "/proc/self/ns/net"),
            (Uts, "/proc/self/ns/uts"),
        ]))
        .expect("own namespaces open");
        let got: Vec<_> = plan.child_joins.iter().map(|j| j.typ).collect();
        assert_eq!(got, [User, Network, Uts]);
        assert_eq!(plan.child_joins[1].path, Path::new("/proc/self/ns/net"));
        assert!(plan.new_pid_in.is_none());
    }

    #[test]
    fn a_namespace_of_another_type_is_refused_naming_both() {
        let e = err(&[(LinuxNamespaceType::User, "/proc/self/ns/net")]);
        assert!(
            e.contains("/proc/self/ns/net is a net namespace, not the user namespace"),
            "{e}"
        );
    }

    #[test]
    fn a_file_that_is_no_namespace_is_refused() {
        let e = err(&[(LinuxNamespaceType::Ipc, "/dev/null")]);
        assert!(
            e.contains("/dev/null (for the ipc namespace) is not a namespace file"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_namespace_file_names_the_entry() {
        let e = err(&[(LinuxNamespaceType::Network, "/nonexistent/rt-ns")]);
        assert!(
            e.contains("linux.namespaces: open net namespace /nonexistent/rt-ns"),
            "{e}"
        );
    }

    #[test]
    fn the_pid_intermediate_is_given_the_joined_user_namespace() {
        let mut ns = planned(&[(LinuxNamespaceType::User, "/proc/self/ns/user")]);
        ns.pid_intermediate = true;
        let plan = Plan::open(ns).expect("opens");
        let fd = plan.new_pid_in.as_ref().expect("the user namespace");
        let want = nix::sys::stat::stat("/proc/self/ns/user").expect("stat");
        let got = nix::sys::stat::fstat(fd).expect("fstat");
        assert_eq!((got.st_dev, got.st_ino), (want.st_dev, want.st_ino));
    }
}
