//! The persistent `/root` work disk: made once at create (from the image's
//! work seed when it has one), kept across stops, removed with the VM's
//! directory on delete. The guest mounts it by label (see guest_config).

use std::path::Path;

use async_trait::async_trait;
use banger_api::{format_size, Image, Vm};
use banger_image::LABEL_WORK;

use super::Capability;
use crate::app::App;
use crate::errors::{self, OpResult};
use crate::progress::Reporter;
use crate::vms::VmFiles;

pub struct WorkDisk;

#[async_trait]
impl Capability for WorkDisk {
    fn name(&self) -> &'static str {
        "work-disk"
    }

    async fn create(&self, app: &App, vm: &Vm, image: &Image, r: &Reporter) -> OpResult<()> {
        r.say(
            "vm.work",
            format!(
                "creating the /root work disk ({})",
                format_size(vm.disk_size_bytes)
            ),
            Some(0.75),
        );
        let seed = Path::new(&image.work_seed);
        let work = VmFiles::new(Path::new(&vm.dir)).work();
        let disks = &app.host.disks;
        // A seed image is cloned and grown; a seed directory is copied in
        // by mkfs; without a seed /root starts empty.
        let made = if seed.is_file() {
            disks
                .clone_ext4(seed, &work, vm.disk_size_bytes, LABEL_WORK)
                .await
        } else {
            let contents = seed.is_dir().then_some(seed);
            disks
                .create_ext4(&work, vm.disk_size_bytes, LABEL_WORK, contents)
                .await
        };
        made.map_err(errors::host)
    }
}
