//! Bringing a VM from stopped to running: TAP, VMM process, guest boot,
//! readiness. Used by both create and start.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use banger_api::{ApiError, Image, Vm, VmState};
use banger_client::agent::AgentClient;
use banger_host::probe::GuestProbe;
use banger_host::process::ProcessId;
use banger_store::ResourceKind;
use banger_vmm::{log_tail, DriveSpec, Role, VmSpec};

use super::journal::{self, PENDING};
use super::{monitor, VmFiles};
use crate::app::{now, App};
use crate::caps;
use crate::crash;
use crate::errors::{self, OpResult};
use crate::progress::Reporter;

/// Kernel command line common to every driver.
const CMDLINE: &str = "console=ttyS0 net.ifnames=0 panic=1";

pub fn spec(vm: &Vm, image: &Image) -> VmSpec {
    let files = VmFiles::new(Path::new(&vm.dir));
    VmSpec {
        id: vm.id.clone(),
        dir: files.dir.clone(),
        vcpu: vm.vcpu,
        memory_mib: vm.memory_mib,
        kernel: image.kernel.clone().into(),
        initrd: image.initrd.clone().into(),
        cmdline: CMDLINE.to_string(),
        drives: vec![
            DriveSpec {
                id: "rootfs".into(),
                path: image.rootfs.clone().into(),
                read_only: true,
            },
            DriveSpec {
                id: "overlay".into(),
                path: files.overlay(),
                read_only: false,
            },
            DriveSpec {
                id: "work".into(),
                path: files.work(),
                read_only: false,
            },
        ],
        tap: vm.tap.clone(),
        mac: vm.mac.clone(),
    }
}

/// Boots a stopped VM and waits until it is ready. On failure, everything
/// this boot created (process, TAP) is undone and the error returned.
/// `since` is when the operation began, for the timings in the log.
pub async fn boot(
    app: &Arc<App>,
    vm: &mut Vm,
    image: &Image,
    reporter: &Reporter,
    since: Instant,
) -> OpResult<()> {
    match boot_inner(app, vm, image, reporter, since).await {
        Ok(process) => {
            vm.state = VmState::Running;
            vm.pid = Some(process.pid);
            vm.started_at = Some(now());
            vm.stop_reason = None;
            app.store.update_vm(vm).map_err(errors::store)?;
            monitor::watch(app.clone(), vm.id.clone(), process);
            Ok(())
        }
        Err(err) => {
            reporter.say(
                "vm.cleanup",
                "boot failed; cleaning up the VMM process, TAP device and NAT rules",
                None,
            );
            if let Err(cleanup) = release(app, vm).await {
                tracing::error!(vm = %vm.name, error = %cleanup, "cleanup after failed boot incomplete");
            }
            vm.pid = None;
            Err(err)
        }
    }
}

async fn boot_inner(
    app: &Arc<App>,
    vm: &mut Vm,
    image: &Image,
    reporter: &Reporter,
    since: Instant,
) -> OpResult<ProcessId> {
    for path in [&image.kernel, &image.initrd, &image.rootfs] {
        if !Path::new(path).exists() {
            return Err(
                ApiError::not_found(format!("image {} is missing {path}", image.name)).with_hint(
                    format!("rebuild it with `banger image build --name {}`", image.name),
                ),
            );
        }
    }
    // Never two VMMs on the same disks: a VMM left from a stop that could
    // not finish must be dealt with first.
    if let Some(live) = journal::recorded_process(app, &vm.id)?.filter(|p| p.is_alive()) {
        return Err(ApiError::conflict(format!(
            "VM {} still has a VMM process running (pid {})",
            vm.name, live.pid
        ))
        .with_hint(format!(
            "stop it with `banger vm stop --force {}` or `banger vm kill --signal KILL {}`",
            vm.name, vm.name
        )));
    }
    let driver = app.driver(vm.vmm)?;
    // A VM being created stays `creating` until it is ready, so an
    // interrupted create is rolled back, not adopted, at the next start.
    if vm.state != VmState::Creating {
        vm.state = VmState::Starting;
        app.store.update_vm(vm).map_err(errors::store)?;
    }

    // TAP, NAT and whatever else plugs in before the VMM starts.
    let prepare_started = Instant::now();
    caps::prepare(app, vm, reporter).await?;
    let prepare_ms = prepare_started.elapsed().as_secs_f64() * 1000.0;
    app.store.update_vm(vm).map_err(errors::store)?;

    reporter.say(
        "vm.launch",
        format!("launching {} ({})", driver.kind(), driver.accel()),
        Some(0.83),
    );
    let process_row = app
        .store
        .record_resource(&vm.id, ResourceKind::Process, PENDING)
        .map_err(errors::store)?;
    let spec = spec(vm, image);
    let store = &app.store;
    let vm_id = vm.id.clone();
    // The pending row above covers a crash before a PID is known (undo
    // finds the processes by the VM directory); helpers get their own rows.
    let record = move |role: Role, process: ProcessId| {
        let recorded = match role {
            Role::Vmm => store.update_resource(process_row, &process.encode()),
            Role::Helper => store
                .record_resource(&vm_id, ResourceKind::Helper, &process.encode())
                .map(drop),
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, ?role, "cannot record a VM process");
        }
    };
    let process = driver.launch(&spec, &record).await.map_err(errors::vmm)?;
    vm.pid = Some(process.pid);
    app.store.update_vm(vm).map_err(errors::store)?;
    // Everything up to here is host-side work; the rest is the guest booting.
    let host_ms = since.elapsed().as_millis() as u64;
    tracing::info!(vm = %vm.name, host_ms, pid = process.pid, "VMM launched");
    crash::point("boot.launched");

    reporter.say(
        "vm.boot",
        format!(
            "booting the guest; waiting for its agent (or sshd on {})",
            vm.ip
        ),
        Some(0.86),
    );
    let ip = super::vm_ip(vm)?;
    let timeout = Duration::from_secs(app.config.boot_timeout_secs);
    let console = driver.console_log(&spec.dir);
    let vsock = spec.vsock_socket();
    let agent = wait_ready(
        app.host.probe.as_ref(),
        ip,
        process,
        timeout,
        &console,
        image.agent.then_some(vsock.as_path()),
    )
    .await?;
    caps::running(app, vm).await?;
    let ready_ms = since.elapsed().as_millis() as u64;
    tracing::info!(vm = %vm.name, host_ms, prepare_ms, ready_ms, boot_ms = ready_ms - host_ms, agent, "guest ready");
    reporter.say("vm.ready", format!("{} is ready", vm.name), Some(1.0));
    Ok(process)
}

/// Releases what a running VM holds on the host: its VMM process, then
/// every capability's runtime part (DNS record, NAT rules, TAP). Used by
/// stop, failed boots, VMM exits and reconcile; safe to repeat.
pub async fn release(app: &App, vm: &Vm) -> OpResult<()> {
    let process = journal::undo_kinds(app, &vm.id, Some(&vm.dir), journal::PROCESSES).await;
    let caps = caps::stopped(app, vm).await;
    process.and(caps)
}

/// How long a guest whose sshd is up may take to start its agent before it
/// counts as ready without one (an agent that fails in the guest must not
/// make the VM unusable: it is still reachable over SSH).
const AGENT_GRACE: Duration = Duration::from_secs(15);

/// Waits until the guest is ready, failing early if the VMM dies. For an
/// image with the agent, ready is the agent's health answer over the VM's
/// vsock socket `agent` (it starts after sshd); otherwise, with no vsock,
/// or when sshd has answered for [`AGENT_GRACE`] without the agent, the
/// SSH banner. Returns whether the agent answered.
async fn wait_ready(
    probe: &dyn GuestProbe,
    ip: Ipv4Addr,
    process: ProcessId,
    timeout: Duration,
    console: &Path,
    agent: Option<&Path>,
) -> OpResult<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    let client = agent
        .filter(|socket| socket.exists())
        .map(|socket| AgentClient::new(socket).with_timeout(Duration::from_secs(2)));
    let has_vsock = client.is_some();
    let mut ssh_since: Option<tokio::time::Instant> = None;
    loop {
        if !process.is_alive() {
            return Err(ApiError::internal(format!(
                "the VMM exited while the guest was booting; console: {}",
                log_tail(console, 8)
            )));
        }
        if let Some(client) = &client {
            if client.health().await.is_ok() {
                return Ok(true);
            }
        }
        if ssh_since.is_none() && probe.ready(ip).await {
            ssh_since = Some(tokio::time::Instant::now());
        }
        if let Some(since) = ssh_since {
            if !has_vsock {
                return Ok(false);
            }
            if since.elapsed() >= AGENT_GRACE {
                tracing::warn!(%ip, "guest ready by SSH; its agent did not answer (no `vm ports`, `vm exec` or guest stats)");
                return Ok(false);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            if ssh_since.is_some() {
                // sshd answered: a silent agent must not cost the VM.
                tracing::warn!(%ip, "boot timeout reached with sshd up and no agent answer; ready by SSH");
                return Ok(false);
            }
            return Err(ApiError::internal(format!(
                "the guest was not ready within {}s ({}); console: {}",
                timeout.as_secs(),
                if has_vsock {
                    format!("no answer from its agent over vsock, nor from sshd on {ip}:22")
                } else {
                    format!("no answer from sshd on {ip}:22")
                },
                log_tail(console, 8)
            ))
            .with_hint(
                "raise boot_timeout_secs in config.toml if this host is slow (software emulation)",
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
