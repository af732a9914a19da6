//! VMs as the API shows them, and the requests that make and change them.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use crate::vmm::{Accel, VmmKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    /// Disks and records are being prepared; not yet booted once.
    Creating,
    Starting,
    Running,
    Stopping,
    Stopped,
    /// Its memory and device state are being written; the guest is paused.
    Suspending,
    /// Saved to disk with every process as it was; no VMM runs.
    Suspended,
    /// A new VMM is loading the saved state.
    Resuming,
}

impl VmState {
    pub const ALL: [VmState; 8] = [
        VmState::Creating,
        VmState::Starting,
        VmState::Running,
        VmState::Stopping,
        VmState::Stopped,
        VmState::Suspending,
        VmState::Suspended,
        VmState::Resuming,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Creating => "creating",
            VmState::Starting => "starting",
            VmState::Running => "running",
            VmState::Stopping => "stopping",
            VmState::Stopped => "stopped",
            VmState::Suspending => "suspending",
            VmState::Suspended => "suspended",
            VmState::Resuming => "resuming",
        }
    }

    pub fn parse(s: &str) -> Option<VmState> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An Ethernet address, written `52:54:00:aa:bb:cc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address (six hex bytes separated by ':')")]
pub struct BadMac(pub String);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = BadMac;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMac(s.to_string());
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        match parts.next() {
            None => Ok(MacAddr(bytes)),
            Some(_) => Err(bad()),
        }
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    pub id: String,
    pub name: String,
    pub state: VmState,
    pub image: String,
    pub vmm: VmmKind,
    pub accel: Accel,
    pub vcpu: u32,
    pub memory_mib: u32,
    /// Size of the persistent `/root` work disk.
    pub disk_size_bytes: u64,
    /// Size of the writable system overlay for `/`.
    pub overlay_size_bytes: u64,
    pub nat: bool,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
    pub tap: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub started_at: Option<OffsetDateTime>,
    /// When it last stopped (`vm prune` goes by it); none while it runs.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub stopped_at: Option<OffsetDateTime>,
    /// Why the VM last stopped, when it did not stop on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// The VM's directory: disks, console and VMM logs.
    pub dir: PathBuf,
    /// Bytes on disk of the saved memory and device state, while suspended
    /// (read from the files, not stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_state_bytes: Option<u64>,
    /// Made from its image's warm snapshot (restored, then given its own
    /// identity) rather than booted.
    #[serde(default)]
    pub warm: bool,
}

impl Vm {
    /// The files of the VM's directory.
    pub fn files(&self) -> crate::files::VmFiles {
        crate::files::VmFiles::new(&self.dir)
    }

    /// Where this VM's guest serial console is written.
    pub fn console_log(&self) -> PathBuf {
        self.files().console()
    }

    /// Where this VM's VMM logs.
    pub fn vmm_log(&self) -> PathBuf {
        self.files().vmm_log(self.vmm)
    }
}

/// `POST /v1/vms/{vm}/clone`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloneVmRequest {
    /// Generated when absent.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateVmRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub vcpu: Option<u32>,
    #[serde(default)]
    pub memory_mib: Option<u32>,
    /// Work disk size, human form ("16G") or bytes.
    #[serde(default)]
    pub disk_size: Option<String>,
    #[serde(default)]
    pub nat: bool,
    /// Boot even when the image has a warm snapshot that fits.
    #[serde(default)]
    pub cold: bool,
}

/// `vm prune`: delete VMs stopped for longer than `stopped_for_secs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneRequest {
    pub stopped_for_secs: u64,
    /// Only say which VMs would go.
    #[serde(default)]
    pub dry_run: bool,
}

/// Changes to a stopped VM (`vm set`); absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateVmRequest {
    #[serde(default)]
    pub vcpu: Option<u32>,
    #[serde(default)]
    pub memory_mib: Option<u32>,
    /// New work disk size (grow only), human form or bytes.
    #[serde(default)]
    pub disk_size: Option<String>,
    #[serde(default)]
    pub nat: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillRequest {
    /// Signal name: TERM, KILL, INT, HUP, ... (with or without SIG).
    pub signal: String,
}

/// What `banger vm ssh` needs to run the system `ssh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshTarget {
    pub name: String,
    pub ip: Ipv4Addr,
    pub user: String,
    pub key_path: PathBuf,
    /// A known_hosts file holding exactly this VM's host key.
    pub known_hosts_path: PathBuf,
    pub host_key_alias: String,
}

/// `GET /v1/ssh-config`: every VM's Host block, and the file the daemon
/// keeps them in (what `ssh-config --install` includes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshConfig {
    pub path: PathBuf,
    pub text: String,
}

impl SshTarget {
    /// The `ssh` arguments that reach this VM (options, then `--` and
    /// `user@ip`): the only place they are spelled out, for `vm ssh` and
    /// the TUI alike. A remote command, if any, goes after them.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args = vec!["-i".to_string(), self.key_path.display().to_string()];
        for (key, value) in self.options() {
            args.extend(["-o".to_string(), format!("{key}={value}")]);
        }
        args.push("--".into());
        args.push(format!("{}@{}", self.user, self.ip));
        args
    }

    /// The options both `ssh_args` and the ssh-config block use.
    fn options(&self) -> Vec<(&'static str, String)> {
        vec![
            ("IdentitiesOnly", "yes".into()),
            (
                "UserKnownHostsFile",
                self.known_hosts_path.display().to_string(),
            ),
            ("GlobalKnownHostsFile", "/dev/null".into()),
            ("StrictHostKeyChecking", "yes".into()),
            ("HostKeyAlias", self.host_key_alias.clone()),
            ("LogLevel", "ERROR".into()),
            ("ConnectTimeout", "10".into()),
            ("ServerAliveInterval", "5".into()),
            ("ServerAliveCountMax", "6".into()),
        ]
    }

    /// This VM's `Host` block of an ssh_config (`banger ssh-config`): plain
    /// `ssh NAME.vm`, scp and rsync reach it with the same checks as `vm ssh`.
    pub fn config_block(&self) -> String {
        let mut block = format!(
            "Host {name} {name}.vm\n    HostName {}\n    User {}\n    IdentityFile {}\n",
            self.ip,
            self.user,
            self.key_path.display(),
            name = self.name
        );
        for (key, value) in self.options() {
            block.push_str(&format!("    {key} {value}\n"));
        }
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_block_says_what_ssh_args_say() {
        let target = SshTarget {
            name: "calm-otter".into(),
            ip: Ipv4Addr::new(172, 30, 0, 2),
            user: "root".into(),
            key_path: "/s/id_ed25519".into(),
            known_hosts_path: "/s/vms/ab/known_hosts".into(),
            host_key_alias: "banger-ab".into(),
        };
        let block = target.config_block();
        assert!(block.starts_with("Host calm-otter calm-otter.vm\n    HostName 172.30.0.2\n"));
        assert!(block.contains("    IdentityFile /s/id_ed25519\n"));
        let args = target.ssh_args().join(" ");
        for line in block.lines().skip(4) {
            let (key, value) = line.trim().split_once(' ').unwrap();
            assert!(args.contains(&format!("{key}={value}")), "{key}");
        }
    }

    #[test]
    fn vm_state_round_trips_through_strings() {
        for s in ["creating", "starting", "running", "stopping", "stopped"] {
            assert_eq!(VmState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(VmState::parse("exploded"), None);
    }

    #[test]
    fn mac_addresses_parse_and_print_as_written() {
        let mac: MacAddr = "52:54:00:aa:0b:cc".parse().unwrap();
        assert_eq!(mac, MacAddr([0x52, 0x54, 0, 0xaa, 0x0b, 0xcc]));
        assert_eq!(mac.to_string(), "52:54:00:aa:0b:cc");
        for bad in [
            "",
            "52:54:00:aa:bb",
            "52:54:00:aa:bb:cc:dd",
            "5:54:00:aa:bb:cc",
            "zz:54:00:aa:bb:cc",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_json_of_a_vm_keeps_strings_for_typed_fields() {
        let vm = Vm {
            id: "0a1b2c3d4e5f".into(),
            name: "calm-otter".into(),
            state: VmState::Running,
            image: "default".into(),
            vmm: VmmKind::Qemu,
            accel: Accel::Tcg,
            vcpu: 2,
            memory_mib: 1024,
            disk_size_bytes: 8 << 30,
            overlay_size_bytes: 4 << 30,
            nat: false,
            ip: Ipv4Addr::new(172, 30, 0, 2),
            mac: "52:54:00:0a:1b:2c".parse().unwrap(),
            tap: "bg-0a1b2c3d4e5f".into(),
            pid: Some(7),
            created_at: time::macros::datetime!(2026-11-28 16:42:47.46 UTC),
            started_at: None,
            stopped_at: None,
            saved_state_bytes: None,
            warm: false,
            stop_reason: None,
            dir: "/state/vms/0a1b2c3d4e5f".into(),
        };
        let json = serde_json::to_value(&vm).unwrap();
        assert_eq!(json["ip"], "172.30.0.2");
        assert_eq!(json["mac"], "52:54:00:0a:1b:2c");
        assert_eq!(json["accel"], "tcg");
        assert_eq!(json["created_at"], "2026-11-28T16:42:47.46Z");
        assert_eq!(json["dir"], "/state/vms/0a1b2c3d4e5f");
        assert!(json.get("started_at").is_none());
        assert_eq!(serde_json::from_value::<Vm>(json).unwrap(), vm);
    }

    #[test]
    fn ssh_arguments_pin_the_vms_own_host_key() {
        let target = SshTarget {
            name: "web".into(),
            ip: Ipv4Addr::new(172, 30, 0, 9),
            user: "root".into(),
            key_path: "/k/id_ed25519".into(),
            known_hosts_path: "/v/known_hosts".into(),
            host_key_alias: "banger-abc".into(),
        };
        let args = target.ssh_args();
        assert_eq!(&args[..2], ["-i", "/k/id_ed25519"]);
        assert!(args
            .windows(2)
            .any(|w| w == ["-o", "StrictHostKeyChecking=yes"]));
        assert!(args
            .windows(2)
            .any(|w| w == ["-o", "UserKnownHostsFile=/v/known_hosts"]));
        assert_eq!(&args[args.len() - 2..], ["--", "root@172.30.0.9"]);
    }
}
