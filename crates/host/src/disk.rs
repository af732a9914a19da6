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

    /// The regular file at `path` in the (unmounted) ext4 image, if any.
    async fn read_file(&self, image: &Path, path: &str) -> Result<Option<Vec<u8>>, HostError>;

    /// Replaces files in the (unmounted) ext4 image, each owned by root
    /// with its mode, and removes the `remove` paths where they exist.
    /// Directories of the files must exist. Read back before it returns.
    async fn replace_files(
        &self,
        image: &Path,
        files: &[ImageFile],
        remove: &[&str],
    ) -> Result<(), HostError>;
}

/// A file to put into an ext4 image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Absolute inside the image.
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
}

/// A debugfs argument: double-quoted, so a space stays in the path
/// (paths with a quote or a newline are refused before any is used).
fn quoted(arg: &str) -> String {
    format!("\"{arg}\"")
}

fn unquotable(arg: &str) -> bool {
    arg.contains('"') || arg.contains('\n')
}

/// The scratch copies hold a private host key: readable by the owner only.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), HostError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(contents))
        .map_err(|e| HostError::path_io("cannot write", path, e))
}

/// `/a/b/c` as (`/a/b`, `c`).
fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => ("/", path),
    }
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

    async fn read_file(&self, image: &Path, path: &str) -> Result<Option<Vec<u8>>, HostError> {
        if !self.has_file(image, path).await? {
            return Ok(None);
        }
        let out = self
            .runner
            .run(
                Cmd::new("debugfs")
                    .args(["-R", &format!("cat {path}")])
                    .arg(image),
            )
            .await?;
        Ok(Some(out.stdout))
    }

    async fn replace_files(
        &self,
        image: &Path,
        files: &[ImageFile],
        remove: &[&str],
    ) -> Result<(), HostError> {
        // debugfs edits the image in place; `write` names a file in the
        // current directory, so each file is written from its directory.
        // It reports a failed command on stderr and exits 0, so what was
        // written is dumped back and compared.
        let scratch = image.with_extension("edit");
        let named = files
            .iter()
            .map(|f| f.path.as_str())
            .chain(remove.iter().copied())
            .chain(std::iter::once(scratch.to_str().unwrap_or("\"")));
        if let Some(bad) = named.into_iter().find(|p| unquotable(p)) {
            return Err(HostError::CommandFailed {
                command: format!("debugfs -w {}", image.display()),
                status: "not run".into(),
                stderr: format!("{bad:?} has a quote or a newline, which debugfs cannot take"),
            });
        }
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch)
            .map_err(|e| HostError::path_io("cannot create", &scratch, e))?;
        let result = async {
            let mut script = String::new();
            for path in remove {
                script.push_str(&format!("rm {}\n", quoted(path)));
            }
            for (i, file) in files.iter().enumerate() {
                let local = scratch.join(format!("in-{i}"));
                write_private(&local, &file.contents)?;
                let (dir, name) = split(&file.path);
                // `write` names a file in the current directory; the rest
                // take the whole path, so a failed `cd` cannot misplace them.
                script.push_str(&format!(
                    "rm {path}\ncd {dir}\nwrite {local} {name}\nsif {path} mode 0{mode:o}\nsif {path} uid 0\nsif {path} gid 0\n",
                    path = quoted(&file.path),
                    dir = quoted(dir),
                    local = quoted(&local.display().to_string()),
                    name = quoted(name),
                    mode = 0o100000 | file.mode
                ));
            }
            let mut check = String::new();
            for (i, file) in files.iter().enumerate() {
                let out = scratch.join(format!("out-{i}"));
                check.push_str(&format!(
                    "dump {} {}\n",
                    quoted(&file.path),
                    quoted(&out.display().to_string())
                ));
            }
            for path in remove {
                check.push_str(&format!("stat {}\n", quoted(path)));
            }
            for (name, text) in [("edit.debugfs", &script), ("check.debugfs", &check)] {
                write_private(&scratch.join(name), text.as_bytes())?;
            }
            self.runner
                .run(Cmd::new("debugfs").arg("-w").arg("-f").arg(scratch.join("edit.debugfs")).arg(image))
                .await?;
            let checked = self
                .runner
                .run(Cmd::new("debugfs").arg("-f").arg(scratch.join("check.debugfs")).arg(image))
                .await?;
            let not_written = files.iter().enumerate().find(|(i, file)| {
                std::fs::read(scratch.join(format!("out-{i}"))).ok().as_deref()
                    != Some(file.contents.as_slice())
            });
            let failure = |what: String| HostError::CommandFailed {
                command: format!("debugfs -w {}", image.display()),
                status: "0".into(),
                stderr: what,
            };
            if let Some((_, file)) = not_written {
                return Err(failure(format!("{} was not written", file.path)));
            }
            // A removed path that still exists shows up as an inode.
            if checked.stdout_str().contains("Inode:") {
                return Err(failure(format!("one of {remove:?} could not be removed")));
            }
            Ok(())
        }
        .await;
        let _ = std::fs::remove_dir_all(&scratch);
        result
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

    #[tokio::test]
    async fn replaces_files_owned_by_root_and_removes_others() {
        // A space in the path: every debugfs argument is quoted.
        let dir = tempfile::Builder::new()
            .prefix("disk test ")
            .tempdir()
            .unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("upper/etc/ssh")).unwrap();
        std::fs::write(tree.join("upper/etc/hostname"), "source\n").unwrap();
        std::fs::write(tree.join("upper/etc/machine-id"), "abc\n").unwrap();
        std::fs::write(tree.join("upper/etc/kept"), "mine\n").unwrap();
        let img = dir.path().join("overlay.ext4");
        let disks = Ext4Disks::new(SystemRunner);
        disks
            .create_ext4(&img, 64 << 20, "banger-test", Some(&tree))
            .await
            .unwrap();
        let files = [
            ImageFile {
                path: "/upper/etc/hostname".into(),
                mode: 0o644,
                contents: b"clone\n".to_vec(),
            },
            ImageFile {
                path: "/upper/etc/ssh/key".into(),
                mode: 0o600,
                contents: b"secret".to_vec(),
            },
        ];
        disks
            .replace_files(
                &img,
                &files,
                &["/upper/etc/machine-id", "/upper/etc/absent"],
            )
            .await
            .unwrap();
        let debugfs = |request: &str| {
            let request = request.to_string();
            let img = img.clone();
            async move {
                SystemRunner
                    .run(Cmd::new("debugfs").args(["-R", &request]).arg(&img))
                    .await
                    .unwrap()
                    .stdout_str()
            }
        };
        assert_eq!(debugfs("cat /upper/etc/hostname").await, "clone\n");
        assert_eq!(debugfs("cat /upper/etc/kept").await, "mine\n");
        let key = debugfs("stat /upper/etc/ssh/key").await;
        assert!(
            key.contains("Mode:  0600") && key.contains("User:     0"),
            "{key}"
        );
        assert!(!disks.has_file(&img, "/upper/etc/machine-id").await.unwrap());
        let fsck = std::process::Command::new("e2fsck")
            .args(["-fn"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        // A file whose directory is missing is an error, not a silent skip.
        let missing = [ImageFile {
            path: "/upper/nowhere/x".into(),
            mode: 0o644,
            contents: b"x".to_vec(),
        }];
        assert!(disks.replace_files(&img, &missing, &[]).await.is_err());
    }
}
