//! The `bangerd` process: paths, config, logging, single-instance lock,
//! reconcile, then serve.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::sync::{Arc, Mutex};

use crate::app::App;
use crate::config::Config;
use crate::drivers::SystemDrivers;
use crate::host::Host;
use crate::server;
use anyhow::{bail, Context};
use banger_api::paths::Paths;
use banger_store::Store;
use clap::Parser;
use nix::fcntl::{Flock, FlockArg};

#[derive(Parser)]
#[command(
    name = "bangerd",
    version,
    about = "The banger daemon: owns VMs, images and their host resources"
)]
struct Args {}

/// Runs the daemon until it is asked to stop.
pub fn main() -> anyhow::Result<()> {
    Args::parse();
    let paths = Paths::from_env();
    for dir in [&paths.state_dir, &paths.runtime_dir, &paths.config_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::set_permissions(&paths.runtime_dir, std::fs::Permissions::from_mode(0o700))?;
    let config = Config::load(&paths.config_file()).map_err(|e| {
        let hint = e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default();
        anyhow::anyhow!("{}{hint}", banger_api::error::chain(&e))
    })?;
    init_logging(&paths, &config)?;

    // One daemon per state directory (per user): the lock is held for the
    // life of the process, and says where that daemon listens.
    let lock_path = paths.state_dir.join("bangerd.lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(&lock_path)?;
    let mut lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, _)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "another bangerd is already running for {}, listening on {}",
                paths.state_dir.display(),
                holder.trim()
            )
        }
    };
    lock.set_len(0)?;
    lock.write_all(paths.socket().display().to_string().as_bytes())?;
    let _lock = lock;

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(paths, config))
}

async fn run(paths: Paths, mut config: Config) -> anyhow::Result<()> {
    let store = Store::open(&paths.database())
        .with_context(|| format!("cannot open {}", paths.database().display()))?;
    let drivers = Arc::new(SystemDrivers::new(&config));
    let settled = crate::privilege::settle(&mut config).await;
    let mut app = App::new(
        paths.clone(),
        config,
        store,
        Host::with_network(settled.net),
        drivers,
    )?;
    app.network = settled.authority;
    let app = Arc::new(app);
    tracing::info!(pid = std::process::id(), uid = nix::unistd::geteuid().as_raw(), socket = %paths.socket().display(), vmm = %app.drivers.default_kind(), accel = %app.accel(), network = ?app.network, crash_points = cfg!(feature = "crash-points"), "bangerd starting");
    app.vms
        .reconcile()
        .await
        .map_err(|e| anyhow::anyhow!(banger_api::error::chain(&e)))?;
    // VMs work without the DNS: a busy port is logged and shown by
    // `daemon status`, not fatal.
    if let Err(e) = app.dns.serve(&app.config.dns_listen).await {
        tracing::error!(error = %banger_api::error::chain(&e), "the .vm DNS is not serving");
    }
    tokio::spawn(app.tap_pool.clone().run());

    let socket = paths.socket();
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket)
        .with_context(|| format!("cannot bind {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;

    let shutdown_app = app.clone();
    let shutdown = async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = shutdown_app.shutdown.notified() => {}
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
        }
    };
    tracing::info!("listening");
    axum::serve(listener, server::router(app.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
    // Let operations whose clients went away finish (or roll back) first.
    if tokio::time::timeout(std::time::Duration::from_secs(120), app.inflight.write())
        .await
        .is_err()
    {
        tracing::warn!(
            "operations still running after 120 s; exiting anyway (the next start reconciles them)"
        );
    }
    let _ = std::fs::remove_file(&socket);
    app.tap_pool.drain().await;
    // VMM processes run in their own sessions: they keep running.
    tracing::info!("bangerd stopped; running VMs keep running");
    Ok(())
}

fn init_logging(paths: &Paths, config: &Config) -> anyhow::Result<()> {
    let file: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.log_file())
        .with_context(|| format!("cannot open {}", paths.log_file().display()))?;
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{},hyper=warn,axum=warn",
        config.log_level
    ))?;
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_current_span(false)
        .init();
    Ok(())
}
