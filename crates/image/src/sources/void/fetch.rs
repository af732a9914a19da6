//! Getting packages from a Void mirror, each checked against the sha256 its
//! repository index gives and cached between builds, and the static XBPS
//! tools (Void's `xbps-static` package, from the musl repository, checked
//! the same way).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::archive::decompress;
use super::repo::{self, Package, RepoError};
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
    #[error(transparent)]
    Index(#[from] RepoError),
    #[error("the Void repository at {0} has no xbps-static package")]
    NoXbpsStatic(String),
    #[error("{} has no usr/bin/xbps-install.static", .0.display())]
    NoXbpsInstall(PathBuf),
    #[error("cannot unpack {}", .path.display())]
    Unpack {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    std::fs::write(&dest, bytes).map_err(|source| FetchError::Unpack {
        path: dest.clone(),
        source,
    })?;
    Ok(dest)
}

/// Void's static `xbps-install`, from the `xbps-static` package of the
/// mirror's musl repository, written to `dir`; returns its path.
pub fn xbps_static(mirror: &str, cache: &Path, dir: &Path) -> Result<PathBuf, FetchError> {
    let repo_url = repo::musl_repo_url(mirror);
    let index = repo::fetch_index(&repo_url, repo::STATIC_ARCH)?;
    let package_info = index
        .packages
        .get("xbps-static")
        .ok_or_else(|| FetchError::NoXbpsStatic(repo_url.clone()))?;
    let unpack = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Unpack { path, source }
    };
    std::fs::create_dir_all(dir).map_err(unpack(dir))?;
    let file = package(package_info, &repo_url, cache, dir)?;
    let archive = std::fs::read(&file).map_err(unpack(&file))?;
    let tar = decompress(&archive).map_err(unpack(&file))?;
    let dest = dir.join("xbps-install.static");
    for entry in tar::Archive::new(tar.as_slice())
        .entries()
        .map_err(unpack(&file))?
    {
        let mut entry = entry.map_err(unpack(&file))?;
        let path = entry.path().map_err(unpack(&file))?.into_owned();
        // Only the regular file itself: never a link the archive could
        // point elsewhere.
        if entry.header().entry_type() != tar::EntryType::Regular
            || path.to_string_lossy().trim_start_matches("./") != "usr/bin/xbps-install.static"
        {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(unpack(&file))?;
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&dest);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&dest)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(unpack(&dest))?;
        let _ = std::fs::remove_file(&file);
        return Ok(dest);
    }
    Err(FetchError::NoXbpsInstall(file))
}
