//! `banger vm ...`

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use anyhow::{bail, Context};
use banger_api::agent::ExecRequest;
use banger_api::{format_size, CreateVmRequest, KillRequest, UpdateVmRequest, Vm, VmStats};
use banger_client::DaemonClient;
use clap::{Args, Subcommand};

use crate::autostart;
use crate::output::{self, ProgressView};

#[derive(Subcommand)]
pub enum VmCommand {
    /// Create a VM and boot it
    Create(CreateArgs),
    /// List VMs
    #[command(alias = "ls")]
    List(JsonFlag),
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
    Exec {
        vm: String,
        /// Set an environment variable (KEY=VALUE); repeatable
        #[arg(long, short, value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// Working directory in the guest
        #[arg(long)]
        cwd: Option<String>,
        /// Give the command no input (as `ssh -n`): for running in the background
        #[arg(long, short = 'n')]
        no_stdin: bool,
        /// The command and its arguments, after `--`
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// What listens in a VM, as endpoints the host can use (web servers as URLs)
    Ports {
        vm: String,
        #[arg(long)]
        json: bool,
    },
    /// Start stopped VMs
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
    Set {
        #[arg(required = true)]
        vms: Vec<String>,
        /// Memory in MiB
        #[arg(long)]
        memory: Option<u32>,
        #[arg(long)]
        vcpu: Option<u32>,
        /// New /root disk size, e.g. 32G (it only grows)
        #[arg(long)]
        disk_size: Option<String>,
        #[arg(long, conflicts_with = "no_nat")]
        nat: bool,
        #[arg(long)]
        no_nat: bool,
    },
    /// Stop VMs (graceful guest shutdown, then escalate)
    Stop {
        #[arg(required = true)]
        vms: Vec<String>,
        /// Kill the VMM instead of asking the guest to shut down
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

#[derive(Args)]
pub struct JsonFlag {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CreateArgs {
    /// Name (lowercase letters, digits, '-'); generated when absent
    #[arg(long)]
    name: Option<String>,
    /// Image to boot (default: the `default` image, built on first use)
    #[arg(long)]
    image: Option<String>,
    /// Size of the persistent /root disk, e.g. 16G
    #[arg(long)]
    disk_size: Option<String>,
    /// Memory in MiB
    #[arg(long)]
    memory: Option<u32>,
    /// Number of vCPUs
    #[arg(long)]
    vcpu: Option<u32>,
    /// Give the guest NAT access to the host's network
    #[arg(long)]
    nat: bool,
    /// Print the created VM as JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(cmd: VmCommand) -> anyhow::Result<ExitCode> {
    let client = autostart::connect().await?;
    match cmd {
        VmCommand::Create(args) => {
            let request = CreateVmRequest {
                name: args.name,
                image: args.image,
                vcpu: args.vcpu,
                memory_mib: args.memory,
                disk_size: args.disk_size,
                nat: args.nat,
            };
            let mut view = ProgressView::new();
            let result = client.create_vm(&request, &mut |p| view.update(p)).await;
            view.finish();
            let vm = result?;
            if args.json {
                output::json(&vm);
            } else {
                println!(
                    "created {} ({}) at {}; enter it with: banger vm ssh {}",
                    vm.name, vm.id, vm.ip, vm.name
                );
            }
        }
        VmCommand::List(flag) => {
            let vms = client.list_vms().await?;
            if flag.json {
                output::json(&vms);
            } else {
                let rows: Vec<Vec<String>> = vms
                    .iter()
                    .map(|vm| {
                        vec![
                            vm.name.clone(),
                            vm.id.clone(),
                            vm.state.to_string(),
                            vm.image.clone(),
                            vm.ip.clone(),
                            vm.vcpu.to_string(),
                            format!("{}M", vm.memory_mib),
                            if vm.nat { "on" } else { "-" }.to_string(),
                            short_time(&vm.created_at),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "NAME", "ID", "STATE", "IMAGE", "IP", "VCPU", "MEM", "NAT", "CREATED",
                    ],
                    &rows,
                );
            }
        }
        VmCommand::Show { vm, json } => {
            let vm = client.get_vm(&vm).await?;
            if json {
                output::json(&vm);
            } else {
                show(&vm);
            }
        }
        VmCommand::Ssh { vm, command } => {
            let target = client.ssh_target(&vm).await?;
            let mut ssh = std::process::Command::new("ssh");
            ssh.args(["-i", &target.key_path])
                .args(["-o", "IdentitiesOnly=yes"])
                .args([
                    "-o",
                    &format!("UserKnownHostsFile={}", target.known_hosts_path),
                ])
                .args(["-o", "GlobalKnownHostsFile=/dev/null"])
                .args(["-o", "StrictHostKeyChecking=yes"])
                .args(["-o", &format!("HostKeyAlias={}", target.host_key_alias)])
                .args(["-o", "LogLevel=ERROR"])
                .args(["-o", "ConnectTimeout=10"])
                .args(["-o", "ServerAliveInterval=5"])
                .args(["-o", "ServerAliveCountMax=6"])
                .arg("--")
                .arg(format!("{}@{}", target.user, target.ip));
            if !command.is_empty() {
                ssh.arg(remote_command(&command)?);
                // Replace this process so the terminal, signals and exit code are ssh's.
                let err = ssh.exec();
                return Err(err).context("cannot run ssh (apt-get install openssh-client)");
            }
            // An interactive shell: wait for it, then remind that the VM runs on.
            let code = run_foreground(ssh)?;
            if code != 255 {
                if let Ok(vm) = client.get_vm(&vm).await {
                    super::guest::ssh_reminder(&vm.dir, &vm.name).await;
                }
            }
            return Ok(ExitCode::from(code));
        }
        VmCommand::Exec {
            vm,
            env,
            cwd,
            no_stdin,
            command,
        } => {
            let request = ExecRequest {
                argv: command,
                env,
                cwd,
            };
            return super::guest::exec(&client, &vm, request, !no_stdin).await;
        }
        VmCommand::Ports { vm, json } => {
            super::guest::ports(&client, &vm, json).await?;
        }
        VmCommand::Start { vms } => {
            return boot_each(&client, vms, false).await;
        }
        VmCommand::Restart { vms } => {
            return boot_each(&client, vms, true).await;
        }
        VmCommand::Kill { signal, vms } => {
            return each(vms, |r| {
                let client = client.clone();
                let request = KillRequest {
                    signal: signal.clone(),
                };
                async move {
                    client
                        .kill_vm(&r, &request)
                        .await
                        .map(|vm| format!("{}: signalled ({})", vm.name, vm.state))
                }
            })
            .await;
        }
        VmCommand::Stats { vm, json } => {
            let stats = client.vm_stats(&vm).await?;
            if json {
                output::json(&stats);
            } else {
                print_stats(&stats);
            }
        }
        VmCommand::Set {
            vms,
            memory,
            vcpu,
            disk_size,
            nat,
            no_nat,
        } => {
            let request = UpdateVmRequest {
                vcpu,
                memory_mib: memory,
                disk_size,
                nat: if nat {
                    Some(true)
                } else if no_nat {
                    Some(false)
                } else {
                    None
                },
            };
            if request == UpdateVmRequest::default() {
                bail!("nothing to change: pass --memory, --vcpu, --disk-size, --nat or --no-nat");
            }
            return each(vms, |r| {
                let client = client.clone();
                let request = request.clone();
                async move {
                    client.update_vm(&r, &request).await.map(|vm| {
                        format!(
                            "{}: {} vCPU, {} MiB, {} disk, NAT {}",
                            vm.name,
                            vm.vcpu,
                            vm.memory_mib,
                            format_size(vm.disk_size_bytes),
                            if vm.nat { "on" } else { "off" }
                        )
                    })
                }
            })
            .await;
        }
        VmCommand::Stop { vms, force } => {
            return each(vms, |r| {
                let client = client.clone();
                async move {
                    client
                        .stop_vm(&r, force)
                        .await
                        .map(|vm| format!("{}: stopped", vm.name))
                }
            })
            .await;
        }
        VmCommand::Delete { vms, force } => {
            return each(vms, |r| {
                let client = client.clone();
                async move {
                    client
                        .delete_vm(&r, force)
                        .await
                        .map(|vm| format!("{}: deleted", vm.name))
                }
            })
            .await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts (or restarts) VMs concurrently; one VM gets a progress bar.
async fn boot_each(
    client: &DaemonClient,
    vms: Vec<String>,
    restart: bool,
) -> anyhow::Result<ExitCode> {
    let verb = if restart { "restarted" } else { "running" };
    if let [reference] = vms.as_slice() {
        let mut view = ProgressView::new();
        let result = if restart {
            client.restart_vm(reference, &mut |p| view.update(p)).await
        } else {
            client.start_vm(reference, &mut |p| view.update(p)).await
        };
        view.finish();
        let vm = result?;
        println!("{}: {verb} at {}", vm.name, vm.ip);
        return Ok(ExitCode::SUCCESS);
    }
    each(vms, |r| {
        let client = client.clone();
        async move {
            let result = if restart {
                client.restart_vm(&r, &mut |_| {}).await
            } else {
                client.start_vm(&r, &mut |_| {}).await
            };
            result.map(|vm| format!("{}: {verb} at {}", vm.name, vm.ip))
        }
    })
    .await
}

/// Runs a terminal program in the foreground and returns its exit code.
/// While it runs, Ctrl-C and Ctrl-\ are its business, not this process's.
fn run_foreground(mut command: std::process::Command) -> anyhow::Result<u8> {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: only dispositions change; no handler code runs. The child
    // gets ours back before exec (ignored signals would be inherited), and
    // we get them back after.
    let (int, quit) = unsafe {
        (
            signal(Signal::SIGINT, SigHandler::SigIgn)?,
            signal(Signal::SIGQUIT, SigHandler::SigIgn)?,
        )
    };
    unsafe {
        command.pre_exec(move || {
            signal(Signal::SIGINT, int).map_err(std::io::Error::from)?;
            signal(Signal::SIGQUIT, quit).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let status = command.status();
    // SAFETY: as above.
    unsafe {
        signal(Signal::SIGINT, int)?;
        signal(Signal::SIGQUIT, quit)?;
    }
    let status = status.context("cannot run ssh (apt-get install openssh-client)")?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(255))
}

/// `--env KEY=VALUE`.
fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// Runs an action for each ref, reporting each; fails if any failed.
async fn each<F, Fut>(refs: Vec<String>, action: F) -> anyhow::Result<ExitCode>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, banger_client::ClientError>>,
{
    // Concurrently: the daemon serialises per VM, not across VMs.
    let results = futures::future::join_all(refs.iter().cloned().map(&action)).await;
    let mut failed = false;
    for (reference, result) in refs.iter().zip(results) {
        match result {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed = true;
                output::print_error(&anyhow::Error::new(e).context(reference.clone()));
            }
        }
    }
    if refs.is_empty() {
        bail!("no VM given");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// ssh hands the remote shell one string; quote each argument so the guest
/// runs exactly the argv the user typed, as a local command would.
fn remote_command(args: &[String]) -> anyhow::Result<String> {
    shlex::try_join(args.iter().map(String::as_str))
        .context("a command argument contains a NUL byte")
}

/// "2026-11-28T16:42:47.46Z" → "2026-11-28 16:42".
fn short_time(rfc3339: &str) -> String {
    rfc3339
        .get(..16)
        .map(|s| s.replacen('T', " ", 1))
        .unwrap_or_else(|| rfc3339.to_string())
}

fn print_stats(stats: &VmStats) {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("{:<9} {}", "name", stats.name);
    println!("{:<9} {}", "state", stats.state);
    println!("{:<9} {}", "pid", opt(stats.pid.map(|p| p.to_string())));
    println!(
        "{:<9} {}",
        "cpu",
        opt(stats.cpu_percent.map(|c| format!("{c:.1}% (VMM process)")))
    );
    println!(
        "{:<9} {}",
        "memory",
        opt(stats
            .rss_bytes
            .map(|b| format!("{} resident (VMM process)", format_size(b))))
    );
    println!(
        "{:<9} {}",
        "uptime",
        opt(stats
            .uptime_secs
            .map(|s| format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)))
    );
    println!(
        "{:<9} {} used of {}",
        "overlay",
        format_size(stats.overlay_used_bytes),
        format_size(stats.overlay_size_bytes)
    );
    println!(
        "{:<9} {} used of {}",
        "work",
        format_size(stats.work_used_bytes),
        format_size(stats.work_size_bytes)
    );
    if let Some(guest) = &stats.guest {
        println!("guest:");
        println!(
            "  {:<7} {:.2} {:.2} {:.2}",
            "load", guest.load[0], guest.load[1], guest.load[2]
        );
        println!(
            "  {:<7} {} used of {}",
            "memory",
            format_size(guest.memory_used_bytes()),
            format_size(guest.memory_total_bytes)
        );
        for disk in &guest.disks {
            println!(
                "  {:<7} {} used of {}",
                disk.path,
                format_size(disk.used_bytes),
                format_size(disk.total_bytes)
            );
        }
    } else if let Some(error) = &stats.guest_error {
        println!("guest:    no figures: {error}");
    }
}

fn show(vm: &Vm) {
    let fields: Vec<(&str, String)> = vec![
        ("name", vm.name.clone()),
        ("id", vm.id.clone()),
        ("state", vm.state.to_string()),
        ("image", vm.image.clone()),
        ("vmm", format!("{} ({})", vm.vmm, vm.accel)),
        ("vcpu", vm.vcpu.to_string()),
        ("memory", format!("{} MiB", vm.memory_mib)),
        (
            "disk",
            format!("{} (/root)", format_size(vm.disk_size_bytes)),
        ),
        (
            "overlay",
            format!("{} (/)", format_size(vm.overlay_size_bytes)),
        ),
        ("ip", vm.ip.clone()),
        ("dns", format!("{}.vm", vm.name)),
        ("mac", vm.mac.clone()),
        ("tap", vm.tap.clone()),
        ("nat", if vm.nat { "on".into() } else { "off".into() }),
        (
            "pid",
            vm.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
        ),
        ("created", vm.created_at.clone()),
        (
            "started",
            vm.started_at.clone().unwrap_or_else(|| "-".into()),
        ),
        ("dir", vm.dir.clone()),
    ];
    for (key, value) in fields {
        println!("{key:<9} {value}");
    }
    if let Some(reason) = &vm.stop_reason {
        println!("{:<9} {reason}", "stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::remote_command;

    #[test]
    fn remote_commands_keep_argument_boundaries() {
        // What the guest's shell makes of the string is what matters.
        let args: Vec<String> = ["sh", "-c", "echo a; echo 'b c' $HOME", "", "x\"y"]
            .map(String::from)
            .to_vec();
        let line = remote_command(&args).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {line}"))
            .output()
            .unwrap();
        let expected: String = args.iter().map(|a| format!("{a}\n")).collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
        assert_eq!(
            remote_command(&["cat".into(), "/etc/hostname".into()]).unwrap(),
            "cat /etc/hostname"
        );
    }
}
