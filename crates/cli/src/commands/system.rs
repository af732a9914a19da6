//! `banger system ...`: the root helper that lets the daemon run as you.
//! `install` and `uninstall` run as root (sudo); `status` as anyone.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use banger_helper::client::HelperNetwork;
use banger_helper::install::{Install, HELPER_UNIT};
use clap::Subcommand;

use crate::output;

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Install and start the root helper for USER (as root: sudo); the
    /// daemon then runs as that user. Run again to add another owner.
    Install {
        #[arg(long = "owner", required = true, value_name = "USER")]
        owners: Vec<String>,
        /// Write the files under DIR instead of / and start nothing (packaging)
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Stop and remove the root helper and what install added (VMs' disks stay)
    Uninstall {
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Whether the root helper answers, for whom, and the network it gives you
    Status {
        #[arg(long)]
        json: bool,
        /// The helper's socket (default: helper_socket in config.toml's default)
        #[arg(long)]
        socket: Option<PathBuf>,
    },
}

pub async fn run(cmd: SystemCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SystemCommand::Install { owners, root } => install(&owners, root.as_deref()),
        SystemCommand::Uninstall { root } => uninstall(root.as_deref()),
        SystemCommand::Status { json, socket } => status(json, socket).await,
    }
}

/// A binary of banger's, beside this one.
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} is missing: install banger's binaries together (`make install`)",
            path.display()
        );
    }
    Ok(path)
}

fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn systemctl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .context("cannot run systemctl")?;
    if !out.status.success() {
        bail!(
            "systemctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn require_root(what: &str) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("{what} changes the system: run it as root (sudo banger system {what} ...)");
    }
    Ok(())
}

fn install(owners: &[String], root: Option<&Path>) -> anyhow::Result<ExitCode> {
    if root.is_none() {
        require_root("install")?;
    }
    let mut resolved = Vec::new();
    for owner in owners {
        let uid = banger_helper::lease::uid_of(owner)
            .with_context(|| format!("no such user {owner:?}"))?;
        resolved.push((owner.clone(), uid));
    }
    let (helper, bangerd) = (sibling("banger-helper")?, sibling("bangerd")?);
    let install = Install {
        root: root.unwrap_or(Path::new("/")),
        helper: &helper,
        bangerd: &bangerd,
    };
    let manifest = install.install(&resolved)?;
    for line in manifest.subuid_lines.iter() {
        println!("added subordinate ids {line} (unprivileged image builds)");
    }
    let unit = install.root.join(HELPER_UNIT);
    println!("wrote {}", unit.display());
    let command = format!(
        "sudo {}{}",
        helper.display(),
        manifest
            .owners
            .iter()
            .map(|o| format!(" --owner {o}"))
            .collect::<String>()
    );
    if root.is_some() {
        return Ok(ExitCode::SUCCESS);
    }
    if systemd_runs() {
        systemctl(&["daemon-reload"])?;
        systemctl(&["enable", "banger-helper.service"])?;
        // A restart picks up an owner added to a running helper.
        systemctl(&["restart", "banger-helper.service"])?;
        println!(
            "banger-helper is running for {}",
            manifest.owners.join(", ")
        );
    } else {
        println!("systemd is not running here: start the helper yourself and keep it running:");
        println!("  {command}");
    }
    println!(
        "then, as {}: banger vm create --name calm-otter",
        manifest.owners.join(" or ")
    );
    println!("(optional: `systemctl --user enable --now bangerd` starts your daemon at login)");
    Ok(ExitCode::SUCCESS)
}

fn uninstall(root: Option<&Path>) -> anyhow::Result<ExitCode> {
    if root.is_none() {
        require_root("uninstall")?;
    }
    let (helper, bangerd) = (sibling("banger-helper")?, sibling("bangerd")?);
    let install = Install {
        root: root.unwrap_or(Path::new("/")),
        helper: &helper,
        bangerd: &bangerd,
    };
    if root.is_none() && systemd_runs() && install.root.join(HELPER_UNIT).exists() {
        systemctl(&["disable", "--now", "banger-helper.service"])?;
    }
    let manifest = install.uninstall()?;
    if root.is_none() {
        if systemd_runs() {
            systemctl(&["daemon-reload"])?;
        }
        for owner in &manifest.owners {
            if let Some(uid) = banger_helper::lease::uid_of(owner) {
                banger_helper::devices::revoke(uid);
            }
        }
    }
    println!(
        "removed the root helper for {}; VMs, images and their disks stay",
        if manifest.owners.is_empty() {
            "nobody".to_string()
        } else {
            manifest.owners.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

async fn status(json: bool, socket: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let socket = socket.unwrap_or_else(|| PathBuf::from(banger_helper::DEFAULT_SOCKET));
    let helper = HelperNetwork::new(socket.clone());
    let answer = helper.hello().await;
    let unit = Path::new("/").join(HELPER_UNIT);
    if json {
        let value = match &answer {
            Ok(w) => serde_json::json!({"socket": socket, "running": true, "welcome": w}),
            Err(e) => {
                serde_json::json!({"socket": socket, "running": false, "error": banger_api::error::chain(e), "hint": e.hint()})
            }
        };
        output::json(&value);
        return Ok(if answer.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if unit.exists() {
        println!("unit      {}", unit.display());
    }
    match answer {
        Ok(w) => {
            println!(
                "helper    running at {} (banger-helper {})",
                socket.display(),
                w.version
            );
            println!("owners    {}", w.owners.join(", "));
            println!(
                "you       uid {}: bridge {}, subnet {}",
                w.uid, w.bridge, w.subnet
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("helper    {}", banger_api::error::chain(&e));
            if let Some(hint) = e.hint() {
                println!("hint      {hint}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
