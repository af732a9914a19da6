//! `banger vm set`

use std::process::ExitCode;

use anyhow::bail;
use banger_api::{format_size, UpdateVmRequest};
use banger_client::DaemonClient;
use clap::Args;

use super::power::each;

#[derive(Args)]
pub struct SetArgs {
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
}

pub async fn run(client: &DaemonClient, args: SetArgs) -> anyhow::Result<ExitCode> {
    let request = UpdateVmRequest {
        vcpu: args.vcpu,
        memory_mib: args.memory,
        disk_size: args.disk_size,
        nat: match (args.nat, args.no_nat) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    };
    if request == UpdateVmRequest::default() {
        bail!("nothing to change: pass --memory, --vcpu, --disk-size, --nat or --no-nat");
    }
    each(args.vms, |r| {
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
    .await
}
