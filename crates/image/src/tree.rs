//! Writing into a distribution tree from the host, as root, safely. A tree
//! may come from a base image someone else made (`--base-rootfs`): a link
//! in it (`etc/ssh -> /etc/ssh`) must never carry a write, a removal or a
//! read out of the tree and onto the host. So every directory on the way is
//! checked to be a real directory (and made when missing), a link at the
//! file itself is replaced rather than followed, and only regular files are
//! read.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

pub(crate) struct Tree<'a> {
    root: &'a Path,
}

/// An I/O error that names the path it happened at.
fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::other(format!(
        "{} {why}: banger writes into a tree only through real directories",
        path.display()
    ))
}

impl<'a> Tree<'a> {
    pub(crate) fn new(root: &'a Path) -> Tree<'a> {
        Tree { root }
    }

    /// `rel`, a real directory (made, with its parents, when missing).
    pub(crate) fn dir(&self, rel: &str) -> io::Result<PathBuf> {
        let mut dir = self.root.to_path_buf();
        for part in Path::new(rel).components() {
            let Component::Normal(name) = part else {
                return Err(refused(Path::new(rel), "is not a plain relative path"));
            };
            dir.push(name);
            match dir.symlink_metadata() {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(refused(&dir, "is a symbolic link"))
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(refused(&dir, "is not a directory")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir(&dir).map_err(at(&dir))?
                }
                Err(e) => return Err(at(&dir)(e)),
            }
        }
        Ok(dir)
    }

    /// Where a file at `rel` is (re)made: its directory real, and whatever
    /// link stood there removed.
    pub(crate) fn file(&self, rel: &str) -> io::Result<PathBuf> {
        let rel_path = Path::new(rel);
        let name = rel_path
            .file_name()
            .ok_or_else(|| refused(rel_path, "names no file"))?;
        let parent = rel_path
            .parent()
            .map(Path::to_string_lossy)
            .unwrap_or_default();
        let path = self.dir(&parent)?.join(name);
        if path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            std::fs::remove_file(&path)?;
        }
        Ok(path)
    }

    pub(crate) fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> io::Result<()> {
        let path = self.file(rel)?;
        std::fs::write(&path, contents).map_err(at(&path))
    }

    pub(crate) fn write_mode(
        &self,
        rel: &str,
        contents: impl AsRef<[u8]>,
        mode: u32,
    ) -> io::Result<()> {
        let path = self.file(rel)?;
        std::fs::write(&path, contents).map_err(at(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(at(&path))
    }

    /// A link at `rel` pointing at `target` (an absolute path inside the
    /// guest), replacing what was there.
    pub(crate) fn symlink(&self, target: &str, rel: &str) -> io::Result<()> {
        let path = self.file(rel)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(at(&path)(e)),
        }
        std::os::unix::fs::symlink(target, &path).map_err(at(&path))
    }

    /// Removes the file (or link) at `rel`, if there is one.
    pub(crate) fn remove(&self, rel: &str) -> io::Result<()> {
        let path = self.file(rel)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(at(&path)(e)),
            _ => Ok(()),
        }
    }

    /// The contents of the regular file at `rel`; `None` when there is no
    /// regular file there (missing, a link, a directory). Never creates
    /// anything.
    pub(crate) fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        let rel = Path::new(rel);
        let (Some(name), Some(parent)) = (rel.file_name(), rel.parent()) else {
            return Ok(None);
        };
        if !self.has_dir(&parent.to_string_lossy()) {
            return Ok(None);
        }
        let path = self.root.join(parent).join(name);
        match path.symlink_metadata() {
            Ok(meta) if meta.is_file() => std::fs::read(&path).map(Some).map_err(at(&path)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(at(&path)(e)),
        }
    }

    /// Whether `rel` is a real directory (not a link to one).
    pub(crate) fn has_dir(&self, rel: &str) -> bool {
        let mut path = self.root.to_path_buf();
        Path::new(rel).components().all(|part| {
            let Component::Normal(name) = part else {
                return false;
            };
            path.push(name);
            path.symlink_metadata()
                .is_ok_and(|m| m.is_dir() && !m.file_type().is_symlink())
        })
    }

    /// Whether anything (even a dangling link) is at `rel`.
    pub(crate) fn occupied(&self, rel: &str) -> bool {
        let parent = Path::new(rel)
            .parent()
            .map(Path::to_string_lossy)
            .unwrap_or_default();
        self.has_dir(&parent) && self.root.join(rel).symlink_metadata().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_written_read_or_removed_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (tree_root, host) = (dir.path().join("tree"), dir.path().join("host"));
        std::fs::create_dir_all(tree_root.join("etc")).unwrap();
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("shadow"), "secret").unwrap();
        std::os::unix::fs::symlink(&host, tree_root.join("etc/ssh")).unwrap();
        std::os::unix::fs::symlink(host.join("shadow"), tree_root.join("etc/hostname")).unwrap();
        let tree = Tree::new(&tree_root);

        // A linked directory refuses writes and removals into it.
        let err = tree.write("etc/ssh/banger.conf", "x").unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert!(tree.remove("etc/ssh/shadow").is_err());
        assert!(host.join("shadow").exists());
        // A linked file is replaced, not written through.
        tree.write("etc/hostname", "banger\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(host.join("shadow")).unwrap(),
            "secret"
        );
        assert_eq!(
            std::fs::read_to_string(tree_root.join("etc/hostname")).unwrap(),
            "banger\n"
        );
        // Reads follow no link either.
        std::os::unix::fs::symlink(host.join("shadow"), tree_root.join("etc/motd")).unwrap();
        assert_eq!(tree.read("etc/motd").unwrap(), None);
        assert_eq!(tree.read("etc/ssh/shadow").unwrap(), None);
        assert!(!tree.has_dir("etc/ssh"));
        // A file where a directory would be: nothing to read, no error.
        std::fs::write(tree_root.join("usr-file"), "x").unwrap();
        assert_eq!(tree.read("usr-file/share/dot.profile").unwrap(), None);
        assert!(!tree.occupied("usr-file/share/dot.profile"));
        // Missing directories are made, as real ones.
        tree.write_mode("usr/local/bin/tool", "#!/bin/sh\n", 0o755)
            .unwrap();
        assert!(tree.has_dir("usr/local/bin"));
        assert!(tree.write("../escape", "x").is_err());
    }
}
