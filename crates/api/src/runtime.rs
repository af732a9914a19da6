//! The runtime bundle: its manifest (`bundle.json`), and what the daemon
//! says of the bundle it uses.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `bundle.json`: paths relative to the bundle directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    pub format: u32,
    pub default_kernel: String,
    pub default_initrd: String,
    pub default_rootfs: String,
    pub default_work_seed: String,
    pub default_packages: String,
    pub kernel_version: String,
    pub packages_sha256: String,
    /// VMM binaries shipped in the bundle (e.g. `firecracker`).
    #[serde(default)]
    pub binaries: Vec<String>,
    /// The rootfs carries the guest agent.
    #[serde(default)]
    pub agent: bool,
    /// Its agent speaks the serial channel too ([`crate::Image::agent_serial`]).
    #[serde(default)]
    pub agent_serial: bool,
}

/// The runtime bundle the daemon uses (`banger runtime show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Where the bundle is, or would be installed.
    pub dir: PathBuf,
    /// The rule that chose `dir` (`BANGER_RUNTIME_DIR`, `runtime_dir`, ...).
    pub source: String,
    /// The installed bundle's manifest, when `dir` holds a valid one.
    pub manifest: Option<BundleManifest>,
    /// Why `dir` holds no usable bundle (absent, or broken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether `dir` exists at all (a broken bundle, rather than none).
    #[serde(default)]
    pub exists: bool,
}

/// `banger runtime fetch`: install the bundle a manifest describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRuntimeRequest {
    /// An absolute path to the manifest (`url` + `sha256`).
    pub manifest: PathBuf,
}
