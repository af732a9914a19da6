//! Developer tools that Debian does not package, taken from the npm
//! registry (reachable wherever image builds run): each one is a pinned
//! platform package holding a prebuilt static binary, verified against the
//! integrity hash pinned here before anything is installed. No node is
//! needed, in the guest or on the host. Downloads are cached by integrity.

use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha512};

/// npm's public registry; `npm_registry` in config.toml points elsewhere.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org";

/// A binary shipped in an npm package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NpmTool {
    /// The command name, installed as `/usr/local/bin/<name>`.
    pub name: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    /// npm's `dist.integrity` for that version (sha512 of the tarball).
    pub integrity: &'static str,
    /// The binary's path inside the tarball.
    pub member: &'static str,
}

/// What every built image gets.
pub const TOOLS: &[NpmTool] = &[
    NpmTool {
        name: "mise",
        package: "@jdxcode/mise-linux-x64",
        version: "2026.9.15",
        integrity: "sha512-ButPFGyztN0Rk/HOHvHuf+W80CkvQRAjbDWHvhGJc3PnL3e2KhCYZIOyjx8wPkhr9VJa/7sJZXpxtt5JLjsfaQ==",
        member: "package/bin/mise",
    },
    NpmTool {
        name: "opencode",
        package: "opencode-linux-x64",
        version: "1.18.33",
        integrity: "sha512-q/t/3p2CTxOT9y2kvjesb/LZab2+1eqlhhWA02Be6mjTtmYtNBcBsrI5yDo4Fw7ZSPBW2oyMIGMNRqiKQjiAWw==",
        member: "package/bin/opencode",
    },
];

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Unreachable(#[from] crate::download::Unreachable),
    #[error("{url} does not match its pinned integrity {want} (got {got}); nothing was installed")]
    Mismatch {
        url: String,
        want: String,
        got: String,
    },
    #[error("cannot install {package} {version}: {what}")]
    Install {
        package: &'static str,
        version: &'static str,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{package} {version} has no {member} in its tarball")]
    NoBinary {
        package: &'static str,
        version: &'static str,
        member: &'static str,
    },
}

impl NpmTool {
    /// `<registry>/<package>/-/<package basename>-<version>.tgz`, npm's layout.
    pub fn tarball_url(&self, registry: &str) -> String {
        let base = self.package.rsplit('/').next().unwrap_or(self.package);
        format!(
            "{}/{}/-/{base}-{}.tgz",
            registry.trim_end_matches('/'),
            self.package,
            self.version
        )
    }
}

/// npm's integrity string (`sha512-<base64>`) of some bytes.
pub fn integrity_of(bytes: &[u8]) -> String {
    let digest = Sha512::digest(bytes);
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The verified tarball of `tool`: from the cache when it is there and
/// intact, else downloaded (and cached).
pub fn fetch(tool: &NpmTool, registry: &str, cache: &Path) -> Result<Vec<u8>, ToolError> {
    use crate::download::{verified, VerifyError};
    // No tool tarball comes near 1 GiB; a registry sending more is broken.
    verified(
        &tool.tarball_url(registry),
        1 << 30,
        &cache_path(tool, cache),
        integrity_of,
        tool.integrity,
    )
    .map_err(|e| match e {
        VerifyError::Unreachable(e) => ToolError::Unreachable(e),
        VerifyError::Mismatch { url, got } => ToolError::Mismatch {
            url,
            want: tool.integrity.into(),
            got,
        },
    })
}

fn cache_path(tool: &NpmTool, cache: &Path) -> PathBuf {
    cache.join(format!("{}-{}.tgz", tool.name, tool.version))
}

/// Writes the tool's binary from its (verified) tarball to
/// `<root>/usr/local/bin/<name>`, mode 0755.
pub fn install(tool: &NpmTool, tarball: &[u8], root: &Path) -> Result<PathBuf, ToolError> {
    use std::os::unix::fs::PermissionsExt;
    let other = |what: &'static str, source: std::io::Error| ToolError::Install {
        package: tool.package,
        version: tool.version,
        what,
        source,
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    let dest = root.join("usr/local/bin").join(tool.name);
    std::fs::create_dir_all(dest.parent().expect("has a parent"))
        .map_err(|e| other("create usr/local/bin", e))?;
    for entry in archive.entries().map_err(|e| other("read tarball", e))? {
        let mut entry = entry.map_err(|e| other("read tarball", e))?;
        let path = entry.path().map_err(|e| other("read tarball", e))?;
        if path == Path::new(tool.member) {
            let partial = dest.with_extension("part");
            entry
                .unpack(&partial)
                .map_err(|e| other("unpack the binary", e))?;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| other("chmod", e))?;
            std::fs::rename(&partial, &dest).map_err(|e| other("install", e))?;
            return Ok(dest);
        }
    }
    Err(ToolError::NoBinary {
        package: tool.package,
        version: tool.version,
        member: tool.member,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarball_urls_follow_npm_layout() {
        assert_eq!(
            TOOLS[0].tarball_url("https://registry.npmjs.org/"),
            "https://registry.npmjs.org/@jdxcode/mise-linux-x64/-/mise-linux-x64-2026.9.15.tgz"
        );
        assert_eq!(
            TOOLS[1].tarball_url("http://127.0.0.1:4873"),
            "http://127.0.0.1:4873/opencode-linux-x64/-/opencode-linux-x64-1.18.33.tgz"
        );
    }

    #[test]
    fn integrity_is_npm_sha512_base64() {
        // `printf hello | openssl dgst -sha512 -binary | base64`
        assert_eq!(
            integrity_of(b"hello"),
            "sha512-m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw=="
        );
    }
}
