//! Claiming a new VM's identity: id, name, IP, MAC and TAP, allocated and
//! inserted (state `creating`) in one step under the allocation lock, so
//! concurrent creates never collide.

use std::net::Ipv4Addr;

use banger_api::names::generated_name;
use banger_api::{Image, MacAddr, Vm, VmState};
use rand::Rng;

use super::shape::Shape;
use super::{Result, VmError, Vms};

impl Vms {
    pub(crate) fn ensure_name_free(&self, name: &str) -> Result<()> {
        if self.store.list_vms()?.iter().any(|vm| vm.name == name) {
            return Err(VmError::NameTaken(name.to_string()));
        }
        Ok(())
    }

    pub(crate) async fn claim(
        &self,
        name: Option<String>,
        image: &Image,
        shape: Shape,
    ) -> Result<Vm> {
        let _alloc = self.alloc.lock().await;
        // `image delete` checks for users under the same lock: the image is
        // either still there for this VM or already refused to it.
        if self.store.get_image(&image.name)?.is_none() {
            return Err(VmError::ImageDeleted(image.name.clone()));
        }
        let vms = self.store.list_vms()?;
        let mut rng = rand::thread_rng();
        let name = match name {
            Some(name) => {
                self.ensure_name_free(&name)?;
                name
            }
            None => (0..100)
                .map(|_| generated_name(rng.gen()))
                .find(|candidate| !vms.iter().any(|vm| &vm.name == candidate))
                .unwrap_or_else(|| format!("vm-{:06x}", rng.gen::<u32>() & 0xff_ffff)),
        };
        let used: Vec<Ipv4Addr> = vms.iter().map(|vm| vm.ip).collect();
        let ip = self
            .subnet
            .guest_addresses()
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| VmError::NoFreeAddress(self.config.bridge_subnet.clone()))?;
        let id_bytes: [u8; 6] = rng.gen();
        let id: String = id_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let vmm = self.drivers.default_kind();
        let vm = Vm {
            id: id.clone(),
            name,
            state: VmState::Creating,
            image: image.name.clone(),
            vmm,
            accel: self.drivers.accel(vmm),
            vcpu: shape.vcpu,
            memory_mib: shape.memory_mib,
            disk_size_bytes: shape.disk_size_bytes,
            overlay_size_bytes: shape.overlay_size_bytes,
            nat: shape.nat,
            ip,
            // QEMU's locally administered prefix, then the id's first bytes.
            mac: MacAddr([0x52, 0x54, 0x00, id_bytes[0], id_bytes[1], id_bytes[2]]),
            tap: format!("bg-{id}"),
            pid: None,
            created_at: time::OffsetDateTime::now_utc(),
            started_at: None,
            stop_reason: None,
            stopped_at: None,
            saved_state_bytes: None,
            warm: false,
            dir: self.paths.vm_dir(&id),
        };
        self.store.insert_vm(&vm)?;
        Ok(vm)
    }
}
