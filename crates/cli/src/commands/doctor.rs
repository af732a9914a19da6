//! `banger doctor`: the daemon's readiness checks of this host, run by the
//! daemon with its own privileges, paths and config; printed here.

use std::process::ExitCode;

use banger_api::{Check, CheckStatus};

use crate::{autostart, output};

pub async fn run(json: bool) -> anyhow::Result<ExitCode> {
    let checks = match autostart::connect().await {
        Ok(client) => client.doctor().await?,
        // No daemon to ask (a config it refuses, say): that is the finding.
        Err(err) => vec![Check {
            name: "daemon".into(),
            status: CheckStatus::Fail,
            detail: format!("{err:#}"),
            hint: Some("fix what the message names, then run `banger doctor` again".into()),
        }],
    };
    if json {
        output::json(&checks);
    } else {
        for c in &checks {
            let tag = match c.status {
                CheckStatus::Pass => "pass",
                CheckStatus::Warn => "WARN",
                CheckStatus::Fail => "FAIL",
            };
            println!("{tag}  {:<20} {}", c.name, c.detail);
            if let (Some(hint), true) = (&c.hint, c.status != CheckStatus::Pass) {
                println!("      {:<20} → {hint}", "");
            }
        }
    }
    Ok(if banger_api::status::any_failed(&checks) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
