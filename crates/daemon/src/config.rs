//! `~/.config/banger/config.toml`. Every key is optional; unknown keys are
//! an error so a typo does not silently do nothing.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use banger_api::{parse_size, SizeError};
use serde::Deserialize;

/// Why config.toml cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{} is not valid: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{key} {value:?} {why}")]
    Invalid {
        key: &'static str,
        value: String,
        why: &'static str,
        hint: Option<&'static str>,
    },
    #[error("{key} is not a size")]
    Size {
        key: &'static str,
        value: String,
        #[source]
        source: SizeError,
    },
}

impl ConfigError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Parse { .. } => {
                Some("fix or remove that key; docs/configuration.md lists every key".into())
            }
            ConfigError::Invalid { hint, .. } => hint.map(String::from),
            ConfigError::Size { source, .. } => Some(source.hint().into()),
            ConfigError::Read { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmmChoice {
    Auto,
    Firecracker,
    Qemu,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// debug, info, warn or error; `BANGER_LOG_LEVEL` overrides it.
    pub log_level: String,
    /// Which VMM runs new VMs: auto picks Firecracker when its binary is
    /// found and KVM can run ordinary guests, QEMU otherwise.
    pub vmm: VmmChoice,
    pub firecracker_bin: Option<PathBuf>,
    pub qemu_bin: Option<PathBuf>,
    /// `vhost-device-vsock`, QEMU's vsock (guest agent) helper.
    pub vsock_helper_bin: Option<PathBuf>,
    /// The guest agent binary image builds install.
    pub agent_bin: Option<PathBuf>,
    /// npm registry (or mirror) image builds take mise and opencode from.
    pub npm_registry: Option<String>,
    pub bridge_name: String,
    /// Guest subnet in CIDR form; the bridge takes the first address.
    pub bridge_subnet: String,
    pub default_image: String,
    pub default_vcpu: u32,
    pub default_memory_mib: u32,
    /// Default size of the `/root` work disk.
    pub default_disk_size: String,
    /// Size of each VM's writable system overlay.
    pub overlay_size: String,
    /// How long create/start wait for the guest's sshd.
    pub boot_timeout_secs: u64,
    /// How long stop waits for a graceful guest shutdown before killing.
    pub stop_timeout_secs: u64,
    /// The runtime bundle directory (see `banger runtime show`).
    pub runtime_dir: Option<PathBuf>,
    /// Where images live; defaults to `<state>/images`.
    pub images_dir: Option<PathBuf>,
    /// Package manifest of the default image; the bundled one when absent.
    pub default_packages_file: Option<PathBuf>,
    pub debian_mirror: Option<String>,
    pub debian_suite: String,
    /// Mirror of the experimental Void image (`image build --distro void`).
    pub void_mirror: Option<String>,
    /// Where the built-in `.vm` DNS listens (UDP and TCP).
    pub dns_listen: String,
    /// Idle TAP devices kept ready on the bridge so create does not make one.
    pub tap_pool_size: usize,
    /// The root helper's socket, for a daemon that runs as a user.
    pub helper_socket: Option<PathBuf>,
    /// Host files copied into every new VM (`[[file_sync]]`; `vm sync`).
    pub file_sync: Vec<FileSync>,
    /// Make an image's warm template in the background once it is built or
    /// registered (as `image warm` would), so creates from it restore it.
    pub warm_after_build: bool,
}

/// One `[[file_sync]]` entry: a host file or directory and where it goes
/// in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSync {
    /// `~/` is the daemon user's home.
    pub host: String,
    /// An absolute path in the guest.
    pub guest: String,
}

impl FileSync {
    /// The host path, `~/` expanded.
    pub fn host_path(&self) -> PathBuf {
        match self.host.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(rest),
            None => PathBuf::from(&self.host),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log_level: "info".into(),
            vmm: VmmChoice::Auto,
            firecracker_bin: None,
            qemu_bin: None,
            vsock_helper_bin: None,
            agent_bin: None,
            npm_registry: None,
            bridge_name: "banger0".into(),
            bridge_subnet: "172.30.0.0/24".into(),
            default_image: "default".into(),
            default_vcpu: 2,
            default_memory_mib: 1024,
            default_disk_size: "8G".into(),
            overlay_size: "4G".into(),
            boot_timeout_secs: 180,
            stop_timeout_secs: 45,
            runtime_dir: None,
            images_dir: None,
            default_packages_file: None,
            debian_mirror: None,
            debian_suite: "bookworm".into(),
            void_mirror: None,
            dns_listen: "127.0.0.1:42069".into(),
            tap_pool_size: 2,
            warm_after_build: true,
            helper_socket: None,
            file_sync: Vec::new(),
        }
    }
}

/// The guest subnet, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Subnet, ConfigError> {
        let bad = || ConfigError::Invalid {
            key: "bridge_subnet",
            value: s.to_string(),
            why: "is not an IPv4 CIDR with a prefix between /16 and /29",
            hint: Some("set bridge_subnet in config.toml to e.g. \"172.30.0.0/24\""),
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(16..=29).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Addresses guests may get: after the gateway, before broadcast.
    pub fn guest_addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network) + 2;
        let broadcast = u32::from(self.network) | (u32::MAX >> self.prefix);
        (first..broadcast).map(Ipv4Addr::from)
    }
}

impl Config {
    /// Reads the file if it exists, then applies environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str::<Config>(&text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        if let Ok(level) = std::env::var("BANGER_LOG_LEVEL") {
            config.log_level = level;
        }
        if let Some(socket) = std::env::var_os("BANGER_HELPER_SOCKET") {
            config.helper_socket = Some(PathBuf::from(socket));
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, value: &dyn std::fmt::Display, why, hint| ConfigError::Invalid {
            key,
            value: value.to_string(),
            why,
            hint,
        };
        for entry in &self.file_sync {
            if !entry.guest.starts_with('/') || entry.guest.split('/').any(|p| p == "..") {
                return Err(invalid(
                    "file_sync",
                    &entry.guest,
                    "is not an absolute guest path without ..",
                    Some("e.g. guest = \"/root/.gitconfig\""),
                ));
            }
        }
        if !["debug", "info", "warn", "error", "trace"].contains(&self.log_level.as_str()) {
            return Err(invalid(
                "log_level",
                &self.log_level,
                "is not one of trace, debug, info, warn, error",
                None,
            ));
        }
        self.subnet()?;
        self.disk_size()?;
        self.overlay_bytes()?;
        if self.dns_listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "dns_listen",
                &self.dns_listen,
                "is not an address:port",
                Some("e.g. dns_listen = \"127.0.0.1:42069\""),
            ));
        }
        if self.tap_pool_size > 64 {
            return Err(invalid(
                "tap_pool_size",
                &self.tap_pool_size,
                "is more than 64",
                Some("a few idle TAPs are enough; 0 turns the pool off"),
            ));
        }
        if self.bridge_name.is_empty() || self.bridge_name.len() > 15 {
            return Err(invalid(
                "bridge_name",
                &self.bridge_name,
                "must be 1 to 15 characters",
                None,
            ));
        }
        Ok(())
    }

    pub fn subnet(&self) -> Result<Subnet, ConfigError> {
        Subnet::parse(&self.bridge_subnet)
    }

    /// `default_disk_size` in bytes.
    pub fn disk_size(&self) -> Result<u64, ConfigError> {
        size("default_disk_size", &self.default_disk_size)
    }

    /// `overlay_size` in bytes.
    pub fn overlay_bytes(&self) -> Result<u64, ConfigError> {
        size("overlay_size", &self.overlay_size)
    }
}

fn size(key: &'static str, value: &str) -> Result<u64, ConfigError> {
    parse_size(value).map_err(|source| ConfigError::Size {
        key,
        value: value.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_the_file_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&dir.path().join("config.toml")).unwrap();
        assert_eq!(config.vmm, VmmChoice::Auto);
        assert_eq!(config.bridge_subnet, "172.30.0.0/24");
    }

    #[test]
    fn keys_are_read_and_unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "vmm = \"qemu\"\ndefault_memory_mib = 2048\n").unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.vmm, VmmChoice::Qemu);
        assert_eq!(config.default_memory_mib, 2048);
        std::fs::write(&path, "vmmm = \"qemu\"\n").unwrap();
        match Config::load(&path).unwrap_err() {
            // The wording is the point: it names the key.
            ConfigError::Parse { message, .. } => assert!(message.contains("vmmm"), "{message}"),
            other => panic!("{other:?}"),
        }
        std::fs::write(&path, "vmm = \"xen\"\n").unwrap();
        assert!(Config::load(&path).is_err());
    }

    #[test]
    fn subnets_give_a_gateway_and_guest_range() {
        let s = Subnet::parse("172.30.0.0/24").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(172, 30, 0, 1));
        let all: Vec<_> = s.guest_addresses().collect();
        assert_eq!(all.first(), Some(&Ipv4Addr::new(172, 30, 0, 2)));
        assert_eq!(all.last(), Some(&Ipv4Addr::new(172, 30, 0, 254)));
        assert!(matches!(
            Subnet::parse("10.9.8.77/30"),
            Err(ConfigError::Invalid {
                key: "bridge_subnet",
                ..
            })
        ));
        assert!(Subnet::parse("nonsense").is_err());
    }
}
