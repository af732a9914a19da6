//! Getting files from a Void mirror: over HTTP(S), or from a local
//! directory (a mirror on disk, `file://` or a plain path), checked against
//! the hashes the index gives, cached between builds.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::repo::Package;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot download {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} does not match the sha256 the repository index gives ({want}, got {got}); nothing was installed")]
    Mismatch {
        url: String,
        want: String,
        got: String,
    },
    #[error("{0}")]
    Other(String),
}

/// A local mirror's directory, when `url` names one.
fn local(url: &str) -> Option<&Path> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(Path::new(path));
    }
    (!url.contains("://")).then_some(Path::new(url))
}

/// The bytes at `url` (at most `limit` of them).
pub fn get(url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
    let unreachable = |reason: String| FetchError::Unreachable {
        url: url.to_string(),
        reason,
    };
    let mut bytes = Vec::new();
    if let Some(path) = local(url) {
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut bytes))
            .map_err(|e| unreachable(e.to_string()))?;
        return Ok(bytes);
    }
    let agent = banger_host::http::agent(Duration::from_secs(15), Duration::from_secs(600));
    let response = agent
        .get(url)
        .call()
        .map_err(|e| unreachable(e.to_string()))?;
    response
        .into_body()
        .into_reader()
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(bytes)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Decompresses what xbps writes (zstd by default; gzip and xz too; plain
/// tar passes through).
pub fn decompress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match bytes {
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            ruzstd::StreamingDecoder::new(bytes)
                .map_err(|e| format!("zstd: {e}"))?
                .read_to_end(&mut out)
                .map_err(|e| format!("zstd: {e}"))?;
        }
        [0x1f, 0x8b, ..] => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
            lzma_rs::xz_decompress(&mut &bytes[..], &mut out).map_err(|e| format!("xz: {e}"))?;
        }
        _ => out = bytes.to_vec(),
    }
    Ok(out)
}

/// Puts `package` into `repo_dir` (the local repository xbps installs
/// from): from the cache when it is there and intact, else downloaded from
/// `repo_url`, checked against the index's sha256, and cached.
pub fn package(
    package: &Package,
    repo_url: &str,
    cache: &Path,
    repo_dir: &Path,
) -> Result<PathBuf, FetchError> {
    let name = package.file_name();
    let cached = cache.join(&name);
    let dest = repo_dir.join(&name);
    let io = |what: &str, path: &Path, e: std::io::Error| {
        FetchError::Other(format!("cannot {what} {}: {e}", path.display()))
    };
    let intact = std::fs::read(&cached)
        .map(|b| sha256_hex(&b) == package.sha256)
        .unwrap_or(false);
    if !intact {
        let url = format!("{}/{name}", repo_url.trim_end_matches('/'));
        let bytes = get(&url, 4 << 30)?;
        let got = sha256_hex(&bytes);
        if got != package.sha256 {
            return Err(FetchError::Mismatch {
                url,
                want: package.sha256.clone(),
                got,
            });
        }
        std::fs::create_dir_all(cache).map_err(|e| io("create", cache, e))?;
        let partial = cached.with_extension("part");
        std::fs::write(&partial, &bytes).map_err(|e| io("write", &partial, e))?;
        std::fs::rename(&partial, &cached).map_err(|e| io("write", &cached, e))?;
    }
    // A hard link costs nothing; a cache on another filesystem is copied.
    let _ = std::fs::remove_file(&dest);
    if std::fs::hard_link(&cached, &dest).is_err() {
        std::fs::copy(&cached, &dest).map_err(|e| io("copy", &dest, e))?;
    }
    Ok(dest)
}

/// The static XBPS tools Void publishes beside its repositories.
pub fn xbps_static_url(mirror: &str) -> String {
    format!(
        "{}/static/xbps-static-latest.x86_64-musl.tar.xz",
        mirror.trim_end_matches('/')
    )
}

/// Downloads the static XBPS tools and unpacks `xbps-install.static` into
/// `dir`; returns its path.
pub fn xbps_static(mirror: &str, dir: &Path) -> Result<PathBuf, FetchError> {
    let url = xbps_static_url(mirror);
    let archive = get(&url, 256 << 20)?;
    let tar = decompress(&archive).map_err(|e| FetchError::Other(format!("{url}: {e}")))?;
    let other = |e: std::io::Error| FetchError::Other(format!("{url}: {e}"));
    let dest = dir.join("xbps-install.static");
    for entry in tar::Archive::new(tar.as_slice()).entries().map_err(other)? {
        let mut entry = entry.map_err(other)?;
        let path = entry.path().map_err(other)?.into_owned();
        if path.file_name().is_some_and(|n| n == "xbps-install.static") {
            std::fs::create_dir_all(dir).map_err(other)?;
            entry.unpack(&dest).map_err(other)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
                .map_err(other)?;
            return Ok(dest);
        }
    }
    Err(FetchError::Other(format!(
        "{url} has no xbps-install.static inside"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_mirrors_are_paths_or_file_urls() {
        assert_eq!(local("/srv/void"), Some(Path::new("/srv/void")));
        assert_eq!(local("file:///srv/void"), Some(Path::new("/srv/void")));
        assert_eq!(local("https://repo-default.voidlinux.org"), None);
    }

    #[test]
    fn plain_and_gzip_data_decompress() {
        assert_eq!(decompress(b"plain tar").unwrap(), b"plain tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"hello").unwrap();
        assert_eq!(decompress(&gz.finish().unwrap()).unwrap(), b"hello");
    }
}
