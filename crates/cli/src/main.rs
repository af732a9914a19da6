//! `banger`: manage persistent development VMs through `bangerd`.

mod autostart;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "banger",
    version,
    about = "Persistent development VMs",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, inspect, enter and manage VMs
    #[command(subcommand)]
    Vm(commands::vm::VmCommand),
    /// Build and list guest images
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Inspect or stop the daemon
    #[command(subcommand)]
    Daemon(commands::daemon::DaemonCommand),
    /// The runtime bundle: show, package, fetch
    #[command(subcommand)]
    Runtime(commands::runtime::RuntimeCommand),
    /// Every VM as an ssh_config Host block (NAME and NAME.vm); --install
    /// adds one Include line to ~/.ssh/config so plain `ssh NAME.vm` works
    SshConfig {
        #[arg(long, conflicts_with = "uninstall")]
        install: bool,
        /// Remove exactly the line --install added
        #[arg(long)]
        uninstall: bool,
    },
    /// The root helper that lets the daemon run as you: install, uninstall, status
    #[command(subcommand)]
    System(commands::system::SystemCommand),
    /// Check that this host can run banger: KVM, VMMs, tools, image, network, disk, daemon
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// The whole fleet at a glance: VMs, images, and the common actions one key away
    Tui,
    /// Print shell completions (bash, zsh, fish, ...)
    Completions { shell: clap_complete::Shell },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Tui = cli.command {
        return match commands::tui::run() {
            Ok(code) => code,
            Err(err) => {
                output::print_error(&err);
                ExitCode::FAILURE
            }
        };
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Vm(cmd) => commands::vm::run(cmd).await,
            Command::Image(cmd) => commands::image::run(cmd).await,
            Command::Daemon(cmd) => commands::daemon::run(cmd).await,
            Command::Doctor { json } => commands::doctor::run(json).await,
            Command::Runtime(cmd) => commands::runtime::run(cmd).await,
            Command::System(cmd) => commands::system::run(cmd).await,
            Command::SshConfig { install, uninstall } => {
                commands::ssh_config::run(install, uninstall).await
            }
            Command::Tui => unreachable!("handled above"),
            Command::Completions { shell } => {
                use clap::CommandFactory;
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "banger",
                    &mut std::io::stdout(),
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            output::print_error(&err);
            ExitCode::FAILURE
        }
    }
}
