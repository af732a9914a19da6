//! Readiness checks: the same ones `banger doctor` prints and the daemon
//! applies before it acts, so a refusal and the doctor line read the same.

use std::path::Path;
use std::time::Duration;

use banger_api::paths::Paths;
use banger_api::VmmKind;
use banger_host::tools;
use banger_vmm::kvm;
use serde::{Deserialize, Serialize};

use crate::app::choose_vmm;
use crate::config::{Config, VmmChoice};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    /// One line: what was found.
    pub detail: String,
    /// What to do about it, for warn and fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn check(name: &str, status: Status, detail: impl Into<String>, hint: Option<String>) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        hint,
    }
}

/// Tools every VM operation needs.
pub const VM_TOOLS: &[&str] = &[
    "mkfs.ext4",
    "e2fsck",
    "resize2fs",
    "ip",
    "ssh",
    "ssh-keygen",
];
/// Tools an image build needs besides those.
pub const IMAGE_TOOLS: &[&str] = &["mmdebstrap"];

/// First line a program prints for `--version`.
fn version(program: &Path) -> Option<String> {
    let out = std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

fn tool_check(tool: &str, needed_for: &str, missing: Status) -> Check {
    match tools::require(tool) {
        Ok(path) => check(
            &format!("tool {tool}"),
            Status::Pass,
            path.display().to_string(),
            None,
        ),
        Err(err) => check(
            &format!("tool {tool}"),
            missing,
            format!("{err} (needed for {needed_for})"),
            err.hint(),
        ),
    }
}

/// Every check, in the order doctor prints them.
pub fn run(paths: &Paths, config: &Config, images_dir: &Path) -> Vec<Check> {
    let vmm = choose_vmm(config);
    let mut checks = Vec::new();

    checks.push(match kvm::unusable_reason() {
        None => check("kvm", Status::Pass, "/dev/kvm runs ordinary guests", None),
        Some(reason) if config.vmm == VmmChoice::Firecracker => check(
            "kvm",
            Status::Fail,
            reason,
            Some("Firecracker needs hardware KVM; set vmm = \"qemu\"".into()),
        ),
        Some(reason) => check(
            "kvm",
            Status::Warn,
            format!("{reason}; QEMU will use software emulation (slow)"),
            Some("use a host with hardware virtualisation (kvm_intel/kvm_amd) for fast VMs".into()),
        ),
    });

    let firecracker = crate::app::firecracker_binary(config);
    checks.push(match (&firecracker, vmm) {
        (Some(path), _) => check(
            "firecracker",
            Status::Pass,
            format!(
                "{} ({})",
                version(path).unwrap_or_else(|| "version unknown".into()),
                path.display()
            ),
            None,
        ),
        (None, VmmKind::Firecracker) => check(
            "firecracker",
            Status::Fail,
            "the firecracker binary was not found",
            Some("install Firecracker or set firecracker_bin, or set vmm = \"qemu\"".into()),
        ),
        (None, VmmKind::Qemu) => check(
            "firecracker",
            Status::Warn,
            "not found; VMs run under QEMU",
            None,
        ),
    });

    let qemu_name = config
        .qemu_bin
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or("qemu-system-x86_64".into());
    checks.push(match tools::require(&qemu_name) {
        Ok(path) => check(
            "qemu",
            Status::Pass,
            format!(
                "{} ({})",
                version(&path).unwrap_or_else(|| "version unknown".into()),
                path.display()
            ),
            None,
        ),
        Err(err) => check(
            "qemu",
            if vmm == VmmKind::Qemu {
                Status::Fail
            } else {
                Status::Warn
            },
            err.to_string(),
            err.hint(),
        ),
    });
    if vmm == VmmKind::Qemu {
        checks.push(match (crate::app::vsock_helper(config), &config.vsock_helper_bin) {
            (Some(path), _) => check("vsock helper", Status::Pass, path.display().to_string(), None),
            (None, Some(configured)) => check(
                "vsock helper",
                Status::Fail,
                format!("vsock_helper_bin {} was not found: QEMU VMs cannot start", configured.display()),
                Some("fix or remove vsock_helper_bin in config.toml (`cargo install vhost-device-vsock`)".into()),
            ),
            (None, None) => check(
                "vsock helper",
                Status::Warn,
                "vhost-device-vsock not found: QEMU guests get no agent (no `vm ports`, `vm exec`, guest stats)",
                Some("`cargo install vhost-device-vsock --root /usr/local`, or set vsock_helper_bin".into()),
            ),
        });
    }
    checks.push(check(
        "vmm",
        Status::Pass,
        format!("new VMs use {vmm}"),
        None,
    ));

    for tool in VM_TOOLS {
        checks.push(tool_check(tool, "VMs", Status::Fail));
    }

    let location = banger_runtime::resolve::locate_here(config.runtime_dir.clone());
    checks.push(match banger_runtime::Bundle::open(&location.dir) {
        Ok(bundle) => check(
            "runtime bundle",
            Status::Pass,
            format!(
                "{} ({}; kernel {})",
                bundle.dir.display(),
                location.source,
                bundle.manifest.kernel_version
            ),
            None,
        ),
        Err(_) if !location.dir.exists() => check(
            "runtime bundle",
            Status::Pass,
            format!(
                "none at {} ({}); the default image is built from Debian's mirror",
                location.dir.display(),
                location.source
            ),
            None,
        ),
        Err(e) => check(
            "runtime bundle",
            Status::Fail,
            e.to_string(),
            Some(
                "reinstall it with `banger runtime fetch --manifest FILE`, or remove the directory"
                    .into(),
            ),
        ),
    });

    let image = images_dir.join(&config.default_image);
    let built = image.join("manifest.sha256").exists();
    checks.push(if built {
        let kernel = std::fs::read_to_string(image.join("kernel-version")).unwrap_or_default();
        check("default image", Status::Pass, format!("{} (kernel {})", image.display(), kernel.trim()), None)
    } else {
        check(
            "default image",
            Status::Warn,
            format!("not built yet ({})", image.display()),
            Some("the first `banger vm create` builds it (about a minute, needs Debian's mirror), or run `banger image build --name default`".into()),
        )
    });
    for tool in IMAGE_TOOLS {
        checks.push(tool_check(
            tool,
            "image builds",
            if built { Status::Warn } else { Status::Fail },
        ));
    }

    checks.push(
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
        {
            Ok(_) => check("tun", Status::Pass, "/dev/net/tun is usable", None),
            Err(e) => check(
                "tun",
                Status::Fail,
                format!("/dev/net/tun: {e}"),
                Some("load the tun module (modprobe tun) and run as root".into()),
            ),
        },
    );
    checks.push(if nix::unistd::geteuid().is_root() {
        check(
            "network privileges",
            Status::Pass,
            "running as root: bridge and TAP devices can be created",
            None,
        )
    } else {
        check(
            "network privileges",
            Status::Fail,
            "creating the bridge and TAP devices needs CAP_NET_ADMIN",
            Some("run bangerd as root".into()),
        )
    });
    checks.push(tool_check("iptables", "--nat", Status::Warn));
    checks.push(match banger_host::net::default_route_interface() {
        Some(dev) => check(
            "nat uplink",
            Status::Pass,
            format!("default route via {dev}: --nat guests reach the network through it"),
            None,
        ),
        None => check(
            "nat uplink",
            Status::Warn,
            "no default IPv4 route: --nat has nowhere to send guest traffic",
            Some("connect the host to a network; VMs without --nat are unaffected".into()),
        ),
    });
    checks.push(dns(paths, config));
    let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    checks.push(if forward.trim() == "1" {
        check("ip_forward", Status::Pass, "net.ipv4.ip_forward = 1", None)
    } else {
        check(
            "ip_forward",
            Status::Pass,
            "net.ipv4.ip_forward = 0 (enabled when a VM uses NAT)",
            None,
        )
    });
    checks.push(if Path::new("/dev/vhost-vsock").exists() {
        check("vsock", Status::Pass, "/dev/vhost-vsock exists", None)
    } else if let Some(path) = tools::find("vhost-device-vsock") {
        check(
            "vsock",
            Status::Pass,
            format!("{} (user-space vsock for QEMU)", path.display()),
            None,
        )
    } else {
        check(
            "vsock",
            Status::Warn,
            "no /dev/vhost-vsock and no vhost-device-vsock",
            Some(
                "load vhost_vsock, or `cargo install vhost-device-vsock`, for the guest agent"
                    .into(),
            ),
        )
    });
    checks.push(disk_space(&paths.state_dir));
    checks.push(socket(paths));
    checks
}

/// The `.vm` DNS address must be free for bangerd (or already bangerd's).
fn dns(paths: &Paths, config: &Config) -> Check {
    let name = "dns";
    if std::os::unix::net::UnixStream::connect(paths.socket()).is_ok() {
        return check(
            name,
            Status::Pass,
            format!(
                "{} (see `banger daemon status` for whether it serves)",
                config.dns_listen
            ),
            None,
        );
    }
    match std::net::UdpSocket::bind(&config.dns_listen) {
        Ok(_) => check(
            name,
            Status::Pass,
            format!("{} is free for the .vm DNS", config.dns_listen),
            None,
        ),
        Err(e) => check(
            name,
            Status::Warn,
            format!("cannot use {} for the .vm DNS: {e}", config.dns_listen),
            Some("set dns_listen in config.toml to a free address:port".into()),
        ),
    }
}

fn disk_space(state_dir: &Path) -> Check {
    // The state dir may not exist yet: look at the nearest existing parent.
    let existing = state_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    match nix::sys::statvfs::statvfs(existing) {
        Ok(stat) => {
            let free = stat.blocks_available() * stat.fragment_size();
            let gib = free as f64 / (1u64 << 30) as f64;
            let detail = format!("{gib:.1} GiB free under {}", existing.display());
            if free < 2 << 30 {
                check(
                    "disk space",
                    Status::Fail,
                    detail,
                    Some(
                        "free space: an image needs ~1 GiB and each VM's disks grow as used".into(),
                    ),
                )
            } else if free < 10 << 30 {
                check(
                    "disk space",
                    Status::Warn,
                    detail,
                    Some("VM disks are sparse but grow with use".into()),
                )
            } else {
                check("disk space", Status::Pass, detail, None)
            }
        }
        Err(e) => check(
            "disk space",
            Status::Warn,
            format!("cannot stat {}: {e}", existing.display()),
            None,
        ),
    }
}

fn socket(paths: &Paths) -> Check {
    let socket = paths.socket();
    match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(stream) => {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            check(
                "daemon",
                Status::Pass,
                format!("listening on {}", socket.display()),
                None,
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => check(
            "daemon",
            Status::Fail,
            format!("{}: permission denied", socket.display()),
            Some("the socket belongs to another user; use your own XDG_RUNTIME_DIR".into()),
        ),
        Err(_) => check(
            "daemon",
            Status::Pass,
            format!("not running (starts on demand at {})", socket.display()),
            None,
        ),
    }
}

/// Whether any check failed.
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_area_and_fails_on_a_missing_vmm() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let config = Config {
            vmm: VmmChoice::Qemu,
            qemu_bin: Some("/nonexistent/qemu-system-x86_64".into()),
            ..Config::default()
        };
        let checks = run(&paths, &config, &dir.path().join("images"));
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        for area in [
            "kvm",
            "firecracker",
            "qemu",
            "tool mkfs.ext4",
            "default image",
            "tun",
            "tool iptables",
            "vsock",
            "disk space",
            "daemon",
        ] {
            assert!(names.contains(&area), "missing check {area}: {names:?}");
        }
        let qemu = checks.iter().find(|c| c.name == "qemu").unwrap();
        assert_eq!(qemu.status, Status::Fail);
        assert!(
            qemu.hint
                .as_deref()
                .unwrap_or("")
                .contains("apt-get install qemu-system-x86"),
            "{qemu:?}"
        );
        assert!(failed(&checks));
        let image = checks.iter().find(|c| c.name == "default image").unwrap();
        assert_eq!(image.status, Status::Warn);
    }
}
