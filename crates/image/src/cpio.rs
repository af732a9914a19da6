//! A writer for the `newc` cpio format the kernel unpacks as an initramfs.

use std::io::{self, Write};

pub struct Entry<'a> {
    pub path: &'a str,
    /// Full st_mode, including the file type bits.
    pub mode: u32,
    pub data: &'a [u8],
    /// (major, minor) for device nodes.
    pub rdev: (u32, u32),
}

pub const DIR: u32 = 0o040000;
pub const FILE: u32 = 0o100000;
pub const CHAR: u32 = 0o020000;
pub const SYMLINK: u32 = 0o120000;

pub struct Writer<W: Write> {
    out: W,
    inode: u32,
    written: usize,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            inode: 1,
            written: 0,
        }
    }

    pub fn add(&mut self, entry: &Entry<'_>) -> io::Result<()> {
        let name_len = entry.path.len() + 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.inode,
            entry.mode,
            0, // uid
            0, // gid
            if entry.mode & DIR == DIR { 2 } else { 1 },
            0, // mtime: fixed, so builds are reproducible
            entry.data.len(),
            0,
            0,
            entry.rdev.0,
            entry.rdev.1,
            name_len,
            0, // checksum (unused by newc)
        );
        self.inode += 1;
        self.write(header.as_bytes())?;
        self.write(entry.path.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(entry.data)?;
        self.pad()
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.add(&Entry {
            path: "TRAILER!!!",
            mode: 0,
            data: &[],
            rdev: (0, 0),
        })?;
        Ok(self.out)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len();
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let pad = (4 - self.written % 4) % 4;
        self.write(&[0u8; 3][..pad])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_unpack_with_the_system_cpio() {
        let mut w = Writer::new(Vec::new());
        w.add(&Entry {
            path: "etc",
            mode: DIR | 0o755,
            data: &[],
            rdev: (0, 0),
        })
        .unwrap();
        w.add(&Entry {
            path: "etc/hello",
            mode: FILE | 0o644,
            data: b"hi there\n",
            rdev: (0, 0),
        })
        .unwrap();
        w.add(&Entry {
            path: "init",
            mode: SYMLINK | 0o777,
            data: b"etc/hello",
            rdev: (0, 0),
        })
        .unwrap();
        let archive = w.finish().unwrap();
        assert_eq!(archive.len() % 4, 0);
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("cpio")
            .args(["-i", "-d", "--quiet"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("cpio is needed for this test (apt-get install cpio)");
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("etc/hello")).unwrap(),
            "hi there\n"
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("init"))
                .unwrap()
                .to_str(),
            Some("etc/hello")
        );
    }
}
