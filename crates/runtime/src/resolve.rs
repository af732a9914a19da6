//! Which directory is the runtime bundle. In order: `BANGER_RUNTIME_DIR`,
//! `runtime_dir` from config, `../lib/banger` next to an installed binary,
//! `./runtime` at the root of a source checkout.

use std::path::{Path, PathBuf};

/// Where the bundle is (or would be installed), with the rule that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub dir: PathBuf,
    pub source: &'static str,
}

/// `exe` is the running binary; `config_dir` the `runtime_dir` config key.
pub fn locate(env: Option<PathBuf>, config_dir: Option<PathBuf>, exe: &Path) -> Location {
    if let Some(dir) = env.filter(|d| !d.as_os_str().is_empty()) {
        return Location {
            dir,
            source: "BANGER_RUNTIME_DIR",
        };
    }
    if let Some(dir) = config_dir {
        return Location {
            dir,
            source: "runtime_dir in config.toml",
        };
    }
    let bin_dir = exe.parent().unwrap_or(Path::new("/"));
    // A source checkout: <root>/target/<profile>/banger, bundle in <root>/runtime.
    if bin_dir
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "target")
    {
        if let Some(root) = bin_dir.parent().and_then(Path::parent) {
            return Location {
                dir: root.join("runtime"),
                source: "./runtime of the source checkout",
            };
        }
    }
    Location {
        dir: bin_dir.join("../lib/banger"),
        source: "../lib/banger next to the binary",
    }
}

/// [`locate`] from this process's environment.
pub fn locate_here(config_dir: Option<PathBuf>) -> Location {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/local/bin/banger"));
    locate(
        std::env::var_os("BANGER_RUNTIME_DIR").map(PathBuf::from),
        config_dir,
        &exe,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_documented_order() {
        let exe = Path::new("/home/u/.local/bin/banger");
        let env = Some(PathBuf::from("/env"));
        let config = Some(PathBuf::from("/config"));
        assert_eq!(
            locate(env.clone(), config.clone(), exe).dir,
            PathBuf::from("/env")
        );
        assert_eq!(locate(None, config, exe).dir, PathBuf::from("/config"));
        assert_eq!(
            locate(None, None, exe).dir,
            PathBuf::from("/home/u/.local/bin/../lib/banger")
        );
        let checkout = locate(None, None, Path::new("/src/banger/target/release/banger"));
        assert_eq!(checkout.dir, PathBuf::from("/src/banger/runtime"));
        assert_eq!(
            locate(Some(PathBuf::new()), None, exe).source,
            "../lib/banger next to the binary"
        );
    }
}
