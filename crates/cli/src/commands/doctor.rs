//! `banger doctor`: the daemon's readiness checks, run here and printed.

use std::process::ExitCode;

use banger_api::paths::Paths;
use banger_daemon::config::Config;
use banger_daemon::doctor::{self, Check, Status};

use crate::output;

pub fn run(json: bool) -> anyhow::Result<ExitCode> {
    let paths = Paths::from_env();
    let checks = match Config::load(&paths.config_file()) {
        Ok(config) => {
            let images = config
                .images_dir
                .clone()
                .unwrap_or_else(|| paths.images_dir());
            doctor::run(&paths, &config, &images)
        }
        Err(err) => vec![Check {
            name: "config".into(),
            status: Status::Fail,
            detail: err.message.clone(),
            hint: err.hint.clone(),
        }],
    };
    if json {
        output::json(&checks);
    } else {
        for c in &checks {
            let tag = match c.status {
                Status::Pass => "pass",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            println!("{tag}  {:<20} {}", c.name, c.detail);
            if let (Some(hint), true) = (&c.hint, c.status != Status::Pass) {
                println!("      {:<20} → {hint}", "");
            }
        }
    }
    Ok(if doctor::failed(&checks) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
