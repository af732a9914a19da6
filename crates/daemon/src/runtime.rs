//! The runtime bundle the daemon uses (see `banger_runtime`): found in the
//! order it documents, with `runtime_dir` from config.toml.

use banger_api::RuntimeInfo;

use crate::config::Config;

/// The bundle, when one is installed and valid.
pub fn bundle(config: &Config) -> Option<banger_runtime::Bundle> {
    let location = banger_runtime::resolve::locate_here(config.runtime_dir.clone());
    banger_runtime::Bundle::open(&location.dir).ok()
}

/// Where the bundle is (or would be installed) and what it holds.
pub fn info(config: &Config) -> RuntimeInfo {
    let location = banger_runtime::resolve::locate_here(config.runtime_dir.clone());
    let bundle = banger_runtime::Bundle::open(&location.dir);
    RuntimeInfo {
        exists: location.dir.exists(),
        source: location.source.to_string(),
        manifest: bundle.as_ref().ok().map(|b| b.manifest.clone()),
        error: bundle.err().map(|e| banger_api::error::chain(&e)),
        dir: location.dir,
    }
}
