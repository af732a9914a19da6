//! The commands that talk to a guest's agent: `vm ports` (through the
//! daemon, which probes for web servers), `vm exec` and the reminder after
//! `vm ssh` (straight to the VM's vsock socket: no daemon hop in the data
//! path, so exec streams with the latency of one local socket).

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use banger_api::agent::{ExecFrame, ExecRequest};
use banger_api::{ApiError, ErrorCode, Vm, VmState};
use banger_client::agent::{self, Unusable};
use banger_client::{ClientError, DaemonClient};
use base64::Engine;
use bytes::Bytes;
use clap::Args;

use crate::output;

#[derive(Args)]
pub struct ExecArgs {
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
}

/// `--env KEY=VALUE`.
fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// Exit code when the command could not be run at all (as ssh does).
const UNREACHABLE: u8 = 255;

pub async fn ports(client: &DaemonClient, vm: &str, json: bool) -> anyhow::Result<ExitCode> {
    let ports = client.vm_ports(vm).await?;
    if json {
        output::json(&ports);
        return Ok(ExitCode::SUCCESS);
    }
    if ports.is_empty() {
        println!("nothing in the guest listens on an address the host can reach");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = ports
        .iter()
        .map(|p| {
            vec![
                p.url.clone().unwrap_or_else(|| p.endpoint.clone()),
                p.web.clone().unwrap_or_else(|| p.listener.protocol.clone()),
                p.ip_endpoint.clone(),
                p.listener.process.clone().unwrap_or_else(|| "-".into()),
                p.listener.command.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let links: Vec<Option<String>> = ports.iter().map(|p| p.url.clone()).collect();
    output::linked_table(
        &["ENDPOINT", "PROTO", "IP", "PROCESS", "COMMAND"],
        &rows,
        &links,
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `argv` in the guest: stdin is streamed in, stdout and stderr come
/// back as they are written, and the exit code is the command's.
pub async fn exec(client: &DaemonClient, args: ExecArgs) -> anyhow::Result<ExitCode> {
    let request = ExecRequest {
        argv: args.command,
        env: args.env,
        cwd: args.cwd,
    };
    run_command(client, &args.vm, request, !args.no_stdin).await
}

/// Runs a command in a running VM as `vm exec` does: this process's stdin
/// (unless `with_stdin` is false), stdout and stderr; Ctrl-C ends it (130).
pub(super) async fn run_command(
    client: &DaemonClient,
    reference: &str,
    request: ExecRequest,
    with_stdin: bool,
) -> anyhow::Result<ExitCode> {
    let vm = running(client, reference).await?;
    let agent = agent::for_vm(&vm);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    // A plain thread, not a runtime task: a command that never reads its
    // input must not keep this process alive waiting on the terminal.
    std::thread::spawn(move || {
        if !with_stdin {
            return; // dropping `tx` is end of input
        }
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        break;
                    }
                }
            }
        }
    });
    // Ctrl-C ends the command in the guest too, then exits like it (130).
    let cancel = std::sync::Arc::new(tokio::sync::Notify::new());
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (cancel, interrupted) = (cancel.clone(), interrupted.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
                cancel.notify_one();
            }
        });
    }
    let mut write_failed = None;
    let result = agent
        .exec_streaming(
            &request,
            rx,
            &mut |frame| {
                let written = match frame {
                    ExecFrame::Stdout { data } => decode_to(data, &mut std::io::stdout()),
                    ExecFrame::Stderr { data } => decode_to(data, &mut std::io::stderr()),
                    ExecFrame::Error { message } => {
                        eprintln!("banger: {message}");
                        Ok(())
                    }
                    ExecFrame::Exit { .. } => Ok(()),
                };
                match written {
                    Ok(()) => true,
                    Err(e) => {
                        write_failed = Some(e);
                        false
                    }
                }
            },
            &cancel,
        )
        .await;
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(ExitCode::from(130));
    }
    match result {
        Ok(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
        // Our reader went away (`| head`): stop quietly, as a local command
        // killed by SIGPIPE would (128 + 13).
        Err(agent::AgentError::Stopped) => match write_failed {
            Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::from(141)),
            Some(e) => {
                eprintln!("banger: cannot write the command's output: {e}");
                Ok(ExitCode::from(UNREACHABLE))
            }
            None => Ok(ExitCode::from(UNREACHABLE)),
        },
        Err(e) => {
            // Say why: an image without the agent, or an agent not answering.
            let unusable = match client.get_image(&vm.image).await {
                Ok(image) if !image.agent => Unusable::NotInImage {
                    vm: vm.name.clone(),
                    image: image.name,
                },
                _ => Unusable::new(&vm.name, e),
            };
            output::print_failure(&unusable, Some(&unusable.hint()));
            Ok(ExitCode::from(UNREACHABLE))
        }
    }
}

fn decode_to(data: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(std::io::Error::other)?;
    out.write_all(&bytes)?;
    out.flush()
}

pub(super) async fn running(client: &DaemonClient, reference: &str) -> anyhow::Result<Vm> {
    let vm = client.get_vm(reference).await?;
    if vm.state != VmState::Running {
        let err = ApiError::new(
            ErrorCode::Conflict,
            format!(
                "VM {} is {}; commands run in running VMs",
                vm.name, vm.state
            ),
        )
        .with_hint(format!("start it with `banger vm start {}`", vm.name));
        return Err(ClientError::Api(err).into());
    }
    Ok(vm)
}

/// After an interactive `vm ssh`: one line saying the VM still runs, when
/// someone is looking (stdout is a terminal) and the guest still answers.
pub async fn ssh_reminder(vm_dir: &Path, vm_name: &str) {
    if !std::io::stdout().is_terminal() {
        return;
    }
    let alive = agent::for_vm_dir(vm_dir)
        .with_timeout(Duration::from_secs(1))
        .health()
        .await
        .is_ok();
    if alive {
        println!("{vm_name} is still running (stop it with `banger vm stop {vm_name}`)");
    }
}
