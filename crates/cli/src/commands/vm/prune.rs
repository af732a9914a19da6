//! `banger vm prune`: delete VMs stopped for longer than a while.

use std::process::ExitCode;

use banger_api::PruneRequest;
use banger_client::DaemonClient;
use clap::Args;

use crate::output;

#[derive(Args)]
pub struct PruneArgs {
    /// How long a VM must have been stopped: 7d, 12h, 30m, 1w ...
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    stopped_for: std::time::Duration,
    /// List what would be deleted; delete nothing
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(client: &DaemonClient, args: PruneArgs) -> anyhow::Result<ExitCode> {
    let vms = client
        .prune(&PruneRequest {
            stopped_for_secs: args.stopped_for.as_secs(),
            dry_run: args.dry_run,
        })
        .await?;
    if args.json {
        output::json(&vms);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    if vms.is_empty() {
        println!(
            "no VM has been stopped for {}",
            humantime::format_duration(args.stopped_for)
        );
    }
    for vm in &vms {
        let since = vm
            .stopped_at
            .as_ref()
            .map(banger_api::stamp::format)
            .unwrap_or_else(|| "an unknown time".into());
        println!("{verb} {} (stopped since {since})", vm.name);
    }
    Ok(ExitCode::SUCCESS)
}
