//! `banger daemon ...`

use std::process::ExitCode;
use std::time::Duration;

use banger_api::paths::Paths;
use clap::Subcommand;

use crate::autostart;
use crate::output;

#[derive(Subcommand)]
pub enum DaemonCommand {
    /// PID, socket, log and DNS address of the daemon (starting it if needed)
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Print the daemon's socket path
    Socket,
    /// Stop the daemon; running VMs keep running
    Stop,
}

pub async fn run(cmd: DaemonCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DaemonCommand::Status { json } => {
            let status = autostart::connect().await?.status().await?;
            if json {
                output::json(&status);
            } else {
                println!("pid       {}", status.pid);
                println!("version   {}", status.version);
                println!("socket    {}", status.socket.display());
                println!("log       {}", status.log.display());
                match &status.dns_error {
                    None => println!("dns       {} (udp+tcp, zone .vm)", status.dns),
                    Some(e) => println!("dns       {} — not serving: {e}", status.dns),
                }
                println!(
                    "tap pool  {}/{} idle",
                    status.tap_pool_idle, status.tap_pool_size
                );
                println!("state     {}", status.state_dir.display());
                println!("vmm       {} ({})", status.vmm, status.accel);
            }
        }
        DaemonCommand::Socket => println!("{}", Paths::from_env().socket().display()),
        DaemonCommand::Stop => match autostart::existing().await? {
            None => println!("bangerd is not running"),
            Some(client) => {
                let pid = client.status().await?.pid;
                client.shutdown().await?;
                // Wait for the process to go so a following start is clean.
                for _ in 0..100 {
                    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                println!("bangerd stopped (pid {pid}); running VMs keep running");
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
