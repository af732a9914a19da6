//! The composition root: the daemon's parts made once, each handed only
//! what it uses. The server (the edge, which needs every part) holds the
//! `App`; no part below it knows `App`.

use std::sync::Arc;

use banger_api::paths::Paths;
use banger_api::Accel;
use banger_store::Store;
use tokio::sync::{Mutex, Notify, RwLock};

use crate::caps::bridge::Bridge;
use crate::caps::tap::{Tap, TapPool};
use crate::caps::{dns, forward, nat, work_disk, Pipeline};
use crate::config::{Config, ConfigError};
use crate::dns::VmDns;
use crate::drivers::Drivers;
use crate::host::Host;
use crate::images::{self, Images};
use crate::journal::Journal;
use crate::vms::{Parts, Vms};

pub struct App {
    pub(crate) paths: Paths,
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<Store>,
    pub(crate) vms: Arc<Vms>,
    pub(crate) images: Arc<Images>,
    pub(crate) dns: Arc<VmDns>,
    pub(crate) tap_pool: Arc<TapPool>,
    pub(crate) drivers: Arc<dyn Drivers>,
    /// Notified by `POST /v1/daemon/shutdown`.
    pub(crate) shutdown: Notify,
    /// Every running operation holds a read guard; shutdown takes the write
    /// side, so the daemon never exits half-way through one (e.g. resize2fs).
    pub(crate) inflight: Arc<RwLock<()>>,
    /// Who makes the host's network changes (root, or the root helper).
    pub network: banger_api::NetworkAuthority,
}

impl App {
    pub fn new(
        paths: Paths,
        config: Config,
        store: Store,
        host: Host,
        drivers: Arc<dyn Drivers>,
    ) -> Result<App, ConfigError> {
        let subnet = config.subnet()?;
        let config = Arc::new(config);
        let store = Arc::new(store);
        let journal = Journal::new(store.clone(), host.net.clone());
        let bridge = Arc::new(Bridge::new(&config.bridge_name, subnet, host.net.clone()));
        let tap_pool = Arc::new(TapPool::new(
            config.tap_pool_size,
            host.net.clone(),
            journal.clone(),
            bridge.clone(),
        ));
        let zone = Arc::new(VmDns::new());
        let forwards = Arc::new(forward::Forwards::new(store.clone()));
        let caps = Pipeline::new(vec![
            Arc::new(work_disk::WorkDisk {
                disks: host.disks.clone(),
            }),
            Arc::new(Tap {
                net: host.net.clone(),
                journal: journal.clone(),
                bridge: bridge.clone(),
                pool: tap_pool.clone(),
            }),
            Arc::new(nat::Nat {
                net: host.net.clone(),
                bridge,
            }),
            Arc::new(dns::Dns { zone: zone.clone() }),
            forwards.clone(),
        ]);
        // Creates claim images under this lock; image deletes check for users under it.
        let alloc = Arc::new(Mutex::new(()));
        let images = Arc::new(Images::new(images::Parts {
            store: store.clone(),
            runner: host.runner.clone(),
            disks: host.disks.clone(),
            config: config.clone(),
            paths: paths.clone(),
            vmm: drivers.default_kind(),
            alloc: alloc.clone(),
        }));
        let vms = Arc::new(Vms::new(Parts {
            store: store.clone(),
            journal,
            host,
            drivers: drivers.clone(),
            caps,
            images: images.clone(),
            config: config.clone(),
            subnet,
            paths: paths.clone(),
            alloc,
            forwards,
        }));
        Ok(App {
            paths,
            config,
            store,
            vms,
            images,
            dns: zone,
            tap_pool,
            drivers,
            shutdown: Notify::new(),
            inflight: Arc::new(RwLock::new(())),
            network: banger_api::NetworkAuthority::Root,
        })
    }

    pub fn vms(&self) -> &Arc<Vms> {
        &self.vms
    }

    pub fn images(&self) -> &Arc<Images> {
        &self.images
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn dns(&self) -> &Arc<VmDns> {
        &self.dns
    }

    pub fn tap_pool(&self) -> &Arc<TapPool> {
        &self.tap_pool
    }

    /// How new VMs' VMM runs guests.
    pub fn accel(&self) -> Accel {
        self.drivers.accel(self.drivers.default_kind())
    }
}
