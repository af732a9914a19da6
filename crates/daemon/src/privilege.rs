//! Who makes the host's network changes. A daemon that runs as root makes
//! them itself; one that runs as a user (the usual case) asks the root
//! helper (`banger-helper`), which gives each user its own bridge and
//! subnet: the daemon takes those instead of config.toml's, so two users'
//! VMs never share a bridge or an address.

use std::path::PathBuf;
use std::sync::Arc;

use banger_api::NetworkAuthority;
use banger_helper::client::HelperNetwork;
use banger_host::net::{IpNetwork, Network};
use banger_host::runner::SystemRunner;

use crate::config::Config;

/// The network performer for this process, and how it was chosen.
pub struct Settled {
    pub net: Arc<dyn Network>,
    pub authority: NetworkAuthority,
}

/// The helper socket config.toml names, or the helper's default.
pub fn helper_socket(config: &Config) -> PathBuf {
    config
        .helper_socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(banger_helper::DEFAULT_SOCKET))
}

/// Picks the performer; as a user, asks the helper for this user's network
/// and writes it into `config`.
pub async fn settle(config: &mut Config) -> Settled {
    if nix::unistd::geteuid().is_root() {
        return Settled {
            net: Arc::new(IpNetwork::new(SystemRunner)),
            authority: NetworkAuthority::Root,
        };
    }
    let socket = helper_socket(config);
    let helper = HelperNetwork::new(socket.clone());
    let authority = match helper.hello().await {
        Ok(welcome) => {
            if config.bridge_name != welcome.bridge || config.bridge_subnet != welcome.subnet {
                tracing::info!(bridge = welcome.bridge, subnet = welcome.subnet, "the root helper assigns this user's network; config.toml's bridge_name and bridge_subnet give way");
            }
            config.bridge_name = welcome.bridge;
            config.bridge_subnet = welcome.subnet;
            NetworkAuthority::Helper {
                socket,
                version: Some(welcome.version),
                error: None,
            }
        }
        Err(e) => {
            let why = banger_api::error::chain(&e);
            tracing::warn!(error = %why, hint = ?e.hint(), "no root helper: VMs cannot get network devices until it runs");
            NetworkAuthority::Helper {
                socket,
                version: None,
                error: Some(why),
            }
        }
    };
    Settled {
        net: Arc::new(helper),
        authority,
    }
}
