//! Waiting until a booting guest is ready: its agent's health answer over
//! vsock (it starts after sshd), or, for images without the agent, the SSH
//! banner; failing early when the VMM dies.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use banger_api::files::{tail_summary, VmFiles};
use banger_api::VmmKind;
use banger_client::agent::AgentClient;
use banger_host::probe::GuestProbe;
use banger_host::process::ProcessId;

use super::{Result, VmError};

/// How long a guest whose sshd is up may take to start its agent before it
/// counts as ready without one (an agent that fails in the guest must not
/// make the VM unusable: it is still reachable over SSH).
const AGENT_GRACE: Duration = Duration::from_secs(15);

/// What to wait for.
pub struct Readiness {
    pub ip: Ipv4Addr,
    pub process: ProcessId,
    pub timeout: Duration,
    /// The VMM and the VM's directory: its console and the VMM's log are
    /// quoted when the guest never becomes ready.
    pub vmm: VmmKind,
    pub dir: PathBuf,
    /// The VM's vsock socket, for an image with the agent.
    pub agent: Option<PathBuf>,
}

impl Readiness {
    /// What to wait for of `vm`'s guest run by `process`; `agent`: its
    /// image has the agent.
    pub fn of(
        vm: &banger_api::Vm,
        process: ProcessId,
        timeout: Duration,
        agent: bool,
    ) -> Readiness {
        Readiness {
            ip: vm.ip,
            process,
            timeout,
            vmm: vm.vmm,
            dir: vm.dir.clone(),
            agent: agent.then(|| vm.files().vsock()),
        }
    }
}

/// Waits until the guest is ready; returns whether the agent answered.
/// Without a vsock, or when sshd has answered for [`AGENT_GRACE`] without
/// the agent, the SSH banner is enough.
pub async fn wait_ready(probe: &dyn GuestProbe, r: &Readiness) -> Result<bool> {
    let deadline = tokio::time::Instant::now() + r.timeout;
    let client = r
        .agent
        .as_ref()
        .filter(|socket| socket.exists())
        .map(|socket| AgentClient::new(socket).with_timeout(Duration::from_secs(2)));
    let has_vsock = client.is_some();
    let mut ssh_since: Option<tokio::time::Instant> = None;
    loop {
        if !r.process.is_alive() {
            return Err(exited(r));
        }
        if let Some(client) = &client {
            if client.health().await.is_ok() {
                return Ok(true);
            }
        }
        if ssh_since.is_none() && probe.ready(r.ip).await {
            ssh_since = Some(tokio::time::Instant::now());
        }
        if let Some(since) = ssh_since {
            if !has_vsock {
                return Ok(false);
            }
            if since.elapsed() >= AGENT_GRACE {
                tracing::warn!(ip = %r.ip, "guest ready by SSH; its agent did not answer (no `vm ports`, `vm exec` or guest stats)");
                return Ok(false);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            if ssh_since.is_some() {
                // sshd answered: a silent agent must not cost the VM.
                tracing::warn!(ip = %r.ip, "boot timeout reached with sshd up and no agent answer; ready by SSH");
                return Ok(false);
            }
            return Err(VmError::NotReady {
                seconds: r.timeout.as_secs(),
                waited_for: if has_vsock {
                    format!("its agent over vsock, nor from sshd on {}:22", r.ip)
                } else {
                    format!("sshd on {}:22", r.ip)
                },
                console: tail_summary(&VmFiles::new(&r.dir).console(), 8),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits for the agent alone, polling briefly: a guest restored from
/// another's memory is off the network (and answers at another address)
/// until it has its own identity, so SSH says nothing about it.
pub async fn wait_agent(r: &Readiness) -> Result<()> {
    let deadline = tokio::time::Instant::now() + r.timeout;
    let client = r
        .agent
        .as_ref()
        .map(|socket| AgentClient::new(socket).with_timeout(Duration::from_secs(2)));
    loop {
        if !r.process.is_alive() {
            return Err(exited(r));
        }
        if let Some(client) = &client {
            if client.health().await.is_ok() {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(VmError::NotReady {
                seconds: r.timeout.as_secs(),
                waited_for: "its agent (a restored guest is reached through it alone)".into(),
                console: tail_summary(&VmFiles::new(&r.dir).console(), 8),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The VMM is gone before the guest answered: what it and the console said.
fn exited(r: &Readiness) -> VmError {
    VmError::ExitedWhileBooting {
        vmm_log: banger_vmm::log_summary(r.vmm, &r.dir),
        console: tail_summary(&VmFiles::new(&r.dir).console(), 8),
    }
}
