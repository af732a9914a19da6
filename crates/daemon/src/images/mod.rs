//! Images the daemon knows: the default one is built on first use; others
//! are built ([`build`]) or registered from files made elsewhere
//! ([`register`]).

mod register;
pub use register::{check_rootfs, register};

use std::path::PathBuf;
use std::sync::Arc;

use banger_api::names::validate_name;
use banger_api::{ApiError, BuildImageRequest, Image};
use banger_host::tools;
use banger_image::void::{BaseKernel, VoidSource};
use banger_image::{
    build_image, cached_image, BuildRequest, Source, DEFAULT_PACKAGES, VOID_PACKAGES,
};

use crate::app::App;
use crate::errors::{self, OpResult};
use crate::progress::Reporter;

/// The image called `name`, building the default image when it is missing.
pub async fn ensure(app: &Arc<App>, name: &str, reporter: &Reporter) -> OpResult<Image> {
    if let Some(image) = app.store.get_image(name).map_err(errors::store)? {
        return Ok(image);
    }
    if name == app.config.default_image {
        if let Some(bundle) = crate::app::runtime_bundle(&app.config) {
            let image = bundle.default_image(name);
            app.store.put_image(&image).map_err(errors::store)?;
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
    }
    if name != app.config.default_image {
        return Err(
            ApiError::not_found(format!("no image named {name:?}")).with_hint(
                "`banger image list` shows the images; `banger image build --name NAME` builds one",
            ),
        );
    }
    reporter.say(
        "image",
        format!("image {name} is not built yet; building it now (first run only)"),
        Some(0.0),
    );
    build(
        app,
        BuildImageRequest {
            name: name.to_string(),
            ..Default::default()
        },
        reporter.clone(),
    )
    .await
}

/// The guest agent images carry: `agent_bin`, else `banger-agent` beside
/// this daemon's executable, else in PATH.
fn agent_binary(app: &App) -> OpResult<PathBuf> {
    let found = match &app.config.agent_bin {
        Some(path) => banger_host::tools::find(&path.to_string_lossy()),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join(AGENT_NAME)))
            .filter(|p| p.is_file())
            .or_else(|| banger_host::tools::find(AGENT_NAME)),
    };
    found.ok_or_else(|| {
        ApiError::new(
            banger_api::ErrorCode::MissingTool,
            "the guest agent binary (banger-agent) was not found beside bangerd or in PATH",
        )
        .with_hint("install it with bangerd (`make install`), build it with `cargo build -p banger-agent`, or set agent_bin in config.toml")
    })
}

const AGENT_NAME: &str = "banger-agent";

/// Which distribution a build asks for.
fn wants_void(request: &BuildImageRequest) -> OpResult<bool> {
    match request.distro.as_deref() {
        None | Some("debian") => Ok(false),
        Some("void") => Ok(true),
        Some(other) => Err(ApiError::invalid(format!("unknown --distro {other:?}"))
            .with_hint("use --distro debian (the default) or --distro void (experimental)")),
    }
}

/// The default image's kernel, which Void images boot (the default image
/// is built first when missing).
async fn void_kernel(app: &Arc<App>, reporter: &Reporter) -> OpResult<BaseKernel> {
    let default = Box::pin(ensure(app, &app.config.default_image, reporter)).await?;
    Ok(BaseKernel {
        vmlinux: default.kernel.into(),
        initrd: default.initrd.into(),
        version: default.kernel_version,
        rootfs: default.rootfs.into(),
    })
}

fn build_request(
    app: &App,
    request: &BuildImageRequest,
    void_kernel: Option<BaseKernel>,
) -> OpResult<BuildRequest> {
    let void = void_kernel.is_some();
    let packages_file = request.packages.clone().map(Into::into).or_else(|| {
        // default_packages_file is an apt list: the default image's.
        (!void)
            .then(|| app.config.default_packages_file.clone())
            .flatten()
    });
    let packages = match packages_file {
        Some(path) => std::fs::read_to_string(&path).map_err(|e| {
            ApiError::invalid(format!("cannot read package file {}: {e}", path.display()))
                .with_hint(if void {
                    "pass an existing packages.void file"
                } else {
                    "pass an existing packages.apt file"
                })
        })?,
        None if void => VOID_PACKAGES.to_string(),
        None => DEFAULT_PACKAGES.to_string(),
    };
    let packages = match (request.docker, void) {
        (false, _) => packages,
        (true, true) => format!("{packages}\n# --docker\ndocker\ndocker-compose\n"),
        // Debian's kernel enables AppArmor, and Docker refuses to run
        // containers without its parser to load the default profile.
        (true, false) => format!("{packages}\n# --docker\ndocker.io\napparmor\n"),
    };
    let size = request
        .size
        .as_deref()
        .map(banger_api::parse_size)
        .transpose()?;
    if let Some(size) = size.filter(|s| *s < 512 << 20) {
        return Err(ApiError::invalid(format!(
            "--size {} is too small for a root filesystem",
            banger_api::format_size(size)
        ))
        .with_hint("use at least 512M; without --size the image is sized to fit"));
    }
    Ok(BuildRequest {
        name: request.name.clone(),
        packages,
        images_dir: app.images_dir(),
        log: app
            .paths
            .image_build_logs()
            .join(format!("{}.log", request.name)),
        mirror: request
            .mirror
            .clone()
            .or_else(|| app.config.debian_mirror.clone()),
        suite: app.config.debian_suite.clone(),
        size,
        agent: agent_binary(app)?,
        npm_registry: app
            .config
            .npm_registry
            .clone()
            .unwrap_or_else(|| banger_image::tools::DEFAULT_REGISTRY.into()),
        download_cache: app.paths.cache_dir.join("downloads"),
        source: match (void_kernel, &request.base_rootfs) {
            (Some(kernel), _) => Source::Void(VoidSource {
                mirror: void_mirror(app, request),
                kernel,
            }),
            (None, Some(base)) => Source::DebianBase(base.into()),
            (None, None) => Source::Debian,
        },
    })
}

pub async fn build(
    app: &Arc<App>,
    request: BuildImageRequest,
    reporter: Reporter,
) -> OpResult<Image> {
    validate_name(&request.name)?;
    let void = wants_void(&request)?;
    if let Some(base) = &request.base_rootfs {
        if void {
            return Err(
                ApiError::invalid("--base-rootfs and --distro void do not go together")
                    .with_hint("--base-rootfs takes a Debian root filesystem; drop one of them"),
            );
        }
        register::check_rootfs("--base-rootfs", base)?;
    }
    if void && request.name == app.config.default_image {
        return Err(ApiError::invalid(format!(
            "the Void image cannot be the default image {:?}: it boots the default image's kernel",
            request.name
        ))
        .with_hint("build it under another --name, e.g. --name void-exp"));
    }
    refuse_registered(app, &request.name)?;
    if void {
        banger_image::void::fetch::check_mirror(&void_mirror(app, &request)).map_err(|e| {
            ApiError::invalid(e).with_hint("pass --mirror https://... or a local mirror directory")
        })?;
    }
    // Before the build lock: this may build the default image itself.
    let void_kernel = match void {
        true => Some(void_kernel(app, &reporter).await?),
        false => None,
    };
    let _build = app.image_lock.lock().await;
    refuse_registered(app, &request.name)?;
    let build = build_request(app, &request, void_kernel)?;
    if cached_image(&build).is_none() {
        // A rebuild replaces the base disk under existing VMs' overlays.
        let users = users_of(app, &request.name)?;
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "image {} would change, but VMs use it: {}",
                request.name,
                users.join(", ")
            ))
            .with_hint("delete those VMs first, or build under another --name"));
        }
        let distro_tools = match (void, &request.base_rootfs) {
            // xbps comes from the mirror; the kernel modules come out of
            // the default image with debugfs.
            (true, _) => &["debugfs"][..],
            (false, Some(_)) => &["unshare", "chroot"][..],
            (false, None) => crate::doctor::IMAGE_TOOLS,
        };
        for tool in distro_tools.iter().chain(crate::doctor::VM_TOOLS) {
            tools::require(tool).map_err(errors::host)?;
        }
    }
    let forward = reporter.clone();
    let image = build_image(app.host.runner.clone(), &build, &move |p| {
        forward.forward(p)
    })
    .await
    .map_err(errors::build)?;
    app.store.put_image(&image).map_err(errors::store)?;
    tracing::info!(image = %image.name, kernel = %image.kernel_version, "image ready");
    Ok(image)
}

/// The Void mirror a build uses: `--mirror`, else `void_mirror`, else Void's.
fn void_mirror(app: &App, request: &BuildImageRequest) -> String {
    request
        .mirror
        .clone()
        .or_else(|| app.config.void_mirror.clone())
        .unwrap_or_else(|| banger_image::void::DEFAULT_MIRROR.into())
}

/// A build never takes over the name of an image registered from the
/// user's own files.
fn refuse_registered(app: &App, name: &str) -> OpResult<()> {
    match app.store.get_image(name).map_err(errors::store)? {
        Some(image) if !image.managed => Err(ApiError::conflict(format!(
            "image {} is registered from your own files; a build would replace it",
            image.name
        ))
        .with_hint("build under another --name, or `banger image delete` it first")),
        _ => Ok(()),
    }
}

/// The image called `name`, or a not-found error that says what exists.
pub fn get(app: &App, name: &str) -> OpResult<Image> {
    app.store
        .get_image(name)
        .map_err(errors::store)?
        .ok_or_else(|| {
            ApiError::not_found(format!("no image named {name:?}"))
                .with_hint("`banger image list` shows the images")
        })
}

/// Deletes an image no VM uses. A managed image's directory goes with it;
/// a registered image's files belong to the user and stay.
pub async fn delete(app: &Arc<App>, name: &str) -> OpResult<Image> {
    let _build = app.image_lock.lock().await;
    let image = get(app, name)?;
    // Under the allocation lock, no create can claim this image between
    // the check and the delete (claim re-reads the image under it).
    let alloc = app.alloc_lock.lock().await;
    let users = users_of(app, &image.name)?;
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "image {} is used by {}: {}",
            image.name,
            if users.len() == 1 { "a VM" } else { "VMs" },
            users.join(", ")
        ))
        .with_hint("delete those VMs first (`banger vm delete NAME`)"));
    }
    // The row goes first: a crash after it leaves only files, never an
    // image whose files are half gone.
    app.store.delete_image(&image.name).map_err(errors::store)?;
    drop(alloc);
    if image.managed {
        let dir = app.images_dir().join(&image.name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(errors::host(banger_host::HostError::path_io(
                    "cannot remove",
                    &dir,
                    e,
                )))
            }
        }
    }
    tracing::info!(image = %image.name, managed = image.managed, "image deleted");
    Ok(image)
}

/// Names of the VMs made from an image.
fn users_of(app: &App, image: &str) -> OpResult<Vec<String>> {
    Ok(app
        .store
        .list_vms()
        .map_err(errors::store)?
        .into_iter()
        .filter(|vm| vm.image == image)
        .map(|vm| vm.name)
        .collect())
}
