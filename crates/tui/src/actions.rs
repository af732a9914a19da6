//! Background work: refreshing the snapshot and running actions. Results
//! come back to the loop as [`Msg`]s, so the UI never waits on the daemon.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use banger_api::VmState;

use crate::fleet::Fleet;
use crate::model::{Action, Msg, Snapshot};

/// VMs, their stats, the ports of running ones, and images, in one go.
pub async fn snapshot(fleet: &Arc<dyn Fleet>) -> Result<Snapshot, String> {
    let vms = fleet.list_vms().await?;
    let images = fleet.list_images().await?;
    // Stats sample CPU for a moment and ports probe for web servers: ask
    // about every VM at once.
    let mut tasks = tokio::task::JoinSet::new();
    for vm in &vms {
        let fleet = fleet.clone();
        let name = vm.name.clone();
        let running = vm.state == VmState::Running;
        tasks.spawn(async move {
            let ports = async {
                match running {
                    true => fleet.vm_ports(&name).await.ok(),
                    false => None,
                }
            };
            let (stats, ports) = tokio::join!(fleet.vm_stats(&name), ports);
            (name.clone(), stats.ok(), ports)
        });
    }
    let mut snapshot = Snapshot {
        vms,
        images,
        ..Snapshot::default()
    };
    while let Some(done) = tasks.join_next().await {
        let Ok((name, stats, ports)) = done else {
            continue;
        };
        snapshot.stats.extend(stats);
        if let Some(ports) = ports {
            snapshot.ports.insert(name, ports);
        }
    }
    Ok(snapshot)
}

/// Runs one daemon action (not SSH, which needs the terminal) and reports
/// its progress and outcome as task `id`.
pub async fn perform(fleet: Arc<dyn Fleet>, action: Action, id: u64, tx: UnboundedSender<Msg>) {
    let progress_tx = tx.clone();
    let mut on = move |p: &banger_api::Progress| {
        let _ = progress_tx.send(Msg::Progress {
            id,
            message: p.message.clone(),
            fraction: p.fraction,
        });
    };
    let result = match &action {
        Action::Start(name) => fleet
            .start(name, &mut on)
            .await
            .map(|vm| format!("{} is running", vm.name)),
        Action::Restart(name) => fleet
            .restart(name, &mut on)
            .await
            .map(|vm| format!("{} restarted", vm.name)),
        Action::Suspend(name) => fleet
            .suspend(name)
            .await
            .map(|vm| match vm.saved_state_bytes {
                Some(bytes) => format!(
                    "{} suspended ({} saved)",
                    vm.name,
                    banger_api::size::format_size(bytes)
                ),
                None => format!("{} suspended", vm.name),
            }),
        Action::Resume(name) => fleet
            .resume(name, &mut on)
            .await
            .map(|vm| format!("{} is running again", vm.name)),
        Action::Stop(name) => fleet
            .stop(name)
            .await
            .map(|vm| format!("{} stopped", vm.name)),
        Action::Delete(name) => fleet
            .delete(name)
            .await
            .map(|vm| format!("{} deleted", vm.name)),
        Action::Create(request) => fleet
            .create(request, &mut on)
            .await
            .map(|vm| format!("{} is running at {} (Enter to ssh)", vm.name, vm.ip)),
        Action::DeleteImage(name) => fleet
            .delete_image(name)
            .await
            .map(|image| format!("image {} deleted", image.name)),
        Action::Ssh(_) => Err("ssh runs in the terminal, not in the background".into()),
    };
    let _ = tx.send(Msg::Done {
        id,
        result: result.map_err(|e| format!("{}: {e}", action.label())),
    });
}
