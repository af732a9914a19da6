//! `banger vm cp SRC DEST`: files and directories between the host and a
//! VM (`NAME:PATH` on the VM's side), either way, as a tar stream through
//! the guest agent: nothing is held in memory whole, modes and symlinks
//! are kept, and an archive from the guest cannot write outside the
//! destination (`..`, absolute paths or links are refused).

use std::io::{IsTerminal, Read};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use banger_client::agent::{self, AgentClient};
use banger_client::{transfer, DaemonClient};
use bytes::Bytes;
use clap::Args;

use crate::output;

#[derive(Args)]
pub struct CopyArgs {
    /// A host path, or NAME:PATH in a VM
    source: String,
    /// A host path, or NAME:PATH in a VM (the other side of SOURCE)
    dest: String,
    /// Print a JSON summary (bytes, files, seconds)
    #[arg(long)]
    json: bool,
}

/// One side of a copy.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    Host(PathBuf),
    Guest { vm: String, path: String },
}

/// `NAME:PATH` is a VM's; a path starting with `/` or `.`, or without a
/// colon, is the host's.
pub fn parse_end(s: &str) -> End {
    if s.starts_with('/') || s.starts_with('.') {
        return End::Host(PathBuf::from(s));
    }
    match s.split_once(':') {
        Some((vm, path)) if !vm.is_empty() => End::Guest {
            vm: vm.to_string(),
            path: if path.is_empty() {
                ".".into()
            } else {
                path.into()
            },
        },
        _ => End::Host(PathBuf::from(s)),
    }
}

#[derive(serde::Serialize)]
struct Summary {
    from: String,
    to: String,
    bytes: u64,
    files: u64,
    seconds: f64,
}

pub async fn run(client: &DaemonClient, args: CopyArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (bytes, files) = match (parse_end(&args.source), parse_end(&args.dest)) {
        (End::Host(src), End::Guest { vm, path }) => {
            let agent = agent_of(client, &vm).await?;
            to_guest(&agent, &src, &path).await?
        }
        (End::Guest { vm, path }, End::Host(dest)) => {
            let agent = agent_of(client, &vm).await?;
            from_guest(&agent, &path, &dest).await?
        }
        _ => bail!("one side must be a VM's (NAME:PATH) and the other the host's"),
    };
    let summary = Summary {
        from: args.source,
        to: args.dest,
        bytes,
        files,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        output::json(&summary);
    } else {
        println!(
            "copied {} in {files} file(s) in {:.1}s",
            banger_api::format_size(bytes),
            summary.seconds
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn agent_of(client: &DaemonClient, vm: &str) -> anyhow::Result<AgentClient> {
    let vm = super::guest::running(client, vm).await?;
    Ok(agent::for_vm(&vm))
}

/// Runs `argv` in the guest (see [`transfer::run`]).
pub(super) async fn guest(
    agent: &AgentClient,
    argv: &[&str],
    stdin: tokio::sync::mpsc::Receiver<Bytes>,
    on_stdout: &mut (dyn FnMut(Vec<u8>) -> bool + Send),
) -> anyhow::Result<()> {
    Ok(transfer::run(agent, argv, stdin, on_stdout).await?)
}

pub(super) fn no_input() -> tokio::sync::mpsc::Receiver<Bytes> {
    transfer::no_input()
}

/// A progress bar over bytes, on a terminal only.
fn progress(total: Option<u64>) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("a valid template"),
    );
    bar
}

/// Bytes and regular files under `path` (for the progress bar).
fn measure(path: &Path) -> (u64, u64) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return (0, 0);
    };
    if !meta.is_dir() {
        return (meta.len(), u64::from(meta.is_file()));
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| measure(&e.path()))
                .fold((0, 0), |(b, f), (b2, f2)| (b + b2, f + f2))
        })
        .unwrap_or((0, 0))
}

/// Host → guest. Like `cp -r`: into DEST when it is a directory, else as DEST.
async fn to_guest(agent: &AgentClient, src: &Path, dest: &str) -> anyhow::Result<(u64, u64)> {
    let meta =
        std::fs::symlink_metadata(src).with_context(|| format!("cannot read {}", src.display()))?;
    let mut is_dir = Vec::new();
    guest(
        agent,
        &["sh", "-c", "[ -d \"$1\" ] && echo dir || true", "sh", dest],
        no_input(),
        &mut |out| {
            is_dir.extend(out);
            true
        },
    )
    .await?;
    let base = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let (dir, name) = if is_dir.starts_with(b"dir") {
        (dest.to_string(), base)
    } else {
        let d = Path::new(dest);
        let parent = d
            .parent()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".into());
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(base);
        (parent, name)
    };
    let (total, files) = measure(src);
    let src = src.to_path_buf();
    let sent = push_tar(agent, &dir, Some(total), move |tar| {
        if meta.is_dir() {
            tar.append_dir_all(&name, &src)
        } else {
            tar.append_path_with_name(&src, &name)
        }
    })
    .await?;
    Ok((sent, files))
}

/// Streams an archive into the guest directory `dir` (see
/// [`transfer::push`]), with a progress bar over `total` bytes.
pub(super) async fn push_tar(
    agent: &AgentClient,
    dir: &str,
    total: Option<u64>,
    build: impl FnOnce(&mut tar::Builder<transfer::ChannelWriter>) -> std::io::Result<()>
        + Send
        + 'static,
) -> anyhow::Result<u64> {
    let bar = progress(total);
    let counter = bar.clone();
    let sent = transfer::push(agent, dir, Arc::new(move |n| counter.inc(n)), build).await;
    bar.finish_and_clear();
    Ok(sent?)
}

/// Guest → host. Like `cp -r`: into DEST when it is a directory, else as DEST.
async fn from_guest(agent: &AgentClient, src: &str, dest: &Path) -> anyhow::Result<(u64, u64)> {
    let src_path = Path::new(src);
    let name = src_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("name a file or directory in the guest, not its root")?;
    let parent = src_path
        .parent()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".into());
    // Into an existing directory, or as a new name beside where DEST goes.
    let (root, rename) = if dest.is_dir() {
        (dest.to_path_buf(), None)
    } else {
        let root = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        (root, Some(dest.to_path_buf()))
    };
    let staging = match &rename {
        Some(_) => tempfile::Builder::new()
            .prefix(".banger-cp-")
            .tempdir_in(&root)
            .with_context(|| format!("cannot write into {}", root.display()))?
            .keep(),
        None => root.clone(),
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let bar = progress(None);
    let unpack_root = staging.clone();
    let unpacker = std::thread::spawn(move || {
        unpack(
            ChannelReader {
                rx,
                pending: Vec::new(),
                at: 0,
            },
            &unpack_root,
            &name,
        )
    });
    let received = Arc::new(AtomicU64::new(0));
    let counted = received.clone();
    let progress_bar = bar.clone();
    let result = guest(
        agent,
        &[
            "tar",
            "-c",
            "-f",
            "-",
            "-C",
            &parent,
            "--",
            src_path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default(),
        ],
        no_input(),
        &mut |chunk| {
            let n = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
            counted.fetch_add(n, Ordering::SeqCst);
            progress_bar.inc(n);
            tx.send(chunk).is_ok()
        },
    )
    .await;
    drop(tx);
    let unpacked = unpacker.join().expect("the unpacker does not panic");
    bar.finish_and_clear();
    let outcome = result.and(unpacked).and_then(|files| {
        if let Some(final_path) = &rename {
            let top = staging.join(src_path.file_name().expect("checked above"));
            std::fs::rename(&top, final_path)
                .with_context(|| format!("cannot move the copy to {}", final_path.display()))?;
        }
        Ok(files)
    });
    if rename.is_some() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok((received.load(Ordering::SeqCst), outcome?))
}

/// Unpacks a guest's archive under `root`: every member must be inside
/// `name` (the copied file or directory), with no `..`, no absolute path,
/// and no link pointing outside it. Returns the regular files written.
fn unpack(reader: impl Read, root: &Path, name: &str) -> anyhow::Result<u64> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    let mut files = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        check_member(&path, name)?;
        if let Some(target) = entry.link_name()? {
            check_link(&path, &target)?;
        }
        if entry.header().entry_type().is_file() {
            files += 1;
        }
        if !entry.unpack_in(root)? {
            bail!(
                "refused {}: it would land outside {}",
                path.display(),
                root.display()
            );
        }
    }
    Ok(files)
}

fn check_member(path: &Path, name: &str) -> anyhow::Result<()> {
    let mut parts = path.components().filter(|c| *c != Component::CurDir);
    let inside = parts.next() == Some(Component::Normal(name.as_ref()))
        && parts.all(|c| matches!(c, Component::Normal(_)));
    if !inside {
        bail!(
            "refused archive member {}: outside the copied {name}",
            path.display()
        );
    }
    Ok(())
}

/// A link's target, resolved from its directory, must stay inside what is copied.
fn check_link(path: &Path, target: &Path) -> anyhow::Result<()> {
    if target.is_absolute() {
        bail!(
            "refused {}: an absolute link ({})",
            path.display(),
            target.display()
        );
    }
    let mut depth: i64 = i64::try_from(path.components().count()).unwrap_or(i64::MAX) - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 1 {
            bail!(
                "refused {}: its link ({}) leaves the copy",
                path.display(),
                target.display()
            );
        }
    }
    Ok(())
}

/// Reads the chunks the guest sends, in order.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.pending.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.pending = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_are_a_vms_or_the_hosts() {
        assert_eq!(
            parse_end("calm-otter:/root/data"),
            End::Guest {
                vm: "calm-otter".into(),
                path: "/root/data".into()
            }
        );
        assert_eq!(parse_end("./a:b"), End::Host("./a:b".into()));
        assert_eq!(parse_end("/tmp/x"), End::Host("/tmp/x".into()));
        assert_eq!(parse_end("data"), End::Host("data".into()));
        assert_eq!(
            parse_end("vm:"),
            End::Guest {
                vm: "vm".into(),
                path: ".".into()
            }
        );
    }

    /// A tar archive with the given (path, link target) members.
    fn archive(members: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, link) in members {
            let mut header = tar::Header::new_gnu();
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            match link {
                Some(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_link_name(target).unwrap();
                    header.set_size(0);
                }
                None => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(2);
                }
            }
            header.set_mode(0o644);
            header.set_cksum();
            out.extend_from_slice(header.as_bytes());
            if link.is_none() {
                let mut block = [0u8; 512];
                block[..2].copy_from_slice(b"hi");
                out.extend_from_slice(&block);
            }
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    #[test]
    fn an_archive_cannot_write_outside_what_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let good = archive(&[
            ("data/a", None),
            ("data/link", Some("a")),
            ("data/sub/up", Some("../a")),
        ]);
        assert_eq!(unpack(good.as_slice(), dir.path(), "data").unwrap(), 1);
        assert_eq!(std::fs::read(dir.path().join("data/a")).unwrap(), b"hi");
        for (members, why) in [
            (archive(&[("data/../x", None)]), "outside"),
            (archive(&[("other/x", None)]), "outside"),
            (archive(&[("/etc/x", None)]), "outside"),
            (archive(&[("data/l", Some("/etc/passwd"))]), "absolute link"),
            (archive(&[("data/l", Some("../../etc"))]), "leaves the copy"),
        ] {
            let err = unpack(members.as_slice(), dir.path(), "data").unwrap_err();
            assert!(err.to_string().contains(why), "{err}");
        }
        assert!(!dir.path().join("x").exists());
    }
}
