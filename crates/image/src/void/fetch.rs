//! Getting packages from a Void mirror, each checked against the sha256 its
//! repository index gives and cached between builds, and the static XBPS
//! tools (Void's `xbps-static` package, from the musl repository, checked
//! the same way).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::repo::{self, Package};
use crate::download::{self, sha256_hex};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Unreachable(#[from] download::Unreachable),
    #[error("{url} does not match the sha256 the repository index gives ({want}, got {got}); nothing was installed")]
    Mismatch {
        url: String,
        want: String,
        got: String,
    },
    #[error("{0}")]
    Other(String),
}

/// Void's packages are signed, but its index is not, and banger checks
/// packages against the index: the index must come over a channel nobody
/// can change on the way. Plain HTTP is accepted only on loopback (a local
/// proxy or test mirror).
pub fn check_mirror(mirror: &str) -> Result<(), String> {
    if crate::download::local(mirror).is_some() || !is_plain_http(mirror) || is_loopback(mirror) {
        return Ok(());
    }
    Err(format!(
        "the Void mirror {mirror} is plain HTTP: anyone on the way could change its index and with it every package; use an https:// mirror or a local mirror directory"
    ))
}

fn is_plain_http(url: &str) -> bool {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.scheme_str().map(|s| s.eq_ignore_ascii_case("http")))
        .unwrap_or(true) // unparsable: not trusted as HTTPS
}

/// Whether a URL's host (user-info aside) is this machine's loopback.
pub fn is_loopback(url: &str) -> bool {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_ascii_lowercase))
        .is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
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
/// `repo_url`, checked against the index's sha256, and cached. (The index
/// was checked: the file name is a plain name.)
pub fn package(
    package: &Package,
    repo_url: &str,
    cache: &Path,
    repo_dir: &Path,
) -> Result<PathBuf, FetchError> {
    let name = package.file_name();
    let cached = cache.join(&name);
    let dest = repo_dir.join(&name);
    let url = format!("{}/{name}", repo_url.trim_end_matches('/'));
    let bytes = download::verified(&url, 4 << 30, &cached, sha256_hex, &package.sha256).map_err(
        |e| match e {
            download::VerifyError::Unreachable(e) => FetchError::Unreachable(e),
            download::VerifyError::Mismatch { url, got } => FetchError::Mismatch {
                url,
                want: package.sha256.clone(),
                got,
            },
        },
    )?;
    std::fs::write(&dest, bytes)
        .map_err(|e| FetchError::Other(format!("cannot write {}: {e}", dest.display())))?;
    Ok(dest)
}

/// Void's static `xbps-install`, from the `xbps-static` package of the
/// mirror's musl repository, written to `dir`; returns its path.
pub fn xbps_static(mirror: &str, cache: &Path, dir: &Path) -> Result<PathBuf, FetchError> {
    let repo_url = repo::musl_repo_url(mirror);
    let index = repo::fetch_index(&repo_url, repo::STATIC_ARCH).map_err(|e| match e {
        repo::RepoError::Fetch(fetch) => fetch,
        other => FetchError::Other(other.to_string()),
    })?;
    let package_info = index.packages.get("xbps-static").ok_or_else(|| {
        FetchError::Other(format!(
            "the Void repository at {repo_url} has no xbps-static package"
        ))
    })?;
    std::fs::create_dir_all(dir)
        .map_err(|e| FetchError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let file = package(package_info, &repo_url, cache, dir)?;
    let other = |e: String| FetchError::Other(format!("{}: {e}", file.display()));
    let archive = std::fs::read(&file).map_err(|e| other(e.to_string()))?;
    let tar = decompress(&archive).map_err(other)?;
    let dest = dir.join("xbps-install.static");
    for entry in tar::Archive::new(tar.as_slice())
        .entries()
        .map_err(|e| other(e.to_string()))?
    {
        let mut entry = entry.map_err(|e| other(e.to_string()))?;
        let path = entry.path().map_err(|e| other(e.to_string()))?.into_owned();
        // Only the regular file itself: never a link the archive could
        // point elsewhere.
        if entry.header().entry_type() != tar::EntryType::Regular
            || path.to_string_lossy().trim_start_matches("./") != "usr/bin/xbps-install.static"
        {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| other(e.to_string()))?;
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&dest);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&dest)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(|e| other(e.to_string()))?;
        let _ = std::fs::remove_file(&file);
        return Ok(dest);
    }
    Err(other("has no usr/bin/xbps-install.static".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_mirrors_are_refused_except_on_loopback() {
        assert!(check_mirror("https://repo-default.voidlinux.org").is_ok());
        assert!(check_mirror("/srv/void").is_ok());
        assert!(check_mirror("http://127.0.0.1:8080/void").is_ok());
        assert!(check_mirror("http://localhost/void").is_ok());
        assert!(check_mirror("http://[::1]/void").is_ok());
        // The scheme in any case; the host is the host, not the user-info.
        assert!(check_mirror("HTTP://mirror.example.org/").is_err());
        assert!(check_mirror("http://localhost:x@evil.example/").is_err());
        assert!(check_mirror("http://127.0.0.1@evil.example:8080/").is_err());
        let err = check_mirror("http://mirror.example.org/voidlinux").unwrap_err();
        assert!(
            err.contains("plain HTTP") && err.contains("https://"),
            "{err}"
        );
    }

    #[test]
    fn plain_and_gzip_data_decompress() {
        assert_eq!(decompress(b"plain tar").unwrap(), b"plain tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"hello").unwrap();
        assert_eq!(decompress(&gz.finish().unwrap()).unwrap(), b"hello");
    }
}
