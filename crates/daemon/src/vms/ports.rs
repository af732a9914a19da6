//! `vm ports`: the guest's listening sockets, as endpoints the host can use.
//! The agent lists them; the daemon merges IPv4/IPv6 duplicates, drops
//! loopback-only listeners (unreachable from the host) and probes each new
//! TCP listener for HTTPS and HTTP, once: the answer is kept for as long as
//! the same process listens there, so repeated calls (the TUI refreshes
//! every two seconds) do not knock on guest servers again. sshd is never
//! probed (newer OpenSSH penalises clients that fail to speak SSH).

use std::time::Duration;

use futures::StreamExt;

use banger_api::agent::Listener;
use banger_api::{VmPort, VmState};
use banger_client::agent::{self, Unusable};
use banger_host::probe::web_protocol;

use super::probes::ListenerKey;
use super::{Result, VmError, Vms};

/// Each web probe is short: a port that does not answer quickly is not a
/// web server worth a link.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Probes at once per call, at most.
const PROBES_AT_ONCE: usize = 8;

/// Ports whose servers must not be sent a web request.
fn never_probe(port: &VmPort) -> bool {
    let l = &port.listener;
    l.protocol != "tcp" || l.port == 22 || l.process.as_deref() == Some("sshd")
}

impl Vms {
    pub async fn ports(&self, reference: &str) -> Result<Vec<VmPort>> {
        let vm = self.resolve(reference)?;
        let cache = &self.probes;
        if vm.state != VmState::Running {
            return Err(VmError::NotRunning {
                vm: vm.name,
                state: vm.state,
                what: "ports are listed for running VMs",
            });
        }
        if !self.image_has_agent(&vm) {
            return Err(super::stats::not_in_image(&vm).into());
        }
        let listeners = agent::for_vm(&vm)
            .ports()
            .await
            .map_err(|e| Unusable::new(&vm.name, e))?;
        let ip = vm.ip;
        let mut ports: Vec<VmPort> = host_usable(listeners)
            .into_iter()
            .map(|l| VmPort {
                endpoint: format!("{}.vm:{}", vm.name, l.port),
                ip_endpoint: format!("{}:{}", vm.ip, l.port),
                web: None,
                url: None,
                listener: Listener {
                    process: l.process.as_deref().map(printable),
                    command: l.command.as_deref().map(printable),
                    ..l
                },
            })
            .collect();
        // Owned inputs first: the probes run on the server's Send futures.
        let jobs: Vec<(ListenerKey, Option<Option<String>>, bool)> = ports
            .iter()
            .map(|p| {
                let l = &p.listener;
                let key = (vm.id.clone(), l.protocol.clone(), l.port, l.pid);
                let known = cache.get(&key);
                (key, known, never_probe(p))
            })
            .collect();
        let probes = jobs.into_iter().map(|(key, known, skip)| async move {
            let web = match (skip, known) {
                (true, _) => None,
                (false, Some(known)) => known,
                (false, None) => web_protocol(ip, key.2, PROBE_TIMEOUT)
                    .await
                    .map(String::from),
            };
            (key, web)
        });
        // `buffered` keeps the order of `ports`.
        let found: Vec<_> = futures::stream::iter(probes)
            .buffered(PROBES_AT_ONCE)
            .collect()
            .await;
        for (port, (_, web)) in ports.iter_mut().zip(&found) {
            if let Some(scheme) = web {
                port.url = Some(format!("{scheme}://{}/", port.endpoint));
                port.web = Some(scheme.clone());
            }
        }
        cache.replace(&vm.id, found);
        Ok(ports)
    }
}

/// Guest processes choose their names and command lines: control
/// characters (terminal escapes) are shown as `?`, never passed on.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
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

    fn port(protocol: &str, number: u16, process: &str) -> VmPort {
        VmPort {
            listener: Listener {
                pid: Some(1),
                process: Some(process.into()),
                ..listener(protocol, "0.0.0.0", number)
            },
            endpoint: format!("x.vm:{number}"),
            ip_endpoint: format!("172.30.0.2:{number}"),
            web: None,
            url: None,
        }
    }

    #[test]
    fn the_json_keeps_the_listener_fields_at_the_top() {
        let json = serde_json::to_value(port("tcp", 8000, "python3")).unwrap();
        assert_eq!(json["port"], 8000);
        assert_eq!(json["protocol"], "tcp");
        assert_eq!(json["process"], "python3");
        assert_eq!(json["endpoint"], "x.vm:8000");
        let back: VmPort = serde_json::from_value(json).unwrap();
        assert_eq!(back, port("tcp", 8000, "python3"));
    }

    #[test]
    fn sshd_and_udp_are_never_sent_web_requests() {
        assert!(never_probe(&port("tcp", 22, "sshd")));
        assert!(never_probe(&port("tcp", 2222, "sshd")));
        assert!(never_probe(&port("udp", 8000, "python3")));
        assert!(!never_probe(&port("tcp", 8000, "python3")));
    }

    #[test]
    fn control_characters_from_the_guest_are_not_passed_on() {
        assert_eq!(
            printable("evil\x1b]52;c;Zm9v\x07name"),
            "evil?]52;c;Zm9v?name"
        );
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
