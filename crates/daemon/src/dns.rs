//! The built-in authoritative DNS for `.vm`: `<vm-name>.vm` → the guest's
//! IPv4 address while the VM runs. hickory does all the DNS work (parsing,
//! answering, NXDOMAIN with the zone's SOA, REFUSED outside `.vm`, UDP and
//! TCP); this module only keeps the zone's `A` records in step with VMs.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;

/// The zone banger answers for.
pub const ZONE: &str = "vm.";
/// Guests come and go: resolvers should not cache answers for long.
const TTL: u32 = 5;

/// The `.vm` zone's records, shared by the server and the capability that
/// updates them.
pub struct VmDns {
    zone: Arc<InMemoryZoneHandler>,
    /// Where the server listens, or why it does not.
    status: Mutex<DnsStatus>,
}

/// Why the DNS is not serving.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("dns_listen {0:?} is not an address:port")]
    BadAddress(String),
    #[error("cannot listen on {proto} {addr}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsStatus {
    NotStarted,
    Serving(SocketAddr),
    Failed(String),
}

impl Default for VmDns {
    fn default() -> Self {
        Self::new()
    }
}

impl VmDns {
    pub fn new() -> VmDns {
        let origin = Name::from_ascii(ZONE).expect("static zone name");
        let soa = SOA::new(
            Name::from_ascii("ns.vm.").expect("static name"),
            Name::from_ascii("banger.vm.").expect("static name"),
            1,
            3600,
            600,
            86400,
            TTL,
        );
        let mut soa_set = RecordSet::with_ttl(origin.clone(), RecordType::SOA, TTL);
        soa_set.insert(Record::from_rdata(origin.clone(), TTL, RData::SOA(soa)), 1);
        let records = BTreeMap::from([(
            RrKey::new(LowerName::new(&origin), RecordType::SOA),
            soa_set,
        )]);
        let zone = InMemoryZoneHandler::new(origin, records, ZoneType::Primary, AxfrPolicy::Deny)
            .expect("the zone has its SOA");
        VmDns {
            zone: Arc::new(zone),
            status: Mutex::new(DnsStatus::NotStarted),
        }
    }

    fn fqdn(vm_name: &str) -> Option<Name> {
        Name::from_ascii(format!("{vm_name}.{ZONE}")).ok()
    }

    /// Adds or replaces `<vm_name>.vm A ip`.
    pub async fn set(&self, vm_name: &str, ip: Ipv4Addr) {
        let Some(name) = Self::fqdn(vm_name) else {
            tracing::warn!(vm = vm_name, "name is not a DNS name; no record");
            return;
        };
        self.remove(vm_name).await;
        let record = Record::from_rdata(name, TTL, RData::A(A(ip)));
        self.zone.upsert(record, 1).await;
    }

    pub async fn remove(&self, vm_name: &str) {
        if let Some(name) = Self::fqdn(vm_name) {
            let key = RrKey::new(LowerName::new(&name), RecordType::A);
            self.zone.records_mut().await.remove(&key);
        }
    }

    /// Replaces every `A` record with `entries` (daemon start).
    pub async fn replace_all(&self, entries: &[(String, Ipv4Addr)]) {
        self.zone
            .records_mut()
            .await
            .retain(|key, _| key.record_type != RecordType::A);
        for (name, ip) in entries {
            self.set(name, *ip).await;
        }
    }

    /// The names that have an `A` record, for `daemon status` and tests.
    pub async fn names(&self) -> Vec<String> {
        self.zone
            .records()
            .await
            .keys()
            .filter(|k| k.record_type == RecordType::A)
            .map(|k| k.name.to_string())
            .collect()
    }

    pub fn status(&self) -> DnsStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Binds UDP and TCP on `listen` and serves until the process ends. A
    /// failure (address in use, bad address) is recorded, not fatal: VMs
    /// work without the DNS, and `daemon status` / `doctor` say why.
    pub async fn serve(self: &Arc<Self>, listen: &str) -> Result<SocketAddr, DnsError> {
        let result = self.bind(listen).await;
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = match &result {
            Ok(addr) => DnsStatus::Serving(*addr),
            Err(e) => DnsStatus::Failed(banger_api::error::chain(e)),
        };
        result
    }

    async fn bind(self: &Arc<Self>, listen: &str) -> Result<SocketAddr, DnsError> {
        let addr: SocketAddr = listen
            .parse()
            .map_err(|_| DnsError::BadAddress(listen.to_string()))?;
        let bind = |proto, addr| {
            move |source| DnsError::Bind {
                proto,
                addr,
                source,
            }
        };
        let udp = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(bind("udp", addr))?;
        // Port 0 in the config picks a free port: TCP takes the one UDP got.
        let addr = udp.local_addr().map_err(bind("udp", addr))?;
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind("tcp", addr))?;
        let mut catalog = Catalog::new();
        let handler: Arc<dyn ZoneHandler> = self.zone.clone();
        catalog.upsert(self.zone.origin().clone(), vec![handler]);
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        tokio::spawn(async move {
            if let Err(e) = server.block_until_done().await {
                tracing::error!(error = %banger_api::error::chain(&e), "the DNS server stopped");
            }
        });
        tracing::info!(%addr, "serving .vm DNS");
        Ok(addr)
    }
}
