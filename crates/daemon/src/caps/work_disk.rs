//! The persistent `/root` disk, made once at create from the image's work
//! seed: an ext4 image is cloned and grown, a directory is copied in by
//! mkfs, and without a seed `/root` starts empty.

use std::sync::Arc;

use async_trait::async_trait;
use banger_api::{format_size, Image, Vm};
use banger_host::disk::Disks;
use banger_image::LABEL_WORK;

use super::{CapResult, Capability};
use crate::progress::Reporter;

pub struct WorkDisk {
    pub disks: Arc<dyn Disks>,
}

#[async_trait]
impl Capability for WorkDisk {
    fn name(&self) -> &'static str {
        "work-disk"
    }

    async fn create(&self, vm: &Vm, image: &Image, r: &Reporter) -> CapResult {
        r.say(
            "vm.work",
            format!(
                "creating the /root work disk ({})",
                format_size(vm.disk_size_bytes)
            ),
            Some(0.75),
        );
        let work = vm.files().work();
        match image.work_seed.as_deref() {
            Some(seed) if seed.is_file() => {
                self.disks
                    .clone_ext4(seed, &work, vm.disk_size_bytes, LABEL_WORK)
                    .await?
            }
            seed => {
                let contents = seed.filter(|s| s.is_dir());
                self.disks
                    .create_ext4(&work, vm.disk_size_bytes, LABEL_WORK, contents)
                    .await?
            }
        }
        Ok(())
    }
}
