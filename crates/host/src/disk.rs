//! ext4 disk images, made and filled without mounting anything.

use std::path::Path;

use async_trait::async_trait;

use crate::runner::{Cmd, Runner};
use crate::HostError;

#[async_trait]
pub trait Disks: Send + Sync {
    /// Creates a sparse ext4 image of `size` bytes labelled `label`, holding
    /// a copy of `contents` (a directory tree) when given.
    async fn create_ext4(
        &self,
        path: &Path,
        size: u64,
        label: &str,
        contents: Option<&Path>,
    ) -> Result<(), HostError>;

    /// Grows an ext4 image and its filesystem to `size` bytes. On failure
    /// the image keeps its old size.
    async fn grow_ext4(&self, path: &Path, size: u64) -> Result<(), HostError>;

    /// Makes `path` a copy of the ext4 image `seed` (sparse, reflinked
    /// where the filesystem can), labelled `label`, grown to `size`.
    async fn clone_ext4(
        &self,
        seed: &Path,
        path: &Path,
        size: u64,
        label: &str,
    ) -> Result<(), HostError>;

    /// Whether the (unmounted) ext4 image has a regular file at `path`.
    async fn has_file(&self, image: &Path, path: &str) -> Result<bool, HostError>;
}

/// [`Disks`] through e2fsprogs' `mkfs.ext4 -d`.
pub struct Ext4Disks<R> {
    runner: R,
}

impl<R: Runner> Ext4Disks<R> {
    pub fn new(runner: R) -> Self {
        Ext4Disks { runner }
    }
}

#[async_trait]
impl<R: Runner> Disks for Ext4Disks<R> {
    async fn create_ext4(
        &self,
        path: &Path,
        size: u64,
        label: &str,
        contents: Option<&Path>,
    ) -> Result<(), HostError> {
        create_sparse(path, size)?;
        // Lazy init keeps creation time independent of the disk size; the
        // guest kernel finishes initialising inode tables in the background.
        let mut cmd = Cmd::new("mkfs.ext4").args([
            "-F",
            "-q",
            "-L",
            label,
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1",
            "-m",
            "0",
        ]);
        let mut mine = false;
        if let Some(dir) = contents {
            cmd = cmd.arg("-d").arg(dir);
            mine = crate::userns::owned_by_me(dir);
        }
        cmd = cmd.arg(path);
        if mine {
            // A daemon that runs as a user writes the guest's files as that
            // user: they are root's in the guest.
            cmd = crate::userns::as_root(cmd, crate::userns::Map::User, &[]);
        }
        self.runner.run(cmd).await?;
        Ok(())
    }

    async fn grow_ext4(&self, path: &Path, size: u64) -> Result<(), HostError> {
        let old = std::fs::metadata(path)
            .map_err(|e| HostError::path_io("cannot stat", path, e))?
            .len();
        // resize2fs insists on a freshly checked filesystem.
        self.runner
            .run(
                Cmd::new("e2fsck")
                    .args(["-f", "-y"])
                    .arg(path)
                    .ok_codes(&[1]),
            )
            .await?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| HostError::path_io("cannot open", path, e))?;
        file.set_len(size)
            .map_err(|e| HostError::path_io("cannot grow", path, e))?;
        if let Err(err) = self.runner.run(Cmd::new("resize2fs").arg(path)).await {
            let _ = file.set_len(old);
            return Err(err);
        }
        Ok(())
    }

    async fn has_file(&self, image: &Path, path: &str) -> Result<bool, HostError> {
        // debugfs, read-only; it exits 0 either way and reports a missing
        // file on stderr.
        let out = self
            .runner
            .run(
                Cmd::new("debugfs")
                    .args(["-R", &format!("stat {path}")])
                    .arg(image),
            )
            .await?;
        let text = format!(
            "{}{}",
            out.stdout_str(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(text.contains("Type: regular"))
    }

    async fn clone_ext4(
        &self,
        seed: &Path,
        path: &Path,
        size: u64,
        label: &str,
    ) -> Result<(), HostError> {
        let seed_size = std::fs::metadata(seed)
            .map_err(|e| HostError::path_io("cannot stat", seed, e))?
            .len();
        if seed_size > size {
            return Err(HostError::SeedTooLarge {
                seed: seed.to_path_buf(),
                seed_size,
                size,
            });
        }
        self.runner
            .run(
                Cmd::new("cp")
                    .args(["--sparse=always", "--reflink=auto"])
                    .arg(seed)
                    .arg(path),
            )
            .await?;
        // The guest mounts /root by label, whatever the seed was called.
        self.runner
            .run(Cmd::new("e2label").arg(path).arg(label))
            .await?;
        if size > seed_size {
            self.grow_ext4(path, size).await?;
        }
        Ok(())
    }
}

/// A file of `size` bytes with no blocks allocated.
pub fn create_sparse(path: &Path, size: u64) -> Result<(), HostError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(|e| HostError::path_io("cannot create", path, e))?;
    file.set_len(size)
        .map_err(|e| HostError::path_io("cannot size", path, e))
}

/// Bytes actually allocated on the host for a (sparse) file.
pub fn allocated_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.blocks() * 512)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::SystemRunner;

    #[tokio::test]
    async fn creates_a_sparse_labelled_ext4_with_contents() {
        if crate::tools::find("mkfs.ext4").is_none() {
            panic!("mkfs.ext4 is required for this test (apt-get install e2fsprogs)");
        }
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/hostname"), "calm-otter\n").unwrap();
        let img = dir.path().join("disk.ext4");
        Ext4Disks::new(SystemRunner)
            .create_ext4(&img, 4 << 30, "banger-test", Some(&tree))
            .await
            .unwrap();
        assert_eq!(std::fs::metadata(&img).unwrap().len(), 4 << 30);
        assert!(
            allocated_bytes(&img).unwrap() < 256 << 20,
            "image should stay sparse"
        );
        let out = SystemRunner
            .run(
                Cmd::new("debugfs")
                    .args(["-R", "cat /etc/hostname"])
                    .arg(&img),
            )
            .await
            .unwrap();
        assert_eq!(out.stdout_str(), "calm-otter\n");
        let label = SystemRunner
            .run(Cmd::new("e2label").arg(&img))
            .await
            .unwrap();
        assert_eq!(label.stdout_str().trim(), "banger-test");
    }
}
