//! Port forwards (`vm forward`): a host address and port relayed to a port
//! of a VM, TCP or UDP. Each is recorded in the store first and listened on
//! for the life of the daemon (re-established at its start), whether or
//! not its VM runs: a connection while the VM is stopped, or before the
//! guest listens, is refused and the forward keeps listening. When a VM
//! stops, its forwards' connections end with it; deleting it removes them.

mod tcp;
mod udp;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use banger_api::{Forward, Proto, Vm};
use banger_store::{Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{CapResult, Capability};

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("{proto} port {port} on {address} is already in use")]
    Taken {
        proto: Proto,
        address: IpAddr,
        port: u16,
        #[source]
        source: Option<std::io::Error>,
    },
    #[error("port 0 cannot be forwarded")]
    PortZero,
    #[error("{0} has no such forward")]
    NoSuch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a VM's forwards go: its address while it runs.
pub type Target = Arc<dyn Fn(&str) -> Option<IpAddr> + Send + Sync>;

struct Listening {
    vm_id: String,
    task: JoinHandle<()>,
}

pub struct Forwards {
    store: Arc<Store>,
    target: Target,
    listening: Mutex<HashMap<(Proto, u16), Listening>>,
    /// Per VM: bumped when it stops, which ends its connections.
    stops: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Forwards {
    /// Forwards to the running VM's address, as the store has it.
    pub fn new(store: Arc<Store>) -> Forwards {
        let lookup = store.clone();
        let target: Target = Arc::new(move |vm_id: &str| {
            lookup
                .get_vm(vm_id)
                .ok()
                .flatten()
                .filter(|vm| vm.state == banger_api::VmState::Running)
                .map(|vm| IpAddr::V4(vm.ip))
        });
        Forwards::with_target(store, target)
    }

    /// Forwards to wherever `target` says (tests aim them at loopback).
    pub fn with_target(store: Arc<Store>, target: Target) -> Forwards {
        Forwards {
            store,
            target,
            listening: Mutex::default(),
            stops: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Proto, u16), Listening>> {
        self.listening.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop_signal(&self, vm_id: &str) -> watch::Receiver<u64> {
        let mut stops = self.stops.lock().unwrap_or_else(|p| p.into_inner());
        stops
            .entry(vm_id.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Records and opens a forward for `vm`.
    pub async fn add(&self, vm: &Vm, forward: Forward) -> Result<(), ForwardError> {
        if forward.host_port == 0 || forward.guest_port == 0 {
            return Err(ForwardError::PortZero);
        }
        self.store
            .add_forward(&vm.id, &forward)
            .map_err(|e| match e {
                StoreError::Collision { .. } => ForwardError::Taken {
                    proto: forward.proto,
                    address: forward.host_address,
                    port: forward.host_port,
                    source: None,
                },
                other => ForwardError::Store(other),
            })?;
        if let Err(e) = self.open(&vm.id, &forward).await {
            let _ = self
                .store
                .remove_forward(&vm.id, forward.proto, forward.host_port);
            return Err(e);
        }
        Ok(())
    }

    /// Binds and serves one recorded forward.
    async fn open(&self, vm_id: &str, forward: &Forward) -> Result<(), ForwardError> {
        let at = SocketAddr::new(forward.host_address, forward.host_port);
        let taken = |source: std::io::Error| ForwardError::Taken {
            proto: forward.proto,
            address: forward.host_address,
            port: forward.host_port,
            source: Some(source),
        };
        let route = Route {
            vm_id: vm_id.to_string(),
            guest_port: forward.guest_port,
            target: self.target.clone(),
            stops: self.stop_signal(vm_id),
        };
        let task = match forward.proto {
            Proto::Tcp => {
                let listener = tokio::net::TcpListener::bind(at).await.map_err(taken)?;
                tokio::spawn(tcp::serve(listener, route))
            }
            Proto::Udp => {
                let socket = tokio::net::UdpSocket::bind(at).await.map_err(taken)?;
                tokio::spawn(udp::serve(socket, route))
            }
        };
        tracing::info!(vm = vm_id, forward = %forward, "forwarding");
        let old = self.lock().insert(
            (forward.proto, forward.host_port),
            Listening {
                vm_id: vm_id.to_string(),
                task,
            },
        );
        if let Some(old) = old {
            old.task.abort();
        }
        Ok(())
    }

    /// Closes and forgets one forward of `vm`.
    pub fn remove(&self, vm: &Vm, proto: Proto, host_port: u16) -> Result<(), ForwardError> {
        if !self.store.remove_forward(&vm.id, proto, host_port)? {
            return Err(ForwardError::NoSuch(format!(
                "{} ({proto} {host_port})",
                vm.name
            )));
        }
        if let Some(listening) = self.lock().remove(&(proto, host_port)) {
            listening.task.abort();
        }
        Ok(())
    }

    /// Closes and forgets every forward of a VM being deleted.
    pub fn remove_vm(&self, vm_id: &str) -> Result<(), ForwardError> {
        self.store.remove_forwards_of(vm_id)?;
        self.lock().retain(|_, l| {
            let keep = l.vm_id != vm_id;
            if !keep {
                l.task.abort();
            }
            keep
        });
        self.cut(vm_id);
        self.stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(vm_id);
        Ok(())
    }

    /// Ends the connections of a VM that stopped; its forwards keep listening.
    pub fn cut(&self, vm_id: &str) {
        if let Some(stop) = self
            .stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(vm_id)
        {
            stop.send_modify(|n| *n += 1);
        }
    }

    pub fn of(&self, vm_id: &str) -> Result<Vec<Forward>, ForwardError> {
        Ok(self.store.forwards_of(vm_id)?)
    }
}

impl Drop for Forwards {
    /// Listeners end with the daemon that opened them (a detached task
    /// would keep the port).
    fn drop(&mut self) {
        for (_, listening) in self.lock().drain() {
            listening.task.abort();
        }
    }
}

/// What a forward's connections need to reach the guest.
#[derive(Clone)]
pub(crate) struct Route {
    vm_id: String,
    guest_port: u16,
    target: Target,
    stops: watch::Receiver<u64>,
}

impl Route {
    /// The guest's address now, if it runs.
    fn guest(&self) -> Option<SocketAddr> {
        (self.target)(&self.vm_id).map(|ip| SocketAddr::new(ip, self.guest_port))
    }

    /// Resolves when the VM stops (or its forwards go) from now on: stops
    /// before this connection began are not its.
    async fn stopped(mut self) {
        self.stops.borrow_and_update();
        let _ = self.stops.changed().await;
    }
}

#[async_trait]
impl Capability for Forwards {
    fn name(&self) -> &'static str {
        "forward"
    }

    async fn stopped(&self, vm: &Vm) -> CapResult {
        self.cut(&vm.id);
        Ok(())
    }

    /// Every recorded forward of a VM that exists listens again; those of
    /// VMs gone are forgotten.
    async fn reconcile(&self, vms: &[Vm]) -> CapResult {
        for (vm_id, forward) in self.store.all_forwards()? {
            if !vms.iter().any(|vm| vm.id == vm_id) {
                self.store
                    .remove_forward(&vm_id, forward.proto, forward.host_port)?;
                continue;
            }
            if self
                .lock()
                .contains_key(&(forward.proto, forward.host_port))
            {
                continue;
            }
            if let Err(e) = self.open(&vm_id, &forward).await {
                tracing::error!(vm = vm_id, forward = %forward, error = %banger_api::error::chain(&e), "cannot re-establish a forward; it stays recorded");
            }
        }
        Ok(())
    }
}
