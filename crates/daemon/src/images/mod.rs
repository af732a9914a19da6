//! Images the daemon knows: the default one is built on first use (or taken
//! from the runtime bundle); others are built ([`build`]) or registered from
//! files made elsewhere ([`register`]).

mod build;
mod error;
pub mod register;

pub use error::{FileProblem, ImageError};

use std::path::PathBuf;
use std::sync::Arc;

use banger_api::paths::Paths;
use banger_api::{BuildImageRequest, Image, VmmKind};
use banger_host::disk::Disks;
use banger_host::runner::Runner;
use banger_host::HostError;
use banger_store::Store;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::progress::Reporter;

pub type Result<T> = std::result::Result<T, ImageError>;

/// What image operations use.
pub struct Images {
    store: Arc<Store>,
    runner: Arc<dyn Runner>,
    disks: Arc<dyn Disks>,
    config: Arc<Config>,
    paths: Paths,
    /// The VMM new VMs get: registered kernels are checked against it.
    vmm: VmmKind,
    /// One build (or register, or delete) at a time.
    lock: Mutex<()>,
    /// Shared with VM creates: a create claims an image under it, so a
    /// delete that checks for users under it never races a claim.
    alloc: Arc<Mutex<()>>,
}

/// The parts [`Images`] is made of.
pub struct Parts {
    pub store: Arc<Store>,
    pub runner: Arc<dyn Runner>,
    pub disks: Arc<dyn Disks>,
    pub config: Arc<Config>,
    pub paths: Paths,
    pub vmm: VmmKind,
    pub alloc: Arc<Mutex<()>>,
}

impl Images {
    pub fn new(parts: Parts) -> Images {
        Images {
            store: parts.store,
            runner: parts.runner,
            disks: parts.disks,
            config: parts.config,
            paths: parts.paths,
            vmm: parts.vmm,
            lock: Mutex::new(()),
            alloc: parts.alloc,
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.config
            .images_dir
            .clone()
            .unwrap_or_else(|| self.paths.images_dir())
    }

    pub fn list(&self) -> Result<Vec<Image>> {
        let mut images = self.store.list_images()?;
        for image in &mut images {
            image.warm = self.is_warm(&image.name);
        }
        Ok(images)
    }

    /// The image called `name`, or a not-found error.
    pub fn get(&self, name: &str) -> Result<Image> {
        let mut image = self
            .store
            .get_image(name)?
            .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
        image.warm = self.is_warm(name);
        Ok(image)
    }

    /// Whether the image has a whole warm template (`vms::warm` makes them).
    fn is_warm(&self, name: &str) -> bool {
        self.paths
            .warm_template(name)
            .join(banger_api::paths::WARM_RECORD)
            .is_file()
    }

    /// The image called `name`, building the default image when it is missing.
    pub async fn ensure(&self, name: &str, reporter: &Reporter) -> Result<Image> {
        if let Some(image) = self.store.get_image(name)? {
            return Ok(image);
        }
        if name != self.config.default_image {
            return Err(ImageError::NotFound(name.to_string()));
        }
        if let Some(bundle) = crate::runtime::bundle(&self.config) {
            let image = bundle.default_image(name);
            self.store.put_image(&image)?;
            reporter.say(
                "image",
                format!(
                    "using the runtime bundle's default image ({})",
                    bundle.dir.display()
                ),
                Some(0.5),
            );
            tracing::info!(dir = %bundle.dir.display(), "registered the runtime bundle's default image");
            return Ok(image);
        }
        reporter.say(
            "image",
            format!("image {name} is not built yet; building it now (first run only)"),
            Some(0.0),
        );
        let request = BuildImageRequest {
            name: name.to_string(),
            ..Default::default()
        };
        Box::pin(self.build(request, reporter.clone())).await
    }

    /// Drops the image's warm template: it was made from a build that is
    /// gone now (its manifest would refuse it anyway; this frees the disk).
    pub(crate) fn drop_warm(&self, name: &str) {
        let dir = self.paths.warm_template(name);
        if dir.exists() {
            tracing::info!(image = name, "dropping the image's warm template");
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a warm template");
            }
        }
    }

    /// Deletes an image no VM uses. A managed image's directory goes with it;
    /// a registered image's files belong to the user and stay.
    pub async fn delete(&self, name: &str) -> Result<Image> {
        let _build = self.lock.lock().await;
        let image = self.get(name)?;
        // Under the allocation lock, no create can claim this image between
        // the check and the delete (claim re-reads the image under it).
        let alloc = self.alloc.lock().await;
        let users = self.users_of(&image.name)?;
        if !users.is_empty() {
            return Err(ImageError::InUse {
                image: image.name,
                users,
            });
        }
        // The row goes first: a crash after it leaves only files, never an
        // image whose files are half gone.
        self.store.delete_image(&image.name)?;
        drop(alloc);
        self.drop_warm(&image.name);
        if image.managed {
            let dir = self.dir().join(&image.name);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(HostError::path_io("cannot remove", &dir, e).into()),
            }
        }
        tracing::info!(image = %image.name, managed = image.managed, "image deleted");
        Ok(image)
    }

    /// Names of the VMs made from an image.
    fn users_of(&self, image: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .list_vms()?
            .into_iter()
            .filter(|vm| vm.image == image)
            .map(|vm| vm.name)
            .collect())
    }

    /// The guest agent images carry: `agent_bin`, else `banger-agent` beside
    /// this daemon's executable, else in PATH.
    fn agent_binary(&self) -> Result<PathBuf> {
        const AGENT_NAME: &str = "banger-agent";
        let found = match &self.config.agent_bin {
            Some(path) => banger_host::tools::find(&path.to_string_lossy()),
            None => banger_host::tools::find_own(AGENT_NAME),
        };
        found.ok_or(ImageError::NoAgent)
    }
}
