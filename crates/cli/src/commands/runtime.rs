//! `banger runtime ...`: the runtime bundle.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use banger_api::FetchRuntimeRequest;
use banger_runtime::package;
use clap::Subcommand;

use crate::{autostart, output};

#[derive(Subcommand)]
pub enum RuntimeCommand {
    /// Where the bundle is and what it holds
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Pack an image (and firecracker, when found) into a bundle archive; prints its sha256
    Package {
        #[arg(long, default_value = "default")]
        image: String,
        #[arg(long, default_value = "dist/banger-runtime.tar.gz")]
        out: PathBuf,
    },
    /// Install a bundle from a manifest (url + sha256), verifying the checksum first
    Fetch {
        #[arg(long)]
        manifest: PathBuf,
    },
}

pub async fn run(cmd: RuntimeCommand) -> anyhow::Result<ExitCode> {
    let client = autostart::connect().await?;
    match cmd {
        RuntimeCommand::Show { json } => {
            let info = client.runtime().await?;
            if json {
                output::json(&info);
                return Ok(ExitCode::SUCCESS);
            }
            println!("dir      {} ({})", info.dir.display(), info.source);
            match (&info.manifest, &info.error) {
                (Some(b), _) => {
                    println!("kernel   {} ({})", b.default_kernel, b.kernel_version);
                    println!("rootfs   {}", b.default_rootfs);
                    println!(
                        "binaries {}",
                        if b.binaries.is_empty() {
                            "-".into()
                        } else {
                            b.binaries.join(", ")
                        }
                    );
                }
                (None, Some(e)) if !info.exists => println!("no bundle installed ({e})"),
                (None, e) => {
                    return Err(anyhow!(
                        "the bundle is broken: {}",
                        e.as_deref().unwrap_or("unknown")
                    ))
                }
            }
        }
        RuntimeCommand::Package { image, out } => {
            let images = client.list_images().await?;
            let image = images
                .into_iter()
                .find(|i| i.name == image)
                .ok_or_else(|| anyhow!("no image named {image:?}\nhint: `banger image build --name {image}` builds it"))?;
            let packages = image.rootfs.with_file_name("packages.apt");
            let packages = std::fs::read_to_string(&packages).unwrap_or_default();
            let binaries: Vec<PathBuf> = banger_host::tools::find("firecracker")
                .into_iter()
                .collect();
            let sha = package::package(&image, &packages, &binaries, &out)
                .context("packaging the runtime bundle")?;
            println!("wrote {}", out.display());
            println!("sha256 {sha}");
        }
        RuntimeCommand::Fetch { manifest } => {
            // The daemon reads the manifest: give it an absolute path.
            let request = FetchRuntimeRequest {
                manifest: std::path::absolute(&manifest)?,
            };
            let info = client.fetch_runtime(&request).await?;
            println!(
                "installed the runtime bundle in {} ({})",
                info.dir.display(),
                info.source
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
