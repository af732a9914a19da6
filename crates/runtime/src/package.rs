//! Packing an image (and any VMM binaries) into a bundle archive.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use banger_api::Image;
use sha2::{Digest, Sha256};

use crate::{BundleError, BundleManifest, MANIFEST};

/// A writer that hashes what passes through it.
pub(crate) struct Hashing<W> {
    pub inner: W,
    pub hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `out` (a `.tar.gz`) holding `bundle.json`, the image's kernel,
/// initrd, rootfs, work seed and package list, and `binaries`. Returns the
/// archive's sha256. The archive appears only when complete.
pub fn package(
    image: &Image,
    packages: &str,
    binaries: &[PathBuf],
    out: &Path,
) -> Result<String, BundleError> {
    let manifest = BundleManifest {
        format: 1,
        default_kernel: "vmlinux".into(),
        default_initrd: "initrd.img".into(),
        default_rootfs: "rootfs.ext4".into(),
        default_work_seed: "work-seed".into(),
        default_packages: "packages.apt".into(),
        kernel_version: image.kernel_version.clone(),
        packages_sha256: image.packages_sha256.clone(),
        agent: image.agent,
        agent_serial: image.agent_serial,
        binaries: binaries
            .iter()
            .filter_map(|b| b.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| BundleError::io(format!("cannot create {}", parent.display()), e))?;
    }
    let partial = out.with_extension("partial");
    let file = File::create(&partial)
        .map_err(|e| BundleError::io(format!("cannot create {}", partial.display()), e))?;
    let result = (|| -> std::io::Result<String> {
        let hashing = Hashing {
            inner: file,
            hasher: Sha256::new(),
        };
        let gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, json.as_slice())?;
        tar.append_path_with_name(&image.kernel, &manifest.default_kernel)?;
        tar.append_path_with_name(&image.initrd, &manifest.default_initrd)?;
        tar.append_path_with_name(&image.rootfs, &manifest.default_rootfs)?;
        match &image.work_seed {
            Some(seed) => tar.append_dir_all(&manifest.default_work_seed, seed)?,
            // /root starts empty: the bundle holds an empty seed directory.
            None => {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mode(0o700);
                header.set_cksum();
                tar.append_data(&mut header, &manifest.default_work_seed, std::io::empty())?;
            }
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(packages.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, &manifest.default_packages, packages.as_bytes())?;
        for (binary, name) in binaries.iter().zip(&manifest.binaries) {
            tar.append_path_with_name(binary, name)?;
        }
        let gz = tar.into_inner()?;
        let mut hashing = gz.finish()?;
        hashing.flush()?;
        hashing.inner.sync_all()?;
        Ok(hex(&hashing.hasher.finalize()))
    })();
    match result {
        Ok(sha) => {
            std::fs::rename(&partial, out)
                .map_err(|e| BundleError::io(format!("cannot write {}", out.display()), e))?;
            Ok(sha)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(BundleError::io(format!("cannot pack {}", out.display()), e))
        }
    }
}
