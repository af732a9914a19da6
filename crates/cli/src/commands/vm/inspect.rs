//! `banger vm list`, `vm show`, `vm stats`

use std::process::ExitCode;

use banger_api::{format_size, Vm, VmState, VmStats, VmmStatus};
use banger_client::DaemonClient;

use crate::output;

pub async fn list(client: &DaemonClient, json: bool) -> anyhow::Result<ExitCode> {
    let vms = client.list_vms().await?;
    if json {
        output::json(&vms);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = vms
        .iter()
        .map(|vm| {
            vec![
                vm.name.clone(),
                vm.id.clone(),
                match vm.saved_state_bytes {
                    Some(bytes) => format!("{} ({})", vm.state, format_size(bytes)),
                    None => vm.state.to_string(),
                },
                vm.image.clone(),
                vm.ip.to_string(),
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
    Ok(ExitCode::SUCCESS)
}

/// `vm show --json`: the VM's record, plus what its VMM says live.
#[derive(serde::Serialize)]
struct Shown {
    #[serde(flatten)]
    vm: Vm,
    #[serde(skip_serializing_if = "Option::is_none")]
    vmm_status: Option<VmmStatus>,
    forwards: Vec<banger_api::Forward>,
}

pub async fn show(client: &DaemonClient, reference: &str, json: bool) -> anyhow::Result<ExitCode> {
    let vm = client.get_vm(reference).await?;
    // Only a VM with a VMM process can be asked; the record says when not.
    let live = match vm.pid {
        Some(_) => Some(client.vm_vmm(&vm.id).await),
        None => None,
    };
    let forwards = client.forwards(&vm.id).await.unwrap_or_default();
    if json {
        output::json(&Shown {
            vm,
            vmm_status: live.and_then(Result::ok),
            forwards,
        });
    } else {
        print_vm(&vm);
        for forward in &forwards {
            println!("{:<9} {forward}", "forward");
        }
        match live {
            Some(Ok(status)) => println!("{:<9} {}", "vmm live", describe(&status)),
            Some(Err(e)) if vm.state != VmState::Stopped => {
                println!("{:<9} cannot ask the VMM: {e}", "vmm live")
            }
            _ => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// "firecracker 1.16.1: Running, 2 vCPU, 1024 MiB".
fn describe(status: &VmmStatus) -> String {
    let mut text = format!("{} {}: {}", status.vmm, status.version, status.state);
    if let Some(vcpu) = status.vcpu {
        text.push_str(&format!(", {vcpu} vCPU"));
    }
    if let Some(memory) = status.memory_mib {
        text.push_str(&format!(", {memory} MiB"));
    }
    text
}

pub async fn stats(client: &DaemonClient, reference: &str, json: bool) -> anyhow::Result<ExitCode> {
    let stats = client.vm_stats(reference).await?;
    if json {
        output::json(&stats);
    } else {
        print_stats(&stats);
    }
    Ok(ExitCode::SUCCESS)
}

/// "2026-11-28 16:42", in UTC.
fn short_time(t: &time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
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
    if let Some(m) = &stats.vmm_metrics {
        println!("vmm counts (since it started):");
        println!(
            "  {:<7} {} ({} failed)",
            "exits", m.vcpu_exits, m.vcpu_failures
        );
        println!(
            "  {:<7} {} read, {} written",
            "disks",
            format_size(m.block_read_bytes),
            format_size(m.block_write_bytes)
        );
        println!(
            "  {:<7} {} in, {} out",
            "network",
            format_size(m.net_rx_bytes),
            format_size(m.net_tx_bytes)
        );
        println!("  {:<7} {} bytes", "console", m.console_bytes);
    }
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

fn print_vm(vm: &Vm) {
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
        ("ip", vm.ip.to_string()),
        ("dns", format!("{}.vm", vm.name)),
        ("mac", vm.mac.to_string()),
        ("tap", vm.tap.clone()),
        ("nat", if vm.nat { "on".into() } else { "off".into() }),
        (
            "made",
            if vm.warm {
                format!("warm, from {}'s snapshot", vm.image)
            } else {
                "cold (booted)".into()
            },
        ),
        (
            "pid",
            vm.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
        ),
        ("created", banger_api::stamp::format(&vm.created_at)),
        (
            "started",
            vm.started_at
                .as_ref()
                .map(banger_api::stamp::format)
                .unwrap_or_else(|| "-".into()),
        ),
        ("dir", vm.dir.display().to_string()),
    ];
    for (key, value) in fields {
        println!("{key:<9} {value}");
    }
    if let Some(bytes) = vm.saved_state_bytes {
        println!(
            "{:<9} {} of memory and device state in {} (`banger vm resume {}`)",
            "saved",
            format_size(bytes),
            vm.files().saved().display(),
            vm.name
        );
    }
    if let Some(reason) = &vm.stop_reason {
        println!("{:<9} {reason}", "stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_vmm_status_reads_as_one_line() {
        let status = VmmStatus {
            vmm: banger_api::VmmKind::Firecracker,
            version: "1.16.1".into(),
            state: "Running".into(),
            vcpu: Some(3),
            memory_mib: Some(1024),
        };
        assert_eq!(
            describe(&status),
            "firecracker 1.16.1: Running, 3 vCPU, 1024 MiB"
        );
    }

    #[test]
    fn list_times_are_short() {
        let t = time::macros::datetime!(2026-11-28 16:42:47.46 UTC);
        assert_eq!(short_time(&t), "2026-11-28 16:42");
    }
}
