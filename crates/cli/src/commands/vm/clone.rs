//! `banger vm clone SOURCE [--name NEW]`: a new VM with a stopped VM's
//! files and its own identity, booted.

use std::process::ExitCode;

use banger_api::CloneVmRequest;
use banger_client::DaemonClient;
use clap::Args;

use crate::output::ProgressView;

#[derive(Args)]
pub struct CloneArgs {
    /// The VM to copy (stopped)
    source: String,
    /// The clone's name (generated when absent)
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn run(client: &DaemonClient, args: CloneArgs) -> anyhow::Result<ExitCode> {
    let request = CloneVmRequest { name: args.name };
    let mut view = ProgressView::new();
    let result = if args.json {
        client.clone_vm(&args.source, &request, &mut |_| {}).await
    } else {
        client
            .clone_vm(&args.source, &request, &mut |p| view.update(p))
            .await
    };
    view.finish();
    let vm = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&vm)?);
    } else {
        println!(
            "{}: a clone of {} running at {} (`banger vm ssh {}`)",
            vm.name, args.source, vm.ip, vm.name
        );
    }
    Ok(ExitCode::SUCCESS)
}
