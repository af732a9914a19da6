//! `vm stats`: what a VM costs the host (VMM CPU and memory, disk blocks),
//! and what the guest reports through its agent (load, memory, disks).

use std::path::Path;
use std::time::Duration;

use banger_api::{Vm, VmState, VmStats};
use banger_host::disk::allocated_bytes;
use banger_host::process;

use super::{journal, VmFiles};
use crate::app::App;
use crate::errors::OpResult;

/// How long CPU use is sampled.
const SAMPLE: Duration = Duration::from_millis(200);

pub async fn stats(app: &App, vm: &Vm) -> OpResult<VmStats> {
    let files = VmFiles::new(Path::new(&vm.dir));
    let mut stats = VmStats {
        name: vm.name.clone(),
        state: vm.state,
        pid: None,
        cpu_percent: None,
        rss_bytes: None,
        uptime_secs: None,
        overlay_used_bytes: allocated_bytes(&files.overlay()).unwrap_or(0),
        overlay_size_bytes: vm.overlay_size_bytes,
        work_used_bytes: allocated_bytes(&files.work()).unwrap_or(0),
        work_size_bytes: vm.disk_size_bytes,
        guest: None,
        guest_error: None,
    };
    if vm.state != VmState::Running {
        return Ok(stats);
    }
    if let Some(proc) = journal::recorded_process(app, &vm.id)?.filter(|p| p.is_alive()) {
        stats.pid = Some(proc.pid);
        stats.rss_bytes = process::rss_bytes(proc.pid);
        let before = process::cpu_seconds(proc.pid);
        // Ask the guest while the CPU sample runs.
        let agent = banger_client::agent::for_vm_dir(Path::new(&vm.dir))
            .with_timeout(Duration::from_secs(2));
        if super::image_has_agent(app, vm) {
            let (guest, ()) = tokio::join!(agent.stats(), tokio::time::sleep(SAMPLE));
            match guest {
                Ok(figures) => stats.guest = Some(figures),
                Err(e) => {
                    stats.guest_error =
                        Some(one_line(banger_client::agent::unavailable(&vm.name, &e)))
                }
            }
        } else {
            stats.guest_error = Some(one_line(banger_client::agent::not_in_image(
                &vm.name, &vm.image,
            )));
            tokio::time::sleep(SAMPLE).await;
        }
        let after = process::cpu_seconds(proc.pid);
        if let (Some(a), Some(b)) = (before, after) {
            stats.cpu_percent = Some(((b - a) / SAMPLE.as_secs_f64() * 1000.0).round() / 10.0);
        }
        stats.uptime_secs = vm.started_at.as_deref().and_then(uptime);
    }
    Ok(stats)
}

/// An error with its fix, on one line (it is a field of the stats).
fn one_line(err: banger_api::ApiError) -> String {
    match err.hint {
        Some(hint) => format!("{} ({hint})", err.message),
        None => err.message,
    }
}

fn uptime(started_at: &str) -> Option<u64> {
    let started =
        time::OffsetDateTime::parse(started_at, &time::format_description::well_known::Rfc3339)
            .ok()?;
    let seconds = (time::OffsetDateTime::now_utc() - started).whole_seconds();
    u64::try_from(seconds).ok()
}
