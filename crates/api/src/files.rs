//! The files of a VM's directory, named once for the daemon, the drivers
//! and the clients that read them (the TUI's console pane), and reading the
//! end of a log.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::vmm::VmmKind;

/// The host end of a VM's vsock in its directory: a Unix socket with
/// Firecracker's `CONNECT <port>` handshake, whichever VMM runs the VM.
pub const VSOCK_SOCKET: &str = "vm.vsock";

/// Files of a VM's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmFiles {
    pub dir: PathBuf,
}

impl VmFiles {
    pub fn new(dir: &Path) -> Self {
        VmFiles {
            dir: dir.to_path_buf(),
        }
    }

    /// The writable upper layer of the guest's `/`.
    pub fn overlay(&self) -> PathBuf {
        self.dir.join("overlay.ext4")
    }

    /// The persistent `/root` disk.
    pub fn work(&self) -> PathBuf {
        self.dir.join("work.ext4")
    }

    pub fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    pub fn vsock(&self) -> PathBuf {
        self.dir.join(VSOCK_SOCKET)
    }

    /// The guest's serial console, whichever VMM runs it (QEMU's `-serial`
    /// chardev; Firecracker's `PUT /serial`).
    pub fn console(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// The VMM's own log: Firecracker's logger (`PUT /logger`), or QEMU's
    /// standard output and error.
    pub fn vmm_log(&self, vmm: VmmKind) -> PathBuf {
        match vmm {
            VmmKind::Qemu => self.dir.join("qemu.log"),
            VmmKind::Firecracker => self.dir.join("firecracker.log"),
        }
    }

    /// Firecracker's standard output and error: what it says before its
    /// logger is configured, and a fatal error when it exits.
    pub fn firecracker_output(&self) -> PathBuf {
        self.dir.join("firecracker.out")
    }

    /// A suspended VM's saved memory and device state (a directory: its
    /// files are the VMM's, plus banger's `state.json`). Present only while
    /// the VM is suspended.
    pub fn saved(&self) -> PathBuf {
        self.dir.join("saved")
    }

    /// Where a suspend writes before the state is complete; renamed to
    /// [`VmFiles::saved`] at the end, so a crash never leaves a half state
    /// that looks whole.
    pub fn saved_partial(&self) -> PathBuf {
        self.dir.join("saved.partial")
    }

    /// A saved state a resume has loaded into a new VMM: from the moment the
    /// guest runs again it is used up (its disks move on), so it is renamed
    /// before that and removed once the VM is running.
    pub fn saved_used(&self) -> PathBuf {
        self.dir.join("saved.used")
    }

    /// Firecracker's metrics (`PUT /metrics`): one JSON object per flush,
    /// each holding the counts since the one before.
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.json")
    }
}

/// The last `n` non-empty lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// The last `n` non-empty lines of a file (read from its last 16 KiB),
/// without terminal control characters: a guest's console may hold
/// anything. Empty when the file cannot be read.
pub fn tail_file(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let clean: String = String::from_utf8_lossy(&bytes)
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect();
    tail_lines(&clean, n)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// [`tail_file`] on one line, for an error message.
pub fn tail_summary(path: &Path, n: usize) -> String {
    let tail = tail_file(path, n).join(" | ");
    if tail.is_empty() {
        format!("(nothing in {})", path.display())
    } else {
        format!("{tail} (from {})", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_one_file_and_each_vmm_has_its_log() {
        let files = VmFiles::new(Path::new("/v"));
        assert_eq!(files.console(), Path::new("/v/console.log"));
        assert_eq!(files.vmm_log(VmmKind::Qemu), Path::new("/v/qemu.log"));
        assert_eq!(
            files.vmm_log(VmmKind::Firecracker),
            Path::new("/v/firecracker.log")
        );
    }

    #[test]
    fn tails_skip_blank_lines_and_control_characters() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(&log, "one\n\n\x1b[2Jtwo\r\nthree\n").unwrap();
        assert_eq!(tail_file(&log, 2), ["[2Jtwo", "three"]);
        assert_eq!(
            tail_summary(&log, 1),
            format!("three (from {})", log.display())
        );
        assert!(tail_file(&dir.path().join("missing"), 3).is_empty());
        assert!(tail_summary(&dir.path().join("missing"), 3).starts_with("(nothing in"));
    }
}
