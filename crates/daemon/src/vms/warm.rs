//! Warm creates: an image's template guest, booted once and saved after its
//! agent answered (`image warm`), restored for each new VM instead of a
//! boot; the new VM takes its own identity the way a running clone does.
//!
//! A template lives in `<state>/warm/<image>/`: the saved guest (`state/`,
//! with the suspend manifest that says which banger, VMM, image build, vCPU
//! and memory it needs) and its two small disks with `template.json` (the
//! MAC and address it starts out with, its disk sizes). It is made in
//! `.partial` and renamed when whole. A VM whose shape differs from the
//! template's, or a `--cold` create, boots. Rebuilding, registering again
//! or deleting the image drops its template ([`crate::images::Images::drop_warm`]);
//! a template of another build of the image is never used (its manifest
//! names the build).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use banger_api::paths::WARM_RECORD as TEMPLATE;
use banger_api::{CreateVmRequest, Image, Vm};
use banger_host::HostError;

use super::saved::{self, DiskSizes, Manifest, Template};
use super::{Result, VmError, Vms};
use crate::progress::Reporter;

const STATE: &str = "state";
/// In a template being made: the name of the VM it is made from.
const TEMPLATE_VM: &str = "template-vm";

/// An image's template directory, with what it holds.
struct Files(PathBuf);

impl Files {
    fn state(&self) -> PathBuf {
        self.0.join(STATE)
    }
    fn overlay(&self) -> PathBuf {
        self.0.join("overlay.ext4")
    }
    fn work(&self) -> PathBuf {
        self.0.join("work.ext4")
    }
}

impl Vms {
    /// `image warm NAME`: boots a template guest of the image (with the
    /// default shape), saves it once its agent answers, and replaces the
    /// image's old template with it. The template VM is gone afterwards.
    pub async fn warm_image(self: Arc<Self>, image: String, reporter: Reporter) -> Result<Image> {
        let image = self.images.ensure(&image, &reporter).await?;
        if !image.agent {
            return Err(VmError::CloneNeedsAgent { vm: image.name });
        }
        // One template made at a time; creates go on from the old one
        // meanwhile.
        let _making = self.warming.lock().await;
        let dir = self.paths.warm_template(&image.name);
        let partial = dir.with_extension("partial");
        saved::remove(&partial);
        let name = format!("warm-{}", &uuid_ish()[..6]);
        // Recorded before the template VM exists: a daemon that dies
        // making it leaves this, and the next one removes both.
        std::fs::create_dir_all(&partial)
            .and_then(|()| std::fs::write(partial.join(TEMPLATE_VM), &name))
            .map_err(|e| HostError::path_io("cannot write", &partial, e))?;
        reporter.say(
            "warm.boot",
            format!("booting a template guest of {} ({name})", image.name),
            Some(0.1),
        );
        let template = self
            .clone()
            .create(
                CreateVmRequest {
                    name: Some(name.clone()),
                    image: Some(image.name.clone()),
                    cold: true,
                    ..Default::default()
                },
                reporter.clone(),
            )
            .await
            .inspect_err(|_| saved::remove(&partial))?;
        let _guard = self.lock(&template.id).await;
        crate::crash::point("warm.saving");
        let made = self
            .save_template(&template, &image, &partial, &reporter)
            .await;
        // The template VM is not one of the user's: it goes either way.
        self.rollback(&template).await;
        self.write_ssh_config();
        if let Err(err) = made {
            saved::remove(&partial);
            return Err(err);
        }
        let _ = std::fs::remove_file(partial.join(TEMPLATE_VM));
        {
            let _swap = self.warm_lock.write().await;
            // Deleted or rebuilt meanwhile: this template is of a build
            // that is gone.
            let now = self.images.get(&image.name).ok();
            if now.is_none_or(|now| now.created_at != image.created_at) {
                saved::remove(&partial);
                return Err(VmError::ImageChanged { image: image.name });
            }
            saved::remove(&dir);
            std::fs::rename(&partial, &dir)
                .map_err(|e| HostError::path_io("cannot rename", &partial, e))?;
        }
        tracing::info!(image = %image.name, bytes = saved::bytes(&Files(dir.clone()).state()), "warm template ready");
        reporter.say("warm.done", format!("{} is warm", image.name), Some(1.0));
        Ok(image)
    }

    /// After an image is built or registered: makes its template in the
    /// background (as `image warm` does) when this daemon would restore
    /// one, so the creates after it are warm. Holds `inflight`, so the
    /// daemon does not stop half-way through.
    pub fn warm_in_background(
        self: &Arc<Self>,
        image: &Image,
        inflight: Arc<tokio::sync::RwLock<()>>,
        reporter: &Reporter,
    ) {
        // A QEMU guest saves only with the agent on its serial port.
        let saves = image.agent_serial || self.drivers.default_kind() != banger_api::VmmKind::Qemu;
        if !self.config.warm_after_build || !image.agent || !saves {
            return;
        }
        reporter.say(
            "warm",
            format!(
                "making {0}'s warm template in the background (`banger image warm {0}`)",
                image.name
            ),
            None,
        );
        let vms = self.clone();
        let name = image.name.clone();
        tokio::spawn(async move {
            let _running = inflight.read_owned().await;
            match vms.warm_image(name.clone(), Reporter::silent()).await {
                Ok(_) => tracing::info!(image = %name, "made the warm template after the build"),
                Err(e) => {
                    tracing::warn!(image = %name, error = %banger_api::error::chain(&e), "cannot make the warm template after the build; creates boot cold")
                }
            }
        });
    }

    async fn save_template(
        &self,
        vm: &Vm,
        image: &Image,
        into: &Path,
        reporter: &Reporter,
    ) -> Result<()> {
        let files = Files(into.to_path_buf());
        std::fs::create_dir_all(files.state())
            .map_err(|e| HostError::path_io("cannot create", &files.state(), e))?;
        reporter.say("warm.save", "saving the template guest", Some(0.7));
        let driver = self.drivers.driver(vm.vmm)?;
        driver.save(&vm.dir, &files.state()).await?;
        let from = vm.files();
        let copy = |from: PathBuf, to: PathBuf| async move {
            let status = tokio::process::Command::new("cp")
                .arg("--sparse=always")
                .arg(&from)
                .arg(&to)
                .status()
                .await
                .map_err(|e| HostError::io("cannot run cp", e))?;
            if !status.success() {
                return Err(HostError::io(
                    format!("cannot copy {}", from.display()),
                    std::io::Error::other(status.to_string()),
                ));
            }
            Ok(())
        };
        copy(from.overlay(), files.overlay()).await?;
        copy(from.work(), files.work()).await?;
        let template = Template {
            mac: vm.mac,
            ip: vm.ip,
            disk_size_bytes: vm.disk_size_bytes,
            overlay_size_bytes: vm.overlay_size_bytes,
        };
        std::fs::write(
            into.join(TEMPLATE),
            serde_json::to_vec_pretty(&template).expect("a template serialises"),
        )
        .map_err(|e| HostError::path_io("cannot write", &into.join(TEMPLATE), e))?;
        saved::sync_dir(&files.state())
            .and_then(|()| Manifest::of(vm, image).write(&files.state()))
            .map_err(|e| HostError::path_io("cannot write", &files.state(), e))?;
        Ok(())
    }

    /// What `image warm`s that a daemon did not live to finish left: the
    /// templates half made (`.partial`) and the names of the VMs they were
    /// being made from, which the caller deletes before [`Self::forget_partial_templates`].
    pub(super) fn partial_templates(&self) -> (Vec<PathBuf>, Vec<String>) {
        let Ok(entries) = std::fs::read_dir(self.paths.warm_dir()) else {
            return Default::default();
        };
        let dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "partial"))
            .collect();
        let names = dirs
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join(TEMPLATE_VM)).ok())
            .collect();
        (dirs, names)
    }

    pub(super) fn forget_partial_templates(&self, dirs: &[PathBuf]) {
        for dir in dirs {
            tracing::warn!(dir = %dir.display(), "removing a warm template that was not finished");
            saved::remove(dir);
        }
    }

    /// The image's template when `vm` (claimed, not yet made) fits it.
    pub(super) fn template_for(&self, vm: &Vm, image: &Image) -> Option<(PathBuf, Template)> {
        let dir = self.paths.warm_template(&image.name);
        let files = Files(dir.clone());
        let template: Template =
            serde_json::from_slice(&std::fs::read(dir.join(TEMPLATE)).ok()?).ok()?;
        let manifest = Manifest::read(&files.state()).ok()?;
        if let Some(why) = manifest.mismatch(vm, image) {
            tracing::info!(vm = %vm.name, image = %image.name, "booting cold: the warm template does not fit ({why})");
            return None;
        }
        // A restored guest's disks can grow (online, from inside), not shrink.
        if !DiskSizes::of(vm).at_least(template.sizes()) {
            tracing::info!(vm = %vm.name, image = %image.name, "booting cold: the VM's disks are smaller than the warm template's");
            return None;
        }
        Some((dir, template))
    }

    /// Makes `vm` from the template in `dir` (the caller holds the
    /// templates' read lock): its disks copied, its guest restored and
    /// given the VM's own identity.
    pub(super) async fn create_warm(
        self: &Arc<Self>,
        vm: &mut Vm,
        image: &Image,
        (dir, template): (PathBuf, Template),
        reporter: &Reporter,
        since: Instant,
    ) -> Result<()> {
        let files = Files(dir);
        self.journal.record(
            &vm.id,
            banger_store::ResourceKind::Dir,
            &vm.dir.to_string_lossy(),
        )?;
        std::fs::create_dir_all(&vm.dir)
            .map_err(|e| HostError::path_io("cannot create", &vm.dir, e))?;
        reporter.say("vm.copy", "copying the warm template's disks", Some(0.65));
        // At the template's sizes: the restored guest grows them itself.
        let to = vm.files();
        let saved = template.sizes();
        self.host
            .disks
            .clone_ext4(
                &files.overlay(),
                &to.overlay(),
                saved.overlay,
                banger_image::LABEL_OVERLAY,
            )
            .await?;
        self.host
            .disks
            .clone_ext4(
                &files.work(),
                &to.work(),
                saved.work,
                banger_image::LABEL_WORK,
            )
            .await?;
        let process = self
            .restore_as_own(
                vm,
                image,
                &files.state(),
                (template.mac, template.ip),
                saved,
                reporter,
            )
            .await?;
        vm.warm = true;
        self.mark_running(vm, process)?;
        tracing::info!(vm = %vm.name, ready_ms = since.elapsed().as_millis(), "warm VM ready");
        reporter.say(
            "vm.ready",
            format!("{} is ready (warm)", vm.name),
            Some(1.0),
        );
        Ok(())
    }
}

fn uuid_ish() -> String {
    use rand::Rng;
    format!(
        "{:012x}",
        rand::thread_rng().gen::<u64>() & 0xffff_ffff_ffff
    )
}
