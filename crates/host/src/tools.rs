//! Finding the external tools banger shells out to.

use std::path::{Path, PathBuf};

use crate::HostError;

/// The Debian package that provides each tool we use, for install hints.
pub fn debian_package(tool: &str) -> Option<&'static str> {
    Some(match tool {
        "mkfs.ext4" | "e2fsck" | "resize2fs" | "debugfs" => "e2fsprogs",
        "ip" => "iproute2",
        "ssh" | "ssh-keygen" => "openssh-client",
        "qemu-system-x86_64" => "qemu-system-x86",
        "mmdebstrap" => "mmdebstrap",
        "modprobe" => "kmod",
        "busybox" => "busybox-static",
        "iptables" => "iptables",
        "fuse2fs" => "fuse2fs",
        "newuidmap" | "newgidmap" => "uidmap",
        "setfacl" => "acl",
        "unshare" | "setpriv" => "util-linux",
        "firecracker" => return None,
        _ => return None,
    })
}

/// Looks `tool` up in PATH (or takes it as is when it contains a slash).
/// One of banger's own programs: beside the running executable (an
/// install, or cargo's target directory), else in PATH.
pub fn find_own(name: &str) -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(name)))
        .filter(|p| is_executable(p))
        .or_else(|| find(name))
}

pub fn find(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        let path = PathBuf::from(tool);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    // Root's tools live in sbin, which a user's PATH may lack.
    let extra = [Path::new("/usr/sbin"), Path::new("/sbin")];
    std::env::split_paths(&path)
        .chain(extra.iter().map(|p| p.to_path_buf()))
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

/// Like [`find`], with an actionable error when the tool is missing.
pub fn require(tool: &str) -> Result<PathBuf, HostError> {
    find(tool).ok_or_else(|| {
        let name = tool.rsplit('/').next().unwrap_or(tool);
        HostError::MissingTool {
            tool: tool.to_string(),
            package: debian_package(name),
        }
    })
}

/// Every one of `tools`, or the first that is missing.
pub fn require_all(tools: &[&str]) -> Result<(), HostError> {
    tools.iter().try_for_each(|tool| require(tool).map(drop))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_names_the_package_of_missing_tools() {
        assert!(find("sh").is_some());
        let err = require("definitely-not-a-tool-xyz").unwrap_err();
        assert!(err.to_string().contains("definitely-not-a-tool-xyz"));
        match (HostError::MissingTool {
            tool: "mkfs.ext4".into(),
            package: debian_package("mkfs.ext4"),
        })
        .hint()
        {
            Some(h) => assert!(h.contains("apt-get install e2fsprogs")),
            None => panic!("no hint"),
        }
    }
}
