//! A Void mirror the test writes: a tiny repository (index and packages,
//! compressed with zstd as Void's are), a musl repository with the static
//! XBPS tools (a shell stand-in: Void's binaries cannot be downloaded here),
//! and the base kernel a Void image borrows.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use banger_image::sources::void::BaseKernel;

pub const KERNEL: &str = "6.1.0-test";

/// Stands in for Void's `xbps-install.static`: installs every package of
/// the `-R` repository into the `-r` root (the builder puts exactly the
/// resolved set there), checking it was asked for each by name.
pub const FAKE_XBPS: &str = r#"#!/bin/sh
set -e
echo "xbps-install.static $*"
[ "$XBPS_ARCH" = x86_64 ] || { echo "XBPS_ARCH is not x86_64" >&2; exit 1; }
ignore_conf=
while [ $# -gt 0 ]; do
    case "$1" in
        -r) root=$2; shift 2 ;;
        -i) ignore_conf=1; shift ;;
        --) shift; names="$names $*"; break ;;
        -R) repo=$2; shift 2 ;;
        -*) shift ;;
        *) names="$names $1"; shift ;;
    esac
done
[ -f "$repo/x86_64-repodata" ] || { echo "no repodata in $repo" >&2; exit 1; }
[ -n "$ignore_conf" ] || { echo "-i (ignore configured repositories) missing" >&2; exit 1; }
for name in $names; do
    ls "$repo/$name"-[0-9]*.xbps >/dev/null
done
for pkg in "$repo"/*.xbps; do
    zstd -q -dc "$pkg" | tar -x -C "$root" --exclude=./props.plist --exclude=./files.plist
done
"#;

pub enum Item {
    File(&'static str, Vec<u8>, u32),
    Link(&'static str, &'static str),
}
use Item::{File, Link};

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub mirror: PathBuf,
    /// This test's download cache, with the npm tool tarballs of the
    /// user's (linked, not downloaded again).
    pub cache: PathBuf,
    pub kernel: BaseKernel,
    pub images: PathBuf,
}

pub fn tar_zst(items: &[Item], out: &Path) {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        match item {
            File(path, bytes, mode) => {
                header.set_size(bytes.len() as u64);
                header.set_mode(*mode);
                header.set_cksum();
                builder
                    .append_data(&mut header, format!("./{path}"), bytes.as_slice())
                    .unwrap();
            }
            Link(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                builder
                    .append_link(&mut header, format!("./{path}"), target)
                    .unwrap();
            }
        }
    }
    let tar = builder.into_inner().unwrap();
    let mut zstd = Command::new("zstd")
        .args(["-q", "-c", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(out).unwrap())
        .spawn()
        .unwrap();
    zstd.stdin.take().unwrap().write_all(&tar).unwrap();
    assert!(zstd.wait().unwrap().success());
}

pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// The host's own glibc, so the agent check really runs in the tree.
pub fn glibc_files() -> Vec<Item> {
    [
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "ld-linux-x86-64.so.2",
    ]
    .iter()
    .map(|lib| {
        let path = std::fs::canonicalize(format!("/lib/x86_64-linux-gnu/{lib}")).unwrap();
        let name: &'static str = Box::leak(format!("usr/lib/{lib}").into_boxed_str());
        File(name, std::fs::read(path).unwrap(), 0o755)
    })
    .collect()
}

/// (pkgver, depends, provides, files)
pub type Spec = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    Vec<Item>,
);

pub fn packages() -> Vec<Spec> {
    vec![
        (
            "base-files-0.143_1",
            &[],
            &[],
            vec![
                File(
                    "etc/passwd",
                    b"root:x:0:0:root:/root:/bin/sh\nnobody:x:99:99::/:/bin/false\n".to_vec(),
                    0o644,
                ),
                Link("lib", "usr/lib"),
                Link("lib64", "usr/lib"),
                Link("bin", "usr/bin"),
                Link("sbin", "usr/bin"),
                File("usr/share/base-files", b"x".to_vec(), 0o644),
            ],
        ),
        ("glibc-2.39_1", &[], &[], glibc_files()),
        (
            "base-minimal-0.1_1",
            &[
                "base-files>=0.1_1",
                "glibc>=2.39_1",
                "runit-void>=0",
                "awk>=0",
            ],
            &[],
            vec![],
        ),
        (
            "runit-void-20231124_1",
            &["glibc>=2.39_1"],
            &[],
            vec![File("usr/bin/runit-init", b"#!/bin/sh\n".to_vec(), 0o755)],
        ),
        (
            "gawk-5.3.0_1",
            &["glibc>=2.39_1"],
            &["awk-0_1"],
            vec![File("usr/bin/gawk", b"gawk".to_vec(), 0o755)],
        ),
        (
            "bash-5.2.32_1",
            &["glibc>=2.39_1"],
            &[],
            vec![File("usr/bin/bash", b"bash".to_vec(), 0o755)],
        ),
        (
            "openssh-9.8p1_1",
            &["glibc>=2.39_1"],
            &[],
            vec![
                File(
                    "etc/ssh/sshd_config",
                    b"#PermitRootLogin prohibit-password\n".to_vec(),
                    0o644,
                ),
                File(
                    "etc/sv/sshd/run",
                    b"#!/bin/sh\nexec /usr/bin/sshd -D\n".to_vec(),
                    0o755,
                ),
            ],
        ),
        (
            "iproute2-6.10.0_1",
            &[],
            &[],
            vec![File("usr/bin/ip", b"ip".to_vec(), 0o755)],
        ),
        (
            "kmod-33_1",
            &[],
            &[],
            vec![File("usr/bin/kmod", b"kmod".to_vec(), 0o755)],
        ),
        (
            "xbps-0.59.2_1",
            &[],
            &[],
            vec![File("usr/bin/xbps-install", b"xbps".to_vec(), 0o755)],
        ),
        (
            "docker-27.3.1_1",
            &["glibc>=2.39_1"],
            &[],
            vec![File(
                "etc/sv/docker/run",
                b"#!/bin/sh\nexec dockerd\n".to_vec(),
                0o755,
            )],
        ),
        // In the repository, never asked for: must not be installed.
        (
            "nano-8.2_1",
            &[],
            &[],
            vec![File("usr/bin/nano", b"nano".to_vec(), 0o755)],
        ),
    ]
}

/// Writes a repository: packages, then an index with their hashes.
pub fn write_repo(dir: &Path, arch: &str, packages: Vec<Spec>) {
    std::fs::create_dir_all(dir).unwrap();
    let mut index = plist::Dictionary::new();
    for (pkgver, depends, provides, files) in packages {
        let file = dir.join(format!("{pkgver}.{arch}.xbps"));
        let mut items = files;
        items.push(File("props.plist", b"<plist/>".to_vec(), 0o644));
        tar_zst(&items, &file);
        let mut entry = plist::Dictionary::new();
        entry.insert("pkgver".into(), pkgver.into());
        entry.insert("architecture".into(), arch.into());
        entry.insert("filename-sha256".into(), sha256(&file).into());
        entry.insert(
            "filename-size".into(),
            plist::Value::Integer(std::fs::metadata(&file).unwrap().len().into()),
        );
        let strings = |list: &[&str]| {
            plist::Value::Array(list.iter().map(|s| plist::Value::from(*s)).collect())
        };
        entry.insert("run_depends".into(), strings(depends));
        if !provides.is_empty() {
            entry.insert("provides".into(), strings(provides));
        }
        entry.insert("short_desc".into(), "fixture".into());
        let name = pkgver.rsplit_once('-').unwrap().0;
        index.insert(name.into(), plist::Value::Dictionary(entry));
    }
    let mut xml = Vec::new();
    plist::to_writer_xml(&mut xml, &plist::Value::Dictionary(index)).unwrap();
    tar_zst(
        &[
            File("index.plist", xml, 0o644),
            File("index-meta.plist", b"<plist/>".to_vec(), 0o644),
        ],
        &dir.join(format!("{arch}-repodata")),
    );
}

/// The mirror: the glibc repository, and the musl one with the static
/// XBPS tools (here, the stand-in).
pub fn write_mirror(mirror: &Path) {
    write_repo(&mirror.join("current"), "x86_64", packages());
    write_repo(
        &mirror.join("current/musl"),
        "x86_64-musl",
        vec![(
            "xbps-static-0.59_5",
            &[],
            &[],
            vec![
                // A link under the very name, before the real file: never
                // taken (the build would run /etc/shadow, or write through it).
                Link("usr/bin/xbps-install.static", "/etc/shadow"),
                File(
                    "usr/bin/xbps-install.static",
                    FAKE_XBPS.as_bytes().to_vec(),
                    0o755,
                ),
                File("usr/bin/xbps-query.static", b"query".to_vec(), 0o755),
            ],
        )],
    );
}

/// The default image's kernel: a base ext4 holding the modules.
pub fn base_kernel(dir: &Path) -> BaseKernel {
    let tree = dir.join("base-tree");
    let modules = tree.join("usr/lib/modules").join(KERNEL);
    std::fs::create_dir_all(modules.join("kernel")).unwrap();
    std::fs::write(modules.join("modules.dep"), "kernel/vsock.ko:\n").unwrap();
    std::fs::write(modules.join("kernel/vsock.ko"), b"\x7fELF module").unwrap();
    let rootfs = dir.join("base.ext4");
    let ok = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&rootfs)
        .arg("16M")
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(dir.join("vmlinux"), b"\x7fELF kernel").unwrap();
    std::fs::write(dir.join("initrd.img"), b"070701 initramfs").unwrap();
    BaseKernel {
        vmlinux: dir.join("vmlinux"),
        initrd: dir.join("initrd.img"),
        version: KERNEL.into(),
        rootfs,
    }
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    write_mirror(&mirror);
    let kernel = base_kernel(dir.path());
    let images = dir.path().join("images");
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    for tarball in std::fs::read_dir(shared_cache())
        .into_iter()
        .flatten()
        .flatten()
    {
        if tarball.file_name().to_string_lossy().ends_with(".tgz") {
            let _ = std::fs::hard_link(tarball.path(), cache.join(tarball.file_name()));
        }
    }
    Fixture {
        mirror,
        kernel,
        images,
        cache,
        _dir: dir,
    }
}

/// The npm tools' cache the other image builds share.
pub fn shared_cache() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    Path::new(&home).join(".cache/banger/downloads")
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Tarballs this test had to download serve the next run too.
        let shared = shared_cache();
        let _ = std::fs::create_dir_all(&shared);
        for tarball in std::fs::read_dir(&self.cache)
            .into_iter()
            .flatten()
            .flatten()
        {
            if tarball.file_name().to_string_lossy().ends_with(".tgz") {
                let _ = std::fs::hard_link(tarball.path(), shared.join(tarball.file_name()));
            }
        }
    }
}
