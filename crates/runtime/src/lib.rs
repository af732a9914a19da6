//! The runtime bundle: a directory holding `bundle.json` and the artifacts
//! it names (kernel, initrd, rootfs, work seed, package list, VMM binaries
//! that are present), so a machine can run VMs without building an image.
//!
//! - [`resolve`] — which directory is the bundle
//! - [`package`] — pack an image into `banger-runtime.tar.gz`, with its sha256
//! - [`fetch`] — install a bundle from a manifest (`url` + `sha256`), verified

pub mod fetch;
pub mod package;
pub mod resolve;

use std::path::{Path, PathBuf};

use banger_api::Image;

pub const MANIFEST: &str = "bundle.json";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A manifest (`bundle.json`, or a fetch manifest) that does not parse.
    #[error("{} is not a valid manifest: {message}", .path.display())]
    BadManifest { path: PathBuf, message: String },
    /// The fetch manifest is the template, with no url or sha256 set.
    #[error("{} has an empty url or sha256 (it is the template)", .0.display())]
    Template(PathBuf),
    #[error("bundle {} lacks {file}, which bundle.json names", .dir.display())]
    Incomplete { dir: PathBuf, file: String },
    #[error("cannot download {url}")]
    Download {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("checksum mismatch for {url}: the manifest says {want}, the archive is {got}; nothing was installed and {} is unchanged", .target.display())]
    Checksum {
        url: String,
        want: String,
        got: String,
        target: PathBuf,
    },
}

impl BundleError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            BundleError::Template(_) => {
                Some("copy it, set url and the sha256 that `banger runtime package` printed")
            }
            BundleError::Incomplete { .. } | BundleError::BadManifest { .. } => Some(
                "reinstall it with `banger runtime fetch --manifest FILE`, or remove the directory",
            ),
            _ => None,
        }
    }
}

impl BundleError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BundleError::Io {
            context: context.into(),
            source,
        }
    }
}

pub use banger_api::runtime::BundleManifest;

/// A bundle directory whose manifest was read and checked.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: BundleManifest,
}

impl Bundle {
    /// Reads `bundle.json` and checks that every file it names exists.
    pub fn open(dir: &Path) -> Result<Bundle, BundleError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| BundleError::io(format!("cannot read {}", path.display()), e))?;
        let manifest: BundleManifest =
            serde_json::from_str(&text).map_err(|e| BundleError::BadManifest {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let bundle = Bundle {
            dir: dir.to_path_buf(),
            manifest,
        };
        for file in bundle.files() {
            if !dir.join(&file).exists() {
                return Err(BundleError::Incomplete {
                    dir: dir.to_path_buf(),
                    file,
                });
            }
        }
        Ok(bundle)
    }

    /// Every artifact the manifest names, relative to the bundle directory.
    pub fn files(&self) -> Vec<String> {
        let m = &self.manifest;
        let mut files = vec![
            m.default_kernel.clone(),
            m.default_initrd.clone(),
            m.default_rootfs.clone(),
            m.default_work_seed.clone(),
            m.default_packages.clone(),
        ];
        files.extend(m.binaries.iter().cloned());
        files
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// The bundle's default image, as an (unmanaged) image record.
    pub fn default_image(&self, name: &str) -> Image {
        let m = &self.manifest;
        Image {
            name: name.to_string(),
            managed: false,
            rootfs: self.path(&m.default_rootfs),
            kernel: self.path(&m.default_kernel),
            initrd: self.path(&m.default_initrd),
            kernel_version: m.kernel_version.clone(),
            work_seed: Some(self.path(&m.default_work_seed)),
            packages_sha256: m.packages_sha256.clone(),
            created_at: std::fs::metadata(self.dir.join(MANIFEST))
                .and_then(|m| m.modified())
                .map(time::OffsetDateTime::from)
                .unwrap_or_else(|_| time::OffsetDateTime::now_utc()),
            agent: m.agent,
            agent_serial: m.agent_serial,
            warm: false,
        }
    }
}
