//! Downloads for image builds (npm tools, Void packages): over HTTP(S)
//! with the system's CA roots, or from a local directory (a mirror on
//! disk: `file://` or a plain path). Callers check what they got against a
//! pinned or indexed hash before using it, then keep it in the cache.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Why a download failed; the source is the transport's own error.
#[derive(Debug, thiserror::Error)]
#[error("cannot download {url}")]
pub struct Unreachable {
    pub url: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A local directory's path, when `url` names one.
pub fn local(url: &str) -> Option<&Path> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(Path::new(path));
    }
    (!url.contains("://")).then_some(Path::new(url))
}

/// The bytes at `url` (at most `limit` of them).
pub fn get(url: &str, limit: u64) -> Result<Vec<u8>, Unreachable> {
    let unreachable = |source: Box<dyn std::error::Error + Send + Sync>| Unreachable {
        url: url.to_string(),
        source,
    };
    let mut bytes = Vec::new();
    if let Some(path) = local(url) {
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut bytes))
            .map_err(|e| unreachable(e.into()))?;
        return Ok(bytes);
    }
    let agent = banger_host::http::agent(Duration::from_secs(15), Duration::from_secs(600));
    let response = agent.get(url).call().map_err(|e| unreachable(e.into()))?;
    response
        .into_body()
        .into_reader()
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| unreachable(e.into()))?;
    Ok(bytes)
}

/// Why a checked download failed.
#[derive(Debug)]
pub enum VerifyError {
    Unreachable(Unreachable),
    /// The bytes at `url` hash to `got`, not to what was expected.
    Mismatch {
        url: String,
        got: String,
    },
}

/// The bytes of `url` that `digest` to `want`: from `cached` when it is
/// there and intact, else downloaded, checked and cached.
pub fn verified(
    url: &str,
    limit: u64,
    cached: &Path,
    digest: fn(&[u8]) -> String,
    want: &str,
) -> Result<Vec<u8>, VerifyError> {
    if let Ok(bytes) = std::fs::read(cached) {
        if digest(&bytes) == want {
            return Ok(bytes);
        }
    }
    let bytes = get(url, limit).map_err(VerifyError::Unreachable)?;
    let got = digest(&bytes);
    if got != want {
        return Err(VerifyError::Mismatch {
            url: url.to_string(),
            got,
        });
    }
    store(cached, &bytes);
    Ok(bytes)
}

/// What identifies a file without reading it: path, size and modification
/// time (a rebuilt file is a different one).
pub fn file_identity(path: &Path) -> String {
    let meta = std::fs::metadata(path).ok();
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{} size={} mtime={modified}",
        path.display(),
        meta.map(|m| m.len()).unwrap_or_default()
    )
}

/// Keeps verified bytes for the next build. The cache is an optimisation:
/// failing to fill it is logged, not an error.
pub fn store(cached: &Path, bytes: &[u8]) {
    let partial = cached.with_extension("part");
    let stored = cached
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&partial, bytes))
        .and_then(|()| std::fs::rename(&partial, cached));
    if let Err(e) = stored {
        let _ = std::fs::remove_file(&partial);
        tracing::warn!(path = %cached.display(), error = %e, "cannot cache a download");
    }
}

/// Lower-case hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
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
}
