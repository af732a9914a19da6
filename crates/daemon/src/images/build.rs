//! `image build`: the request checked (name, origin, mirror, base, size,
//! package list) before anything runs, then the image crate's pipeline.

use banger_api::names::validate_name;
use banger_api::{parse_size, BuildImageRequest, Image};
use banger_host::tools;
use banger_image::sources::void::BaseKernel;
use banger_image::sources::Profile;
use banger_image::{build_image, cached_image, BuildRequest, Mirrors, Origin};

use super::register::{check_rootfs, existing_file};
use super::{ImageError, Images, Result};
use crate::progress::Reporter;

/// Host tools every image needs besides its source's.
pub const IMAGE_TOOLS: &[&str] = &["mkfs.ext4", "e2fsck", "resize2fs"];

impl Images {
    pub async fn build(&self, request: BuildImageRequest, reporter: Reporter) -> Result<Image> {
        validate_name(&request.name)?;
        let origin = Origin::choose(request.distro.as_deref(), request.base_rootfs.clone())?;
        if let Origin::DebianBase(base) = &origin {
            check_rootfs("--base-rootfs", base)?;
        }
        if let Some(kernel) = &request.kernel {
            // Checked now, not minutes into the build.
            existing_file("--kernel", kernel)?;
            banger_image::sources::user_kernel::check(kernel)?;
        }
        let profile = origin.profile();
        if profile.borrows_default_kernel && request.name == self.config.default_image {
            return Err(ImageError::BorrowsDefaultKernel(request.name));
        }
        self.refuse_registered(&request.name)?;
        let mirrors = Mirrors {
            debian: self.config.debian_mirror.clone(),
            void: self.config.void_mirror.clone(),
        };
        origin.check_mirror(request.mirror.as_deref(), &mirrors)?;
        // Before the build lock: this may build the default image itself.
        let kernel = match profile.borrows_default_kernel {
            true => Some(self.default_kernel(&reporter).await?),
            false => None,
        };
        let _build = self.lock.lock().await;
        self.refuse_registered(&request.name)?;
        let packages = self.packages(&request, profile)?;
        if profile.apt_list {
            // Every name is an apt name, before any tool runs.
            banger_image::packages::debian_packages(&[], &packages)?;
        }
        let size = request
            .size
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(ImageError::Size)?;
        if let Some(size) = size.filter(|s| *s < 512 << 20) {
            return Err(ImageError::SizeTooSmall(banger_api::format_size(size)));
        }
        let source = origin.source(
            request.mirror.clone(),
            &mirrors,
            &self.config.debian_suite,
            kernel,
            request.kernel.clone(),
        )?;
        let build = BuildRequest {
            name: request.name.clone(),
            packages,
            images_dir: self.dir(),
            log: self
                .paths
                .image_build_logs()
                .join(format!("{}.log", request.name)),
            size,
            agent: self.agent_binary()?,
            npm_registry: self
                .config
                .npm_registry
                .clone()
                .unwrap_or_else(|| banger_image::tools::DEFAULT_REGISTRY.into()),
            download_cache: self.paths.cache_dir.join("downloads"),
            source,
        };
        if cached_image(&build).is_none() {
            // A rebuild replaces the base disk under existing VMs' overlays.
            let users = self.users_of(&request.name)?;
            if !users.is_empty() {
                return Err(ImageError::WouldChange {
                    image: request.name,
                    users,
                });
            }
            tools::require_all(profile.tools)?;
            tools::require_all(IMAGE_TOOLS)?;
        }
        let forward = reporter.clone();
        let image = build_image(self.runner.clone(), &build, &move |p| forward.forward(p)).await?;
        let before = self.store.get_image(&image.name)?;
        self.store.put_image(&image)?;
        if before.is_some_and(|old| old.created_at != image.created_at) {
            self.drop_warm(&image.name);
        }
        tracing::info!(image = %image.name, kernel = %image.kernel_version, "image ready");
        Ok(image)
    }

    /// The package list: `--packages`, else (for apt lists)
    /// `default_packages_file`, else the profile's; `--docker` adds Docker.
    fn packages(&self, request: &BuildImageRequest, profile: &Profile) -> Result<String> {
        let file = request.packages.clone().or_else(|| {
            profile
                .apt_list
                .then(|| self.config.default_packages_file.clone())
                .flatten()
        });
        let mut packages = match file {
            Some(path) => std::fs::read_to_string(&path)
                .map_err(|source| ImageError::Packages { path, source })?,
            None => profile.default_packages.to_string(),
        };
        if request.docker {
            packages.push_str("\n# --docker\n");
            for p in profile.docker_packages {
                packages.push_str(p);
                packages.push('\n');
            }
        }
        Ok(packages)
    }

    /// The default image's kernel, which some origins boot (the default
    /// image is built first when missing).
    async fn default_kernel(&self, reporter: &Reporter) -> Result<BaseKernel> {
        let default = self.ensure(&self.config.default_image, reporter).await?;
        Ok(BaseKernel {
            vmlinux: default.kernel,
            initrd: default.initrd,
            version: default.kernel_version,
            rootfs: default.rootfs,
        })
    }

    /// A build never takes over the name of an image registered from the
    /// user's own files.
    fn refuse_registered(&self, name: &str) -> Result<()> {
        match self.store.get_image(name)? {
            Some(image) if !image.managed => Err(ImageError::Registered(image.name)),
            _ => Ok(()),
        }
    }
}
