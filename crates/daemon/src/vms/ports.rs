//! `vm ports`: the guest's listening sockets, as endpoints the host can use.
//! The agent lists them; the daemon merges IPv4/IPv6 duplicates, drops
//! loopback-only listeners (unreachable from the host) and probes each TCP
//! port for HTTP and HTTPS.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use banger_api::agent::Listener;
use banger_api::{ApiError, ErrorCode, Vm, VmPort, VmState};
use banger_client::agent;
use banger_host::probe::web_protocol;

use crate::errors::OpResult;

/// Each web probe is short: a port that does not answer quickly is not a
/// web server worth a link.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

pub async fn ports(vm: &Vm) -> OpResult<Vec<VmPort>> {
    if vm.state != VmState::Running {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "VM {} is {}; ports are listed for running VMs",
                vm.name, vm.state
            ),
        )
        .with_hint(format!("start it with `banger vm start {}`", vm.name)));
    }
    let listeners = agent::for_vm_dir(Path::new(&vm.dir))
        .ports()
        .await
        .map_err(|e| agent::unavailable(&vm.name, &e))?;
    let ip: Ipv4Addr = vm
        .ip
        .parse()
        .map_err(|_| ApiError::internal(format!("stored IP {:?} is invalid", vm.ip)))?;
    let mut ports: Vec<VmPort> = host_usable(listeners)
        .into_iter()
        .map(|l| VmPort {
            endpoint: format!("{}.vm:{}", vm.name, l.port),
            ip_endpoint: format!("{}:{}", vm.ip, l.port),
            protocol: l.protocol,
            port: l.port,
            address: l.address,
            web: None,
            url: None,
            pid: l.pid,
            process: l.process,
            command: l.command,
        })
        .collect();
    let probes = ports.iter().map(|p| async move {
        match p.protocol.as_str() {
            "tcp" => web_protocol(ip, p.port, PROBE_TIMEOUT).await,
            _ => None,
        }
    });
    let found = futures::future::join_all(probes).await;
    for (port, web) in ports.iter_mut().zip(found) {
        if let Some(scheme) = web {
            port.url = Some(format!("{scheme}://{}/", port.endpoint));
            port.web = Some(scheme.to_string());
        }
    }
    Ok(ports)
}

/// One row per protocol and port (a server on `0.0.0.0` and `::` is one
/// endpoint), without listeners only the guest itself can reach.
fn host_usable(mut listeners: Vec<Listener>) -> Vec<Listener> {
    listeners.retain(|l| !is_loopback(&l.address));
    listeners.sort_by(|a, b| (a.port, &a.protocol).cmp(&(b.port, &b.protocol)));
    listeners.dedup_by(|a, b| a.port == b.port && a.protocol == b.protocol);
    listeners
}

fn is_loopback(address: &str) -> bool {
    address
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(protocol: &str, address: &str, port: u16) -> Listener {
        Listener {
            protocol: protocol.into(),
            address: address.into(),
            port,
            pid: None,
            process: None,
            command: None,
        }
    }

    #[test]
    fn dual_stack_listeners_are_one_endpoint_and_loopback_ones_are_dropped() {
        let rows = host_usable(vec![
            listener("tcp", "::", 8000),
            listener("tcp", "0.0.0.0", 22),
            listener("tcp", "127.0.0.1", 5432),
            listener("tcp", "::1", 6379),
            listener("tcp", "0.0.0.0", 8000),
            listener("udp", "0.0.0.0", 8000),
            listener("tcp", "172.30.0.2", 9000),
        ]);
        let got: Vec<(String, u16)> = rows.iter().map(|l| (l.protocol.clone(), l.port)).collect();
        assert_eq!(
            got,
            [
                ("tcp".into(), 22),
                ("tcp".into(), 8000),
                ("udp".into(), 8000),
                ("tcp".into(), 9000)
            ]
        );
    }
}
