//! `banger vm ...`: one file per group of subcommands.
//!
//! - [`create`] — create
//! - [`inspect`] — list, show, stats
//! - [`ssh`] — an interactive shell or a command over SSH
//! - [`guest`] — exec and ports, through the guest agent
//! - [`power`] — start, restart, stop, kill, delete (several VMs at once)
//! - [`set`] — change a VM's shape or NAT
//! - [`logs`] — the guest console or the VMM's log, followed

mod clone;
mod copy;
mod create;
mod export;
mod forward;
mod guest;
mod inspect;
mod logs;
mod power;
mod project;
mod prune;
mod set;
mod ssh;
mod suspend;

use std::process::ExitCode;

use clap::Subcommand;

use crate::autostart;

#[derive(Subcommand)]
pub enum VmCommand {
    /// Create a VM and boot it
    Create(create::CreateArgs),
    /// List VMs
    #[command(alias = "ls")]
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show every field of a VM
    Show {
        /// VM name or id prefix
        vm: String,
        #[arg(long)]
        json: bool,
    },
    /// Open a shell in a VM, or run a command given after `--`
    Ssh {
        vm: String,
        /// Command and arguments to run instead of a shell
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Run a command in a VM through its agent (no SSH): stdin, stdout,
    /// stderr and the exit code behave like a local command's
    Exec(guest::ExecArgs),
    /// What listens in a VM, as endpoints the host can use (web servers as URLs)
    Ports {
        vm: String,
        #[arg(long)]
        json: bool,
    },
    /// The guest's console output (kernel and boot messages), or with
    /// --vmm the VMM's own log; -f follows it
    Logs(logs::LogsArgs),
    /// Forward a host port to a guest port: GUEST or HOST:GUEST, TCP (or
    /// --udp), loopback unless --address; kept across restarts; --remove HOST
    Forward(forward::ForwardArgs),
    /// Delete VMs stopped for longer than --stopped-for (default 7d)
    Prune(prune::PruneArgs),
    /// A VM with a project directory's files at /root/<dir>, the command
    /// after `--` run there (or a shell); --rm deletes it afterwards
    Run(project::RunArgs),
    /// What changed in a `vm run` project since it was copied, as a patch
    /// for `git apply`
    Export(export::ExportArgs),
    /// Copy files and directories between the host and a VM (NAME:PATH),
    /// either way; modes and symlinks kept
    Cp(copy::CopyArgs),
    /// Copy config.toml's [[file_sync]] files into a running VM again
    Sync { vm: String },
    /// A new VM with a stopped VM's files (system changes and /root) and
    /// its own name, address, MAC, host key and machine-id
    Clone(clone::CloneArgs),
    /// Save VMs' memory and device state to disk and stop their VMMs:
    /// every process is there again after `vm resume`, a daemon restart or a reboot
    Suspend {
        #[arg(required = true)]
        vms: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Continue suspended VMs where they were (`vm start` does it too)
    Resume {
        #[arg(required = true)]
        vms: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Start stopped VMs (a suspended one is resumed)
    Start {
        #[arg(required = true)]
        vms: Vec<String>,
    },
    /// Stop and start VMs
    Restart {
        #[arg(required = true)]
        vms: Vec<String>,
    },
    /// Send a signal to VMs' VMM processes
    Kill {
        /// TERM, KILL, INT, HUP, ... (with or without SIG)
        #[arg(long, short, default_value = "TERM")]
        signal: String,
        #[arg(required = true)]
        vms: Vec<String>,
    },
    /// Resource use: VMM CPU and memory, disk usage, and the guest's own figures
    Stats {
        vm: String,
        #[arg(long)]
        json: bool,
    },
    /// Change stopped VMs: memory, vCPUs, work disk size (grow only); NAT any time
    Set(set::SetArgs),
    /// Stop VMs (graceful guest shutdown, then escalate)
    Stop {
        #[arg(required = true)]
        vms: Vec<String>,
        /// Kill the VMM instead of asking the guest to shut down (of a
        /// suspended VM: discard its saved state)
        #[arg(long)]
        force: bool,
    },
    /// Delete VMs: process, TAP device, overlay and work disk (the image stays)
    #[command(alias = "rm")]
    Delete {
        #[arg(required = true)]
        vms: Vec<String>,
        /// Kill a running VM instead of shutting it down gracefully
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(cmd: VmCommand) -> anyhow::Result<ExitCode> {
    let client = autostart::connect().await?;
    match cmd {
        VmCommand::Create(args) => create::run(&client, args).await,
        VmCommand::List { json } => inspect::list(&client, json).await,
        VmCommand::Show { vm, json } => inspect::show(&client, &vm, json).await,
        VmCommand::Stats { vm, json } => inspect::stats(&client, &vm, json).await,
        VmCommand::Ssh { vm, command } => ssh::run(&client, &vm, &command).await,
        VmCommand::Exec(args) => guest::exec(&client, args).await,
        VmCommand::Ports { vm, json } => guest::ports(&client, &vm, json).await,
        VmCommand::Logs(args) => logs::run(&client, args).await,
        VmCommand::Prune(args) => prune::run(&client, args).await,
        VmCommand::Forward(args) => forward::run(&client, args).await,
        VmCommand::Cp(args) => copy::run(&client, args).await,
        VmCommand::Run(args) => project::run(&client, args).await,
        VmCommand::Export(args) => export::run(&client, args).await,
        VmCommand::Sync { vm } => {
            let warnings = client.sync_vm(&vm).await?;
            for warning in &warnings {
                eprintln!("banger: {warning}");
            }
            println!("{vm}: file_sync done");
            Ok(ExitCode::SUCCESS)
        }
        VmCommand::Clone(args) => clone::run(&client, args).await,
        VmCommand::Suspend { vms, json } => suspend::suspend(&client, vms, json).await,
        VmCommand::Resume { vms, json } => suspend::resume(&client, vms, json).await,
        VmCommand::Start { vms } => power::boot_each(&client, vms, false).await,
        VmCommand::Restart { vms } => power::boot_each(&client, vms, true).await,
        VmCommand::Kill { signal, vms } => power::kill(&client, vms, signal).await,
        VmCommand::Stop { vms, force } => power::stop(&client, vms, force).await,
        VmCommand::Delete { vms, force } => power::delete(&client, vms, force).await,
        VmCommand::Set(args) => set::run(&client, args).await,
    }
}
