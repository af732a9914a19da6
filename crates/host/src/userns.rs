//! Running a tool so that it sees a tree's true owners when the daemon is
//! not root. A tree made by an unprivileged image build (mmdebstrap in root
//! mode inside `unshare --map-root-user --map-auto`) has root's files owned
//! by the user and every other owner in the user's subordinate ids; a tree
//! the daemon writes as the user (a VM's guest configuration) is the user's.
//! Tools that record or need ownership (`mkfs.ext4 -d`, `chroot`) run in a
//! user namespace where that user is root again. As root, commands run as
//! they are.

use std::path::Path;

use crate::runner::Cmd;

/// Which ids the namespace maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Map {
    /// The user as root, nothing else (a tree only the user's files are in).
    User,
    /// The user as root and its subordinate ids as 1, 2, ... (an image tree;
    /// needs `newuidmap` and a range in /etc/subuid and /etc/subgid).
    Subordinate,
}

/// Whether this process is root (nothing to map).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `cmd`, run as root of a user namespace when this process is not root.
/// `namespaces`: more of `unshare`'s options (`--mount`, `--pid`, `--fork`).
pub fn as_root(cmd: Cmd, map: Map, namespaces: &[&str]) -> Cmd {
    if is_root() {
        return cmd;
    }
    let mut wrapped = Cmd::new("unshare").arg("--map-root-user");
    if map == Map::Subordinate {
        wrapped = wrapped.arg("--map-auto");
    }
    // unshare looks the program up in PATH, which for a user often lacks
    // the sbin directories e2fsprogs live in: give it the path banger found.
    let program = crate::tools::find(&cmd.program)
        .map(|p| p.into_os_string())
        .unwrap_or_else(|| cmd.program.clone().into());
    wrapped = wrapped
        .args(namespaces.iter().copied())
        .arg("--")
        .arg(program)
        .args(cmd.args);
    Cmd {
        program: wrapped.program,
        args: wrapped.args,
        ..cmd
    }
}

/// Whether a tree is the user's own (its top directory is), so its files
/// are meant as root's inside a guest. A tree owned by root (an image built
/// by a root daemon) is recorded as it is.
pub fn owned_by_me(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    !is_root() && std::fs::metadata(dir).is_ok_and(|m| m.uid() == nix::unistd::geteuid().as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_a_user_a_command_runs_as_namespace_root_with_its_arguments_intact() {
        let cmd = Cmd::new("/sbin/mkfs.ext4")
            .args(["-d", "/a b", "--", "-x"])
            .log_to("/tmp/log");
        let wrapped = as_root(cmd.clone(), Map::Subordinate, &["--mount"]);
        if is_root() {
            assert_eq!(wrapped.display(), cmd.display());
            return;
        }
        assert_eq!(
            wrapped.display(),
            "unshare --map-root-user --map-auto --mount -- /sbin/mkfs.ext4 -d /a b -- -x"
        );
        assert_eq!(
            wrapped.log, cmd.log,
            "everything but the command line is kept"
        );
    }
}
