//! `banger tui`

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use banger_api::paths::Paths;
use banger_client::DaemonClient;

use crate::autostart;

pub fn run() -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("banger tui needs a terminal; for scripts use `banger vm list --json`");
    }
    // The TUI loop blocks its thread; background work runs on the workers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let paths = Paths::from_env();
    // Start the daemon when it is not running. If that fails the TUI says
    // so and keeps retrying, rather than refusing to open.
    let client = runtime
        .block_on(autostart::connect())
        .unwrap_or_else(|_| DaemonClient::new(paths.socket()));
    let _runtime = runtime.enter();
    banger_tui::run(banger_tui::Options {
        fleet: Arc::new(client),
        socket: paths.socket().display().to_string(),
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    })?;
    Ok(ExitCode::SUCCESS)
}
