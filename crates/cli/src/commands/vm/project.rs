//! `banger vm run DIR [-- CMD]`: a VM with a project in it, in one command.
//! The project's git-tracked files (with --include-untracked, untracked
//! ones too, never ignored ones; every file of a directory outside git) go
//! to `/root/<dir name>`, which becomes a git repository whose first commit
//! is that copy (`vm export` diffs against it). Then the command runs
//! there, its output streaming and its exit code banger's; without one, a
//! shell opens there. `--rm` deletes the VM afterwards, whatever happened.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use banger_api::agent::ExecRequest;
use banger_api::CreateVmRequest;
use banger_client::DaemonClient;
use clap::Args;

use super::copy::{agent_of, guest, no_input, push_tar};
use crate::output::ProgressView;

#[derive(Args)]
pub struct RunArgs {
    /// The project directory
    dir: PathBuf,
    /// Delete the VM afterwards (on success, failure and Ctrl-C)
    #[arg(long, conflicts_with = "detach")]
    rm: bool,
    /// Leave the VM running and return
    #[arg(long, short)]
    detach: bool,
    /// The VM's name (default: run-<adjective>-<animal>)
    #[arg(long)]
    name: Option<String>,
    /// Copy untracked files too (never ignored ones)
    #[arg(long)]
    include_untracked: bool,
    /// NAT for the guest (mise install needs the network)
    #[arg(long)]
    nat: bool,
    #[arg(long)]
    image: Option<String>,
    #[arg(long)]
    memory: Option<u32>,
    #[arg(long)]
    vcpu: Option<u32>,
    #[arg(long)]
    disk_size: Option<String>,
    /// The command, after `--`
    #[arg(last = true)]
    command: Vec<String>,
}

/// The files of a project, relative to it, and the commit they came from.
pub struct Project {
    pub files: Vec<PathBuf>,
    pub commit: Option<String>,
}

fn git(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// What `vm run` copies of `dir`.
pub fn project(dir: &Path, untracked: bool) -> anyhow::Result<Project> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory: vm run takes a project directory (use `banger vm cp` for files)",
            dir.display()
        );
    }
    let mut args = vec!["ls-files", "-z", "--cached"];
    if untracked {
        args.extend(["--others", "--exclude-standard"]);
    }
    let Some(listed) = git(dir, &args) else {
        // Not in git: every file but a .git of its own.
        let mut files = Vec::new();
        walk(dir, Path::new(""), &mut files)?;
        return Ok(Project {
            files,
            commit: None,
        });
    };
    let files = listed
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| PathBuf::from(String::from_utf8_lossy(f).into_owned()))
        // A tracked file deleted in the work tree is not copied.
        .filter(|f| dir.join(f).symlink_metadata().is_ok())
        .collect();
    let commit = git(dir, &["rev-parse", "HEAD"])
        .map(|out| String::from_utf8_lossy(&out).trim().to_string())
        .filter(|c| !c.is_empty());
    Ok(Project { files, commit })
}

fn walk(root: &Path, rel: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let path = rel.join(entry.file_name());
        if entry.file_name() == ".git" {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(root, &path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

pub async fn run(client: &DaemonClient, args: RunArgs) -> anyhow::Result<ExitCode> {
    let dir = std::path::absolute(&args.dir)?;
    let project = project(&dir, args.include_untracked)?;
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("run a named directory, not /")?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("run-{}", banger_api::names::generated_name(rand::random())));
    let mut view = ProgressView::new();
    let request = CreateVmRequest {
        name: Some(name.clone()),
        image: args.image.clone(),
        vcpu: args.vcpu,
        memory_mib: args.memory,
        disk_size: args.disk_size.clone(),
        nat: args.nat,
        cold: false,
    };
    // With --rm, Ctrl-C is banger's from here on: a create under way is
    // let finish (the daemon would finish it anyway) and then deleted.
    let mut interrupted = false;
    let created = {
        let mut on_progress = |p: &banger_api::Progress| view.update(p);
        let create = client.create_vm(&request, &mut on_progress);
        tokio::pin!(create);
        tokio::select! {
            created = &mut create => created,
            _ = tokio::signal::ctrl_c(), if args.rm => {
                interrupted = true;
                eprintln!("\nbanger: interrupted; {name} is deleted once its create ends");
                create.await
            }
        }
    };
    view.finish();
    let vm = match created {
        Ok(vm) => vm,
        Err(err) => {
            // A lost daemon connection may leave a VM behind: remove it.
            if args.rm {
                remove(&name, true).await;
            }
            return Err(err.into());
        }
    };
    if interrupted {
        remove(&vm.name, false).await;
        return Ok(ExitCode::from(130));
    }
    let commanding = AtomicBool::new(false);
    let work = inside(client, &args, &vm.name, &dir, &base, project, &commanding);
    tokio::pin!(work);
    let outcome = tokio::select! {
        outcome = &mut work => outcome,
        // The command's own Ctrl-C ends it in the guest (exit 130); before
        // it runs (the copy, git, mise), Ctrl-C stops there.
        _ = tokio::signal::ctrl_c(), if args.rm => {
            if commanding.load(Ordering::SeqCst) {
                work.await
            } else {
                eprintln!("\nbanger: interrupted");
                Ok(ExitCode::from(130))
            }
        }
    };
    if args.rm {
        remove(&vm.name, false).await;
    }
    outcome
}

/// `--rm`'s delete, on a fresh connection (the old one may be what failed).
/// `quiet_if_absent`: after a failed create, the VM may never have existed.
async fn remove(name: &str, quiet_if_absent: bool) {
    let deleted = match crate::autostart::connect().await {
        Ok(client) => client
            .delete_vm(name, true)
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    match deleted {
        Ok(_) => eprintln!("deleted {name}"),
        Err(e)
            if quiet_if_absent
                && e.downcast_ref::<banger_client::ClientError>()
                    .and_then(|c| c.api())
                    .is_some_and(|api| api.code == banger_api::ErrorCode::NotFound) => {}
        Err(e) => eprintln!("banger: cannot delete {name}: {e}"),
    }
}

/// Everything after the create: copy, baseline, tools, the command.
async fn inside(
    client: &DaemonClient,
    args: &RunArgs,
    name: &str,
    dir: &Path,
    base: &str,
    project: Project,
    commanding: &AtomicBool,
) -> anyhow::Result<ExitCode> {
    let agent = agent_of(client, name).await?;
    let guest_dir = format!("/root/{base}");
    let count = project.files.len();
    let (host_dir, prefix, files) = (dir.to_path_buf(), base.to_string(), project.files.clone());
    push_tar(&agent, "/root", None, move |tar| {
        for file in &files {
            tar.append_path_with_name(host_dir.join(file), Path::new(&prefix).join(file))?;
        }
        Ok(())
    })
    .await
    .context("cannot copy the project into the VM")?;
    let copied_from = project
        .commit
        .as_deref()
        .map(|c| format!("commit {c}"))
        .unwrap_or_else(|| "a directory outside git".into());
    let message = format!(
        "banger: {count} files copied from {} ({copied_from})",
        dir.display()
    );
    let baseline = "mkdir -p -- \"$1\" && cd \"$1\" && git init -q && git add -A && \
        git -c user.name=banger -c user.email=banger@localhost commit -q --allow-empty -m \"$2\" && \
        printf %s \"$1\" > /root/.banger-run";
    guest(
        &agent,
        &["sh", "-c", baseline, "sh", &guest_dir, &message],
        no_input(),
        &mut |_| true,
    )
    .await
    .context("cannot record the copy in the guest (git)")?;
    eprintln!("{name}: {count} files at {guest_dir} ({copied_from})");
    let uses_mise = project
        .files
        .iter()
        .any(|f| f == Path::new(".mise.toml") || f == Path::new(".tool-versions"));
    if uses_mise {
        if args.nat {
            let mise = ExecRequest {
                argv: ["sh", "-c", "mise trust -q . && mise install"]
                    .map(String::from)
                    .to_vec(),
                env: Vec::new(),
                cwd: Some(guest_dir.clone()),
            };
            super::guest::run_command(client, name, mise, false).await?;
        } else {
            eprintln!("banger: the project pins tools (mise) but the VM has no network: run with --nat to install them");
        }
    }
    if args.detach {
        println!("{name} is running; the project is at {guest_dir}: banger vm ssh {name}");
        return Ok(ExitCode::SUCCESS);
    }
    if args.command.is_empty() {
        let target = client.ssh_target(name).await?;
        let mut ssh = std::process::Command::new("ssh");
        ssh.arg("-t").args(target.ssh_args()).arg(format!(
            "cd {} && exec bash -l",
            shlex::try_quote(&guest_dir).context("a NUL in the directory name")?
        ));
        let code = banger_tui::foreground::run_foreground(ssh)
            .context("cannot run ssh (apt-get install openssh-client)")?;
        return Ok(ExitCode::from(code));
    }
    let request = ExecRequest {
        argv: args.command.clone(),
        env: Vec::new(),
        cwd: Some(guest_dir),
    };
    commanding.store(true, Ordering::SeqCst);
    super::guest::run_command(client, name, request, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, script: &str) {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "{script}");
    }

    #[test]
    fn tracked_files_go_untracked_only_when_asked_ignored_never() {
        let dir = tempfile::tempdir().unwrap();
        sh(
            dir.path(),
            "git init -q && printf 'ignored.txt\\n' > .gitignore && echo a > tracked.txt && \
             mkdir sub && echo b > sub/deep.txt && git add . && \
             git -c user.name=t -c user.email=t@t commit -qm one && \
             echo c > untracked.txt && echo d > ignored.txt",
        );
        let names = |p: Project| {
            let mut v: Vec<String> = p.files.iter().map(|f| f.display().to_string()).collect();
            v.sort();
            v
        };
        let tracked = project(dir.path(), false).unwrap();
        assert!(tracked.commit.as_deref().is_some_and(|c| c.len() == 40));
        assert_eq!(
            names(tracked),
            [".gitignore", "sub/deep.txt", "tracked.txt"]
        );
        assert_eq!(
            names(project(dir.path(), true).unwrap()),
            [".gitignore", "sub/deep.txt", "tracked.txt", "untracked.txt"]
        );
        let file = dir.path().join("tracked.txt");
        let err = project(&file, false).err().unwrap().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
