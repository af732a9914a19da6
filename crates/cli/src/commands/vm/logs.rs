//! `banger vm logs`: a VM's guest console (or its VMM's own log), read from
//! the VM's directory, optionally following it across appends and across
//! the next boot (which starts the file afresh).

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use banger_client::DaemonClient;
use clap::Args;

#[derive(Args)]
pub struct LogsArgs {
    vm: String,
    /// Keep printing what is written, until interrupted
    #[arg(long, short)]
    follow: bool,
    /// The VMM's own log (QEMU's output, Firecracker's logger) instead of the console
    #[arg(long)]
    vmm: bool,
    /// Only the last N lines (then follow, with --follow)
    #[arg(long, short = 'n', value_name = "N")]
    lines: Option<usize>,
}

pub async fn run(client: &DaemonClient, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let vm = client.get_vm(&args.vm).await?;
    let path = if args.vmm {
        vm.vmm_log()
    } else {
        vm.console_log()
    };
    let mut out = std::io::stdout().lock();
    let mut offset = match args.lines {
        Some(n) => {
            for line in banger_api::files::tail_file(&path, n) {
                writeln!(out, "{line}")?;
            }
            std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        }
        None => copy_from(&path, 0, &mut out)?,
    };
    if !args.follow {
        if !path.exists() {
            eprintln!(
                "{} has no {} yet ({})",
                vm.name,
                what(args.vmm),
                path.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut inode = inode_of(&path);
    loop {
        out.flush()?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = inode_of(&path);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if now != inode || len < offset {
            // A new boot started the file afresh (the old one is `.1`).
            inode = now;
            offset = 0;
        }
        offset = copy_from(&path, offset, &mut out)?;
    }
}

fn what(vmm: bool) -> &'static str {
    if vmm {
        "VMM log"
    } else {
        "console output"
    }
}

fn inode_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Copies `path` from `offset` to its end into `out`, in pieces (a console
/// log can be large); returns the new offset. A missing file is empty.
fn copy_from(path: &Path, offset: u64, out: &mut impl Write) -> std::io::Result<u64> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(offset);
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut buffer = [0u8; 64 * 1024];
    let mut at = offset;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(at);
        }
        out.write_all(&buffer[..n])?;
        at += u64::try_from(n).unwrap_or(u64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_continue_from_where_they_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        assert_eq!(
            copy_from(&path, 0, &mut Vec::new()).unwrap(),
            0,
            "missing is empty"
        );
        std::fs::write(&path, "one\n").unwrap();
        let mut out = Vec::new();
        let at = copy_from(&path, 0, &mut out).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"two\n")
            .unwrap();
        let at = copy_from(&path, at, &mut out).unwrap();
        assert_eq!((out.as_slice(), at), (b"one\ntwo\n".as_slice(), 8));
    }
}
