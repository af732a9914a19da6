//! `banger vm suspend` and `vm resume`: several VMs at once, as the other
//! power verbs; one VM gets a progress bar on resume.

use std::process::ExitCode;

use banger_api::size::format_size;
use banger_api::Vm;
use banger_client::DaemonClient;

use super::power::each;
use crate::output::ProgressView;

fn suspended(vm: &Vm) -> String {
    match vm.saved_state_bytes {
        Some(bytes) => format!("{}: suspended ({} saved)", vm.name, format_size(bytes)),
        None => format!("{}: suspended", vm.name),
    }
}

pub async fn suspend(
    client: &DaemonClient,
    vms: Vec<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        return as_json(vms, |r| {
            let client = client.clone();
            async move { client.suspend_vm(&r).await }
        })
        .await;
    }
    each(vms, |r| {
        let client = client.clone();
        async move { client.suspend_vm(&r).await.map(|vm| suspended(&vm)) }
    })
    .await
}

pub async fn resume(
    client: &DaemonClient,
    vms: Vec<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        return as_json(vms, |r| {
            let client = client.clone();
            async move { client.resume_vm(&r, &mut |_| {}).await }
        })
        .await;
    }
    if let [reference] = vms.as_slice() {
        let mut view = ProgressView::new();
        let result = client.resume_vm(reference, &mut |p| view.update(p)).await;
        view.finish();
        let vm = result?;
        println!("{}: running again at {}", vm.name, vm.ip);
        return Ok(ExitCode::SUCCESS);
    }
    each(vms, |r| {
        let client = client.clone();
        async move {
            client
                .resume_vm(&r, &mut |_| {})
                .await
                .map(|vm| format!("{}: running again at {}", vm.name, vm.ip))
        }
    })
    .await
}

/// Every VM's answer as one JSON array (failures on stderr, exit 1).
async fn as_json<F, Fut>(refs: Vec<String>, action: F) -> anyhow::Result<ExitCode>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Vm, banger_client::ClientError>>,
{
    let results = futures::future::join_all(refs.iter().cloned().map(&action)).await;
    let mut done = Vec::new();
    let mut failed = false;
    for (reference, result) in refs.iter().zip(results) {
        match result {
            Ok(vm) => done.push(vm),
            Err(e) => {
                failed = true;
                crate::output::print_error(&anyhow::Error::new(e).context(reference.clone()));
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&done)?);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
