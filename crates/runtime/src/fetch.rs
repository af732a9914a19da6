//! Installing a bundle from a manifest file:
//!
//! ```toml
//! url = "./dist/banger-runtime.tar.gz"   # relative to this file, absolute, file://, http:// or https://
//! sha256 = "<printed by banger runtime package>"
//! ```
//!
//! The archive is downloaded and verified *before* anything changes; a
//! mismatch leaves the existing bundle exactly as it was.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::package::{hex, Hashing};
use crate::{Bundle, BundleError};

#[derive(Debug, Deserialize)]
struct FetchManifest {
    #[serde(default)]
    url: String,
    #[serde(default)]
    sha256: String,
}

enum Source {
    File(PathBuf),
    Http(String),
}

fn source(url: &str, manifest: &Path) -> Source {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Source::Http(url.to_string());
    }
    let path = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
    if path.is_absolute() {
        Source::File(path)
    } else {
        Source::File(manifest.parent().unwrap_or(Path::new(".")).join(path))
    }
}

/// Installs the bundle described by `manifest` into `target`.
pub fn fetch(manifest: &Path, target: &Path) -> Result<Bundle, BundleError> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| BundleError::io(format!("cannot read {}", manifest.display()), e))?;
    let spec: FetchManifest = toml::from_str(&text).map_err(|e| BundleError::BadManifest {
        path: manifest.to_path_buf(),
        message: e.message().to_string(),
    })?;
    if spec.url.trim().is_empty() || spec.sha256.trim().is_empty() {
        return Err(BundleError::Template(manifest.to_path_buf()));
    }
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| BundleError::io(format!("cannot create {}", parent.display()), e))?;
    let download = parent.join(format!(".banger-runtime-download-{}", std::process::id()));
    let staging = parent.join(format!(".banger-runtime-new-{}", std::process::id()));
    let result = install(&spec, manifest, &download, &staging, target);
    let _ = std::fs::remove_file(&download);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn install(
    spec: &FetchManifest,
    manifest: &Path,
    download: &Path,
    staging: &Path,
    target: &Path,
) -> Result<Bundle, BundleError> {
    let mut reader: Box<dyn Read> = match source(spec.url.trim(), manifest) {
        Source::File(path) => Box::new(File::open(&path).map_err(|e| {
            BundleError::io(
                format!("cannot open the bundle archive {}", path.display()),
                e,
            )
        })?),
        Source::Http(url) => {
            let response = banger_host::http::agent(
                std::time::Duration::from_secs(15),
                std::time::Duration::from_secs(3600),
            )
            .get(&url)
            .call()
            .map_err(|e| BundleError::Download {
                url: url.clone(),
                source: Box::new(e),
            })?;
            Box::new(response.into_body().into_reader())
        }
    };
    let file = File::create(download)
        .map_err(|e| BundleError::io(format!("cannot create {}", download.display()), e))?;
    let mut hashing = Hashing {
        inner: file,
        hasher: Sha256::new(),
    };
    std::io::copy(&mut reader, &mut hashing)
        .map_err(|e| BundleError::io(format!("cannot read {}", spec.url), e))?;
    hashing
        .flush()
        .map_err(|e| BundleError::io("flush download", e))?;
    let got = hex(&hashing.hasher.finalize());
    if !got.eq_ignore_ascii_case(spec.sha256.trim()) {
        return Err(BundleError::Checksum {
            url: spec.url.clone(),
            want: spec.sha256.trim().to_string(),
            got,
            target: target.to_path_buf(),
        });
    }
    let archive = File::open(download).map_err(|e| BundleError::io("reopen download", e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(archive))
        .unpack(staging)
        .map_err(|e| BundleError::io(format!("cannot unpack {}", spec.url), e))?;
    Bundle::open(staging)?;
    // Swap in the new bundle; the old one goes only once the new is in place.
    let old = target.with_file_name(format!(".banger-runtime-old-{}", std::process::id()));
    if target.exists() {
        std::fs::rename(target, &old)
            .map_err(|e| BundleError::io(format!("cannot move {} aside", target.display()), e))?;
    }
    if let Err(e) = std::fs::rename(staging, target) {
        let _ = std::fs::rename(&old, target);
        return Err(BundleError::io(
            format!("cannot install {}", target.display()),
            e,
        ));
    }
    let _ = std::fs::remove_dir_all(&old);
    Bundle::open(target)
}
