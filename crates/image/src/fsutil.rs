//! Small file helpers the build steps share.

use std::path::Path;

use banger_host::runner::{Cmd, Runner};
use banger_host::{userns, HostError};

/// Runs filesystem-heavy work (a whole distribution tree) off the async
/// workers.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking image-build step panicked")
}

/// Removes a distribution tree. As a user, the tree has files owned by the
/// user's subordinate ids (a package's own user), which only the user
/// namespace the tree was made in may remove.
pub(crate) async fn remove_tree(runner: &dyn Runner, dir: &Path) -> Result<(), HostError> {
    if !dir.exists() {
        return Ok(());
    }
    if userns::is_root() {
        let owned = dir.to_path_buf();
        return blocking(move || std::fs::remove_dir_all(&owned))
            .await
            .map_err(|e| HostError::path_io("cannot remove", dir, e));
    }
    let rm = Cmd::new("rm").args(["-rf", "--"]).arg(dir);
    runner
        .run(userns::as_root(rm, userns::Map::Subordinate, &[]))
        .await
        .map(drop)
}

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), HostError> {
    std::fs::write(path, bytes).map_err(|e| HostError::path_io("cannot write", path, e))
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), HostError> {
    std::fs::create_dir_all(dir).map_err(|e| HostError::path_io("cannot create", dir, e))
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), HostError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| HostError::path_io("chmod", path, e))
}

pub(crate) fn copy(from: &Path, to: &Path) -> Result<(), HostError> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| HostError::path_io("cannot copy", from, e))
}

/// Bytes a tree needs on ext4: its files rounded up to blocks, at least a
/// block per inode.
pub(crate) fn tree_size(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            total += meta.len().div_ceil(4096).max(1) * 4096;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

/// A version string as numbers and words, so that numbers compare as
/// numbers: 6.1.0-25 sorts after 6.1.0-9.
pub(crate) fn version_key(version: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = version;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let word = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            key.push((0, rest[..word].to_string()));
            rest = &rest[word..];
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_their_numbers() {
        let mut versions = ["6.1.0-9-cloud", "6.1.0-25-cloud", "6.1.0-10-cloud"];
        versions.sort_by_key(|v| version_key(v));
        assert_eq!(
            versions,
            ["6.1.0-9-cloud", "6.1.0-10-cloud", "6.1.0-25-cloud"]
        );
    }
}
