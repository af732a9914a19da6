//! `banger runtime ...`: the runtime bundle.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use banger_api::paths::Paths;
use banger_daemon::config::Config;
use banger_runtime::{fetch, package, resolve, Bundle};
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

fn config() -> anyhow::Result<Config> {
    Config::load(&Paths::from_env().config_file()).map_err(|e| anyhow!(e.display_full()))
}

pub async fn run(cmd: RuntimeCommand) -> anyhow::Result<ExitCode> {
    let location = resolve::locate_here(config()?.runtime_dir);
    match cmd {
        RuntimeCommand::Show { json } => {
            let bundle = Bundle::open(&location.dir);
            if json {
                output::json(&serde_json::json!({
                    "dir": location.dir,
                    "source": location.source,
                    "manifest": bundle.as_ref().ok().map(|b| &b.manifest),
                    "error": bundle.as_ref().err().map(|e| e.to_string()),
                }));
            } else {
                println!("dir      {} ({})", location.dir.display(), location.source);
                match bundle {
                    Ok(b) => {
                        println!(
                            "kernel   {} ({})",
                            b.manifest.default_kernel, b.manifest.kernel_version
                        );
                        println!("rootfs   {}", b.manifest.default_rootfs);
                        println!(
                            "binaries {}",
                            if b.manifest.binaries.is_empty() {
                                "-".into()
                            } else {
                                b.manifest.binaries.join(", ")
                            }
                        );
                    }
                    Err(e) if !location.dir.exists() => println!("no bundle installed ({e})"),
                    Err(e) => return Err(anyhow!("the bundle is broken: {e}")),
                }
            }
        }
        RuntimeCommand::Package { image, out } => {
            let client = autostart::connect().await?;
            let images = client.list_images().await?;
            let image = images
                .into_iter()
                .find(|i| i.name == image)
                .ok_or_else(|| anyhow!("no image named {image:?}\nhint: `banger image build --name {image}` builds it"))?;
            let packages = Path::new(&image.rootfs).with_file_name("packages.apt");
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
            let bundle = fetch::fetch(&manifest, &location.dir)?;
            println!(
                "installed the runtime bundle in {} ({})",
                bundle.dir.display(),
                location.source
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
