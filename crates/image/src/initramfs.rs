//! The initramfs: busybox, the modules the distro kernel needs to reach its
//! disks, and banger's `/init` (see `assets/init`).

use std::collections::HashMap;
use std::path::Path;

use crate::cpio::{Entry, Writer, CHAR, DIR, FILE};
use crate::INIT_SCRIPT;

/// Modules the guest needs before `/` exists: virtio transports (PCI for
/// q35-style machines, MMIO for microvm and Firecracker), disks, network,
/// overlayfs, and ext4 where the kernel has it as a module.
pub const BOOT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_mmio",
    "virtio_blk",
    "virtio_net",
    "overlay",
    "ext4",
];

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("cannot read {}", .path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kernel module {0} is neither built in nor in modules.dep")]
    MissingModule(String),
    #[error("kernel module {0} is compressed; banger's initramfs loads uncompressed modules only")]
    Compressed(String),
}

fn read(path: &Path) -> Result<Vec<u8>, InitramfsError> {
    std::fs::read(path).map_err(|source| InitramfsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

/// Module paths (relative to `/lib/modules/<version>`) to load, dependencies first.
pub fn resolve_modules(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<String>, InitramfsError> {
    let dep_text = String::from_utf8_lossy(&read(&modules_dir.join("modules.dep"))?).into_owned();
    let builtin_text =
        std::fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
    let builtin: Vec<String> = builtin_text.lines().map(module_name).collect();
    let mut deps: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for line in dep_text.lines() {
        let Some((path, rest)) = line.split_once(':') else {
            continue;
        };
        deps.insert(
            module_name(path),
            (
                path.to_string(),
                rest.split_whitespace().map(str::to_string).collect(),
            ),
        );
    }
    let by_path: HashMap<&str, &str> = deps
        .iter()
        .map(|(name, (path, _))| (path.as_str(), name.as_str()))
        .collect();

    fn visit(
        name: &str,
        deps: &HashMap<String, (String, Vec<String>)>,
        by_path: &HashMap<&str, &str>,
        out: &mut Vec<String>,
    ) {
        let Some((path, needs)) = deps.get(name) else {
            return;
        };
        if out.contains(path) {
            return;
        }
        for dep in needs {
            if let Some(dep_name) = by_path.get(dep.as_str()) {
                visit(dep_name, deps, by_path, out);
            }
        }
        out.push(path.clone());
    }

    let mut out = Vec::new();
    for module in wanted {
        if deps.contains_key(*module) {
            visit(module, &deps, &by_path, &mut out);
        } else if !builtin.iter().any(|b| b == module) {
            return Err(InitramfsError::MissingModule(module.to_string()));
        }
    }
    if let Some(compressed) = out.iter().find(|p| !p.ends_with(".ko")) {
        return Err(InitramfsError::Compressed(compressed.clone()));
    }
    Ok(out)
}

/// Builds the initramfs (uncompressed newc cpio) from a root filesystem tree
/// that contains `busybox` and, for a kernel with modules,
/// `/lib/modules/<kernel_version>`. `None`: a kernel with its boot drivers
/// built in (a user's kernel for Firecracker), no modules to load.
pub fn build(rootfs: &Path, kernel_version: Option<&str>) -> Result<Vec<u8>, InitramfsError> {
    let kernel_version = kernel_version.unwrap_or_default();
    let modules_dir = rootfs.join("lib/modules").join(kernel_version);
    let modules = match kernel_version {
        "" => Vec::new(),
        _ => resolve_modules(&modules_dir, BOOT_MODULES)?,
    };
    let busybox = ["usr/bin/busybox", "bin/busybox"]
        .iter()
        .map(|p| rootfs.join(p))
        .find(|p| p.exists())
        .ok_or_else(|| InitramfsError::Read {
            path: rootfs.join("usr/bin/busybox"),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "busybox-static is not in the rootfs",
            ),
        })?;

    let mut w = Writer::new(Vec::new());
    let io = |e: std::io::Error| InitramfsError::Read {
        path: "initramfs".into(),
        source: e,
    };
    let dir = |path: &'static str| Entry {
        path,
        mode: DIR | 0o755,
        data: &[],
        rdev: (0, 0),
    };
    for d in [
        "bin",
        "dev",
        "etc",
        "lib",
        "lib/modules",
        "proc",
        "sys",
        "lower",
        "rw",
        "newroot",
    ] {
        w.add(&dir(d)).map_err(io)?;
    }
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    w.add(&Entry {
        path: "dev/console",
        mode: CHAR | 0o600,
        data: &[],
        rdev: (5, 1),
    })
    .map_err(io)?;
    let busybox_bytes = read(&busybox)?;
    w.add(&Entry {
        path: "bin/busybox",
        mode: FILE | 0o755,
        data: &busybox_bytes,
        rdev: (0, 0),
    })
    .map_err(io)?;
    w.add(&Entry {
        path: "init",
        mode: FILE | 0o755,
        data: INIT_SCRIPT.as_bytes(),
        rdev: (0, 0),
    })
    .map_err(io)?;

    let mut list = String::new();
    let mut made_dirs: Vec<String> = Vec::new();
    for module in &modules {
        let rel = format!("{kernel_version}/{module}");
        // Parent directories first, once each.
        let mut parent = String::from("lib/modules");
        for part in rel
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, dirs)| dirs.to_vec())
            .unwrap_or_default()
        {
            parent = format!("{parent}/{part}");
            if !made_dirs.contains(&parent) {
                w.add(&Entry {
                    path: &parent,
                    mode: DIR | 0o755,
                    data: &[],
                    rdev: (0, 0),
                })
                .map_err(io)?;
                made_dirs.push(parent.clone());
            }
        }
        let bytes = read(&modules_dir.join(module))?;
        w.add(&Entry {
            path: &format!("lib/modules/{rel}"),
            mode: FILE | 0o644,
            data: &bytes,
            rdev: (0, 0),
        })
        .map_err(io)?;
        list.push_str(&rel);
        list.push('\n');
    }
    w.add(&Entry {
        path: "etc/banger-modules",
        mode: FILE | 0o644,
        data: list.as_bytes(),
        rdev: (0, 0),
    })
    .map_err(io)?;
    w.finish().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_dependencies_first_and_skips_builtins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("modules.dep"),
            "kernel/drivers/virtio/virtio_ring.ko:\n\
             kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/fs/overlayfs/overlay.ko:\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("modules.builtin"),
            "kernel/fs/ext4/ext4.ko\n",
        )
        .unwrap();
        let got = resolve_modules(dir.path(), &["virtio_blk", "overlay", "ext4"]).unwrap();
        assert_eq!(
            got,
            [
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/block/virtio_blk.ko",
                "kernel/fs/overlayfs/overlay.ko"
            ]
        );
        assert!(matches!(
            resolve_modules(dir.path(), &["nope"]),
            Err(InitramfsError::MissingModule(_))
        ));
    }
}
