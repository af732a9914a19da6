//! `banger vm create`

use std::process::ExitCode;

use banger_api::CreateVmRequest;
use banger_client::DaemonClient;
use clap::Args;

use crate::output::{self, ProgressView};

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
    /// Boot it, even when the image has a warm snapshot (`banger image warm`)
    #[arg(long)]
    cold: bool,
    /// Print the created VM as JSON
    #[arg(long)]
    json: bool,
}

pub async fn run(client: &DaemonClient, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let request = CreateVmRequest {
        name: args.name,
        image: args.image,
        vcpu: args.vcpu,
        memory_mib: args.memory,
        disk_size: args.disk_size,
        nat: args.nat,
        cold: args.cold,
    };
    let mut view = ProgressView::new();
    let result = client.create_vm(&request, &mut |p| view.update(p)).await;
    view.finish();
    let vm = result?;
    if args.json {
        output::json(&vm);
    } else {
        println!(
            "created {} ({}) at {}{}; enter it with: banger vm ssh {}",
            vm.name,
            vm.id,
            vm.ip,
            if vm.warm { ", warm" } else { "" },
            vm.name
        );
    }
    Ok(ExitCode::SUCCESS)
}
