//! `banger vm start`, `restart`, `stop`, `kill`, `delete`: each takes
//! several VMs and acts on them concurrently (the daemon serialises per VM,
//! not across VMs).

use std::future::Future;
use std::process::ExitCode;

use anyhow::bail;
use banger_api::KillRequest;
use banger_client::{ClientError, DaemonClient};

use crate::output::{self, ProgressView};

/// Starts (or restarts) VMs concurrently; one VM gets a progress bar.
pub async fn boot_each(
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

pub async fn kill(
    client: &DaemonClient,
    vms: Vec<String>,
    signal: String,
) -> anyhow::Result<ExitCode> {
    each(vms, |r| {
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
    .await
}

pub async fn stop(
    client: &DaemonClient,
    vms: Vec<String>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    each(vms, |r| {
        let client = client.clone();
        async move {
            client
                .stop_vm(&r, force)
                .await
                .map(|vm| format!("{}: stopped", vm.name))
        }
    })
    .await
}

pub async fn delete(
    client: &DaemonClient,
    vms: Vec<String>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    each(vms, |r| {
        let client = client.clone();
        async move {
            client
                .delete_vm(&r, force)
                .await
                .map(|vm| format!("{}: deleted", vm.name))
        }
    })
    .await
}

/// Runs an action for each ref, reporting each; fails if any failed.
pub async fn each<F, Fut>(refs: Vec<String>, action: F) -> anyhow::Result<ExitCode>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<String, ClientError>>,
{
    if refs.is_empty() {
        bail!("no VM given");
    }
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
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
