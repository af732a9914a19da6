//! `banger-helper --owner USER [--owner USER ...] [--socket PATH]`: the
//! root helper in the foreground (systemd runs the same command; see
//! `banger system install`). Logs JSON lines to standard error.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use banger_helper::lease;
use banger_helper::server::Helper;
use banger_helper::world::HostWorld;
use banger_host::net::IpNetwork;
use banger_host::runner::SystemRunner;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "banger-helper",
    version,
    about = "Performs banger's network operations (bridge, TAPs, NAT) for the users it serves"
)]
struct Args {
    /// A user this helper serves: USER, or USER=BRIDGE,SUBNET to name its
    /// network (default: the first owner gets banger0 and 172.30.0.0/24,
    /// the next banger1 and 172.30.1.0/24, ...). Repeatable.
    #[arg(long = "owner", required = true)]
    owners: Vec<String>,
    /// Where to listen.
    #[arg(long, default_value = banger_helper::DEFAULT_SOCKET)]
    socket: PathBuf,
    #[arg(long, default_value = "info", env = "BANGER_LOG_LEVEL")]
    log_level: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log_level))
        .init();
    if !nix::unistd::geteuid().is_root() {
        bail!("banger-helper changes the host's network: run it as root (sudo banger-helper --owner $USER)");
    }
    banger_host::tools::require_all(&["ip", "iptables"])?;
    let leases = lease::assign(&args.owners)?;
    for lease in &leases {
        let granted = banger_helper::devices::grant(lease.uid);
        tracing::info!(user = lease.user, uid = lease.uid, bridge = lease.bridge, subnet = %lease.subnet, granted = ?granted, "serving owner");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = Helper::bind(&args.socket)
            .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
        tracing::info!(socket = %args.socket.display(), version = env!("CARGO_PKG_VERSION"), "banger-helper listening");
        let helper = Arc::new(Helper::new(
            leases,
            Arc::new(IpNetwork::new(SystemRunner)),
            Arc::new(HostWorld {
                net: IpNetwork::new(SystemRunner),
            }),
        ));
        helper.serve(listener).await?;
        Ok(())
    })
}
