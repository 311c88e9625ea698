//! containerd's checkpoint options (runc's `CheckpointOptions`, which
//! containerd and ctr send to every shim) as rt's dump flags: a pure
//! mapping, so what CRIU is asked is tested without root.

use std::path::PathBuf;

use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim::oci::CheckpointOptions;
use rt::checkpoint::{plan, CgroupsMode, Common, DumpFlags};
use serde::{Deserialize, Serialize};

/// A `Checkpoint` request, as the worker takes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dump {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub exit: bool,
    pub open_tcp: bool,
    pub external_unix_sockets: bool,
    pub terminal: bool,
    pub file_locks: bool,
    pub empty_namespaces: Vec<String>,
    pub cgroups_mode: String,
}

impl Dump {
    /// The request's `path` and options (absent options: containerd's
    /// default, which leaves the task running). A non-empty `image_path`
    /// option wins over `path`, as with runc's shim when containerd was
    /// told to write there.
    pub fn from_request(path: &str, options: Option<&[u8]>) -> Result<Dump, String> {
        let o = match options {
            Some(b) if !b.is_empty() => CheckpointOptions::parse_from_bytes(b)
                .map_err(|e| format!("checkpoint options: {e}"))?,
            _ => CheckpointOptions::default(),
        };
        let image = if o.image_path.is_empty() {
            path
        } else {
            &o.image_path
        };
        if image.is_empty() {
            return Err("checkpoint: no image path".into());
        }
        Ok(Dump {
            image_path: PathBuf::from(image),
            work_path: (!o.work_path.is_empty()).then(|| PathBuf::from(&o.work_path)),
            exit: o.exit,
            open_tcp: o.open_tcp,
            external_unix_sockets: o.external_unix_sockets,
            terminal: o.terminal,
            file_locks: o.file_locks,
            empty_namespaces: o.empty_namespaces,
            cgroups_mode: o.cgroups_mode,
        })
    }

    /// rt's dump flags: `exit` false leaves the container running.
    pub fn flags(&self) -> rt::Result<DumpFlags> {
        let mode = if self.cgroups_mode.is_empty() {
            CgroupsMode::default()
        } else {
            CgroupsMode::parse(&self.cgroups_mode)?
        };
        Ok(DumpFlags {
            common: Common {
                tcp_established: self.open_tcp,
                ext_unix_sk: self.external_unix_sockets,
                shell_job: self.terminal,
                file_locks: self.file_locks,
                cgroups_mode: mode,
                empty_ns: plan::parse_empty_ns(&self.empty_namespaces)?,
                ..Common::default()
            },
            leave_running: !self.exit,
            ..DumpFlags::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(o: &CheckpointOptions) -> Vec<u8> {
        o.write_to_bytes().unwrap()
    }

    #[test]
    fn no_options_leave_it_running_into_the_path() {
        let d = Dump::from_request("/tmp/ctd-checkpoint1", None).unwrap();
        assert_eq!(d.image_path, PathBuf::from("/tmp/ctd-checkpoint1"));
        assert_eq!(d.work_path, None);
        let f = d.flags().unwrap();
        assert!(f.leave_running);
        assert_eq!(f.common, Common::default());
        assert!(!f.pre_dump);
    }

    #[test]
    fn each_option_maps_to_its_flag() {
        let o = CheckpointOptions {
            exit: true,
            open_tcp: true,
            external_unix_sockets: true,
            terminal: true,
            file_locks: true,
            empty_namespaces: vec!["network".into()],
            cgroups_mode: "strict".into(),
            image_path: "/img".into(),
            work_path: "/work".into(),
            ..Default::default()
        };
        let d = Dump::from_request("/tmp/x", Some(&bytes(&o))).unwrap();
        assert_eq!(d.image_path, PathBuf::from("/img"));
        assert_eq!(d.work_path, Some(PathBuf::from("/work")));
        let f = d.flags().unwrap();
        assert!(!f.leave_running, "exit stops the container");
        assert_eq!(
            f.common,
            Common {
                tcp_established: true,
                ext_unix_sk: true,
                shell_job: true,
                file_locks: true,
                cgroups_mode: CgroupsMode::Strict,
                empty_ns: 0x4000_0000,
                ..Common::default()
            }
        );
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        let o = CheckpointOptions {
            cgroups_mode: "loose".into(),
            ..Default::default()
        };
        let e = Dump::from_request("/p", Some(&bytes(&o)))
            .unwrap()
            .flags()
            .unwrap_err();
        assert!(e.to_string().contains("--manage-cgroups-mode loose"), "{e}");
        let o = CheckpointOptions {
            empty_namespaces: vec!["ipc".into()],
            ..Default::default()
        };
        assert!(Dump::from_request("/p", Some(&bytes(&o)))
            .unwrap()
            .flags()
            .is_err());
        assert!(Dump::from_request("", None).is_err());
        assert!(Dump::from_request("/p", Some(b"\xff\xff")).is_err());
    }
}
