//! `banger vm export NAME > work.patch`: what changed in the project a
//! `vm run` copied in, since the copy, as a patch `git apply` takes on the
//! host (new files and binary changes included).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use banger_client::DaemonClient;
use clap::Args;

use super::copy::{agent_of, guest, no_input};

#[derive(Args)]
pub struct ExportArgs {
    vm: String,
    /// The project directory in the guest (default: the one `vm run` made)
    #[arg(long)]
    dir: Option<String>,
}

pub async fn run(client: &DaemonClient, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let agent = agent_of(client, &args.vm).await?;
    let dir = match args.dir {
        Some(dir) => dir,
        None => {
            let mut recorded = Vec::new();
            guest(
                &agent,
                &["cat", "/root/.banger-run"],
                no_input(),
                &mut |out| {
                    recorded.extend(out);
                    true
                },
            )
            .await
            .with_context(|| format!("{} has no project from `vm run`: pass --dir DIR", args.vm))?;
            String::from_utf8_lossy(&recorded).trim().to_string()
        }
    };
    // New files count as changes (intent to add); the index stays as the
    // user left it otherwise.
    let diff = "cd \"$1\" && git add -A -N . && exec git diff --binary HEAD";
    let mut stdout = std::io::stdout();
    let mut failed = None;
    guest(
        &agent,
        &["sh", "-c", diff, "sh", &dir],
        no_input(),
        &mut |out| match stdout.write_all(&out) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        },
    )
    .await?;
    if let Some(e) = failed {
        return Err(e).context("cannot write the patch");
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
