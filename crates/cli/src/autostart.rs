//! Connecting to bangerd, starting it first when it is not running.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use banger_api::paths::Paths;
use banger_client::{ClientError, DaemonClient};

/// A client for a running daemon, starting one if needed.
pub async fn connect() -> anyhow::Result<DaemonClient> {
    let paths = Paths::from_env();
    let client = DaemonClient::new(paths.socket());
    match client.status().await {
        Ok(_) => return Ok(client),
        Err(err) => check_reachable_error(&paths, &err)?,
    }
    start_daemon(&paths)?;
    wait_for_daemon(&paths, &client).await?;
    Ok(client)
}

/// A client only if a daemon is already running.
pub async fn existing() -> anyhow::Result<Option<DaemonClient>> {
    let paths = Paths::from_env();
    let client = DaemonClient::new(paths.socket());
    match client.status().await {
        Ok(_) => Ok(Some(client)),
        Err(err) => {
            check_reachable_error(&paths, &err)?;
            Ok(None)
        }
    }
}

/// "Not running" is fine (we start it); anything else is reported.
fn check_reachable_error(paths: &Paths, err: &ClientError) -> anyhow::Result<()> {
    let ClientError::Transport(transport) = err else {
        bail!("bangerd answered unexpectedly: {err}");
    };
    match transport.connect_error_kind() {
        Some(ErrorKind::NotFound) | Some(ErrorKind::ConnectionRefused) => Ok(()),
        Some(ErrorKind::PermissionDenied) => {
            let socket = paths.socket();
            let owner = std::fs::metadata(&socket).map(|m| m.uid()).ok();
            let me = nix::unistd::getuid().as_raw();
            Err(anyhow!(
                "cannot connect to {}: permission denied (it belongs to uid {}, you are uid {me})\n\
                 hint: run banger as the user that owns the daemon, or use your own XDG_RUNTIME_DIR",
                socket.display(),
                owner.map_or("?".to_string(), |o| o.to_string())
            ))
        }
        _ => Err(anyhow!(
            "cannot reach bangerd at {}: {transport}",
            paths.socket().display()
        )),
    }
}

fn daemon_binary() -> PathBuf {
    // Installed side by side; a source checkout's target dir holds both too.
    if let Ok(exe) = std::env::current_exe() {
        let sibling = exe.with_file_name("bangerd");
        if sibling.exists() {
            return sibling;
        }
    }
    PathBuf::from("bangerd")
}

fn stderr_file(paths: &Paths) -> PathBuf {
    paths.state_dir.join("bangerd.stderr")
}

fn start_daemon(paths: &Paths) -> anyhow::Result<()> {
    std::fs::create_dir_all(&paths.state_dir)
        .with_context(|| format!("cannot create {}", paths.state_dir.display()))?;
    // This start's output only: a failure quoted from it must be its own.
    std::fs::write(stderr_file(paths), b"")?;
    let binary = daemon_binary();
    let binary = banger_host::tools::find(&binary.to_string_lossy()).ok_or_else(|| {
        anyhow!(
            "cannot start {}: it is not installed next to banger or in PATH",
            binary.display()
        )
    })?;
    // Its own session: the daemon must not die with this terminal.
    // In the CLI's directory, as before: relative paths in the environment
    // mean what they meant to the user.
    let cwd = std::env::current_dir().unwrap_or_else(|_| paths.state_dir.clone());
    banger_host::process::spawn_detached(&binary, &[], &stderr_file(paths), &cwd)
        .with_context(|| format!("cannot start {}", binary.display()))?;
    Ok(())
}

async fn wait_for_daemon(paths: &Paths, client: &DaemonClient) -> anyhow::Result<()> {
    // Generous: a daemon start may first reconcile (and stop) leftovers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if client.status().await.is_ok() {
            return Ok(());
        }
        let stderr = std::fs::read_to_string(stderr_file(paths)).unwrap_or_default();
        // Losing a start race to another CLI is fine: that daemon answers
        // soon. One that runs for this state but listens elsewhere never will.
        let ours = format!("listening on {}", paths.socket().display());
        if stderr.contains("already running") && !stderr.contains(&ours) {
            bail!(
                "{}\nhint: that daemon owns this state directory; run banger with the same XDG_RUNTIME_DIR as it, or stop it (`kill` its pid) first",
                stderr.trim().trim_start_matches("Error: ")
            );
        }
        if !stderr.trim().is_empty() && !stderr.contains("already running") {
            bail!("bangerd failed to start: {}", stderr.trim());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "bangerd did not open {} within 60s\nhint: see {}",
                paths.socket().display(),
                paths.log_file().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
