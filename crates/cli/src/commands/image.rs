//! `banger image ...`

use std::process::ExitCode;

use banger_api::BuildImageRequest;
use clap::Subcommand;

use crate::autostart;
use crate::output::{self, ProgressView};

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build a managed image from Debian's mirror (or, experimental, Void's)
    Build {
        #[arg(long)]
        name: String,
        /// A packages.apt file (one Debian package per line)
        #[arg(long)]
        packages: Option<String>,
        /// Root filesystem size, e.g. 4G (default: just enough for the packages)
        #[arg(long)]
        size: Option<String>,
        /// Add Docker (docker.io) to the image
        #[arg(long)]
        docker: bool,
        /// debian (default) or void (experimental: a lean Void Linux under
        /// runit, booting the default image's kernel)
        #[arg(long, value_parser = ["debian", "void"])]
        distro: Option<String>,
        /// The distribution's mirror URL (Void: also a local mirror directory)
        #[arg(long)]
        mirror: Option<String>,
        /// Start from this Debian ext4 root filesystem instead of bootstrapping
        /// one (the packages are installed into it with its apt; needs root)
        #[arg(long, value_name = "PATH")]
        base_rootfs: Option<String>,
        /// Boot the image with this kernel instead of the distribution's: an
        /// x86-64 ELF vmlinux, with the PVH note or without (e.g.
        /// Firecracker's CI guest kernel, its drivers built in)
        #[arg(long, value_name = "VMLINUX")]
        kernel: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List images
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Register an image made outside banger (its files stay yours); an
    /// existing registered name is updated in place
    Register {
        #[arg(long)]
        name: String,
        /// An ext4 root filesystem image
        #[arg(long)]
        rootfs: String,
        /// A prepared /root: an ext4 image or a directory
        #[arg(long)]
        work_seed: Option<String>,
        /// The kernel (an x86-64 ELF vmlinux for Firecracker); the default image's when absent
        #[arg(long)]
        kernel: Option<String>,
        #[arg(long)]
        initrd: Option<String>,
        /// The kernel's modules directory (lib/modules/VERSION)
        #[arg(long)]
        modules: Option<String>,
        /// The package manifest the rootfs was made from
        #[arg(long)]
        packages: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// (Re)make the image's warm snapshot: a template guest booted once and
    /// saved, which `vm create` restores instead of booting
    Warm {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Show one image's files and origin
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete an image no VM uses (a managed image's files go with it)
    #[command(alias = "rm")]
    Delete { name: String },
}

pub async fn run(cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    let client = autostart::connect().await?;
    match cmd {
        ImageCommand::Build {
            name,
            packages,
            size,
            docker,
            distro,
            mirror,
            base_rootfs,
            kernel,
            json,
        } => {
            // The daemon reads these files: give it absolute paths.
            let base_rootfs = base_rootfs.map(std::path::absolute).transpose()?;
            let kernel = kernel.map(std::path::absolute).transpose()?;
            // A local mirror directory is read by the daemon: make it absolute.
            let mirror = match mirror {
                Some(m) if !m.contains("://") && std::path::Path::new(&m).is_dir() => {
                    Some(std::path::absolute(&m)?.display().to_string())
                }
                other => other,
            };
            let packages = packages.map(std::path::absolute).transpose()?;
            let mut view = ProgressView::new();
            let result = client
                .build_image(
                    &BuildImageRequest {
                        name,
                        packages,
                        size,
                        docker,
                        distro,
                        mirror,
                        base_rootfs,
                        kernel,
                    },
                    &mut |p| view.update(p),
                )
                .await;
            view.finish();
            let image = result?;
            if json {
                output::json(&image);
            } else {
                println!(
                    "image {} is ready (kernel {})",
                    image.name, image.kernel_version
                );
            }
        }
        ImageCommand::Register {
            name,
            rootfs,
            work_seed,
            kernel,
            initrd,
            modules,
            packages,
            json,
        } => {
            // The daemon resolves nothing relative to its own directory.
            let abs = |p: Option<String>| p.map(std::path::absolute).transpose();
            let request = banger_api::RegisterImageRequest {
                name,
                rootfs: std::path::absolute(&rootfs)?,
                work_seed: abs(work_seed)?,
                kernel: abs(kernel)?,
                initrd: abs(initrd)?,
                modules: abs(modules)?,
                packages: abs(packages)?,
            };
            let image = client.register_image(&request).await?;
            if json {
                output::json(&image);
            } else {
                println!(
                    "registered image {} ({})",
                    image.name,
                    image.rootfs.display()
                );
            }
        }
        ImageCommand::Warm { name, json } => {
            let mut view = ProgressView::new();
            let result = client.warm_image(&name, &mut |p| view.update(p)).await;
            view.finish();
            let image = result?;
            if json {
                output::json(&image);
            } else {
                println!(
                    "image {} is warm: `banger vm create` restores its snapshot (`--cold` boots)",
                    image.name
                );
            }
        }
        ImageCommand::Show { name, json } => {
            let image = client.get_image(&name).await?;
            if json {
                output::json(&image);
            } else {
                let kind = if image.managed {
                    "managed (built by banger)"
                } else {
                    "registered"
                };
                let path = |p: &std::path::Path| p.display().to_string();
                for (key, value) in [
                    ("name", image.name.clone()),
                    ("kind", kind.into()),
                    ("kernel", image.kernel_version.clone()),
                    ("rootfs", path(&image.rootfs)),
                    ("vmlinux", path(&image.kernel)),
                    ("initrd", path(&image.initrd)),
                    (
                        "work seed",
                        image.work_seed.as_deref().map(path).unwrap_or_default(),
                    ),
                    ("packages", image.packages_sha256.clone()),
                    (
                        "agent",
                        if image.agent {
                            "yes (vm exec, vm ports, guest stats)"
                        } else {
                            "no (VMs are ready when sshd answers)"
                        }
                        .into(),
                    ),
                    (
                        "warm",
                        if image.warm {
                            "yes (creates restore its snapshot)"
                        } else {
                            "no (creates boot; `banger image warm` makes a snapshot)"
                        }
                        .into(),
                    ),
                    ("created", banger_api::stamp::format(&image.created_at)),
                ] {
                    println!("{key:<10} {value}");
                }
            }
        }
        ImageCommand::Delete { name } => {
            let image = client.delete_image(&name).await?;
            println!("deleted image {}", image.name);
        }
        ImageCommand::List { json } => {
            let images = client.list_images().await?;
            if json {
                output::json(&images);
            } else {
                let rows: Vec<Vec<String>> = images
                    .iter()
                    .map(|i| {
                        vec![
                            i.name.clone(),
                            if i.managed {
                                "managed".into()
                            } else {
                                "registered".into()
                            },
                            i.kernel_version.clone(),
                            if i.warm { "yes" } else { "no" }.into(),
                            i.rootfs.display().to_string(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "KIND", "KERNEL", "WARM", "ROOTFS"], &rows);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
