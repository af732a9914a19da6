//! The Void builder against a mirror the test makes: a tiny repository
//! (index and packages, compressed with zstd as Void's are) and a stand-in
//! for the static XBPS tools, which cannot be downloaded here. Everything of
//! banger's runs for real: reading the index, resolving dependencies and
//! virtual packages, downloading and checking each package, the agent run
//! in the tree's own libc, the kernel modules copied out of the base image
//! with debugfs, runit services, and the ext4 image.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

mod common;

use banger_host::runner::SystemRunner;
use banger_image::sources::void::fetch::FetchError;
use banger_image::sources::void::repo::RepoError;
use banger_image::sources::void::{BaseKernel, Void, VoidError};
use banger_image::{build_image, BuildError, BuildRequest};

const KERNEL: &str = "6.1.0-test";

/// Stands in for Void's `xbps-install.static`: installs every package of
/// the `-R` repository into the `-r` root (the builder puts exactly the
/// resolved set there), checking it was asked for each by name.
const FAKE_XBPS: &str = r#"#!/bin/sh
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

enum Item {
    File(&'static str, Vec<u8>, u32),
    Link(&'static str, &'static str),
}
use Item::{File, Link};

struct Fixture {
    _dir: tempfile::TempDir,
    mirror: PathBuf,
    /// This test's download cache, with the npm tool tarballs of the
    /// user's (linked, not downloaded again).
    cache: PathBuf,
    kernel: BaseKernel,
    images: PathBuf,
}

fn tar_zst(items: &[Item], out: &Path) {
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

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// The host's own glibc, so the agent check really runs in the tree.
fn glibc_files() -> Vec<Item> {
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
type Spec = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    Vec<Item>,
);

fn packages() -> Vec<Spec> {
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
fn write_repo(dir: &Path, arch: &str, packages: Vec<Spec>) {
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
fn write_mirror(mirror: &Path) {
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
fn base_kernel(dir: &Path) -> BaseKernel {
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

fn fixture() -> Fixture {
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
fn shared_cache() -> PathBuf {
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

fn request(f: &Fixture, name: &str, mirror: &str, packages: &str) -> BuildRequest {
    BuildRequest {
        name: name.into(),
        packages: packages.into(),
        images_dir: f.images.clone(),
        log: f.images.join(format!("{name}.log")),
        size: None,
        // Any program that answers --version with the tree's libc alone.
        agent: "/usr/bin/true".into(),
        npm_registry: banger_image::tools::DEFAULT_REGISTRY.into(),
        download_cache: f.cache.clone(),
        source: Box::new(Void::new(mirror.into(), f.kernel.clone()).unwrap()),
    }
}

fn debugfs(image: &str, command: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", command, image])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

async fn build(request: &BuildRequest) -> (Result<banger_api::Image, BuildError>, Vec<String>) {
    let stages = Arc::new(Mutex::new(Vec::new()));
    let seen = stages.clone();
    let result = build_image(Arc::new(SystemRunner), request, &move |p| {
        seen.lock()
            .unwrap()
            .push(format!("{}: {}", p.stage, p.message))
    })
    .await;
    let stages = stages.lock().unwrap().clone();
    (result, stages)
}

/// What a build left in images_dir besides logs (staging must be gone).
fn leftovers(images: &Path) -> Vec<String> {
    std::fs::read_dir(images)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".log"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_void_image_is_built_from_a_local_mirror() {
    let f = fixture();
    let req = request(&f, "void-exp", &f.mirror.display().to_string(), "docker\n");
    let (image, stages) = build(&req).await;
    let image = image.unwrap();
    assert!(image.managed && image.agent, "{image:?}");
    assert_eq!(image.kernel_version, KERNEL);
    assert_eq!(std::fs::read(&image.kernel).unwrap(), b"\x7fELF kernel");
    assert_eq!(std::fs::read(&image.initrd).unwrap(), b"070701 initramfs");
    for stage in [
        "image.index",
        "image.download",
        "image.xbps",
        "image.rootfs",
        "image.modules",
    ] {
        assert!(
            stages.iter().any(|s| s.starts_with(stage)),
            "no {stage} in {stages:?}"
        );
    }

    // xbps was asked for exactly the resolved set: dependencies and the
    // virtual `awk` (gawk) in, the unrelated nano out.
    let log = std::fs::read_to_string(&req.log).unwrap();
    let line = log
        .lines()
        .find(|l| l.starts_with("xbps-install.static"))
        .unwrap();
    for name in [
        "base-files",
        "base-minimal",
        "glibc",
        "gawk",
        "runit-void",
        "bash",
        "openssh",
        "docker",
        "xbps",
    ] {
        assert!(
            line.split(' ').any(|w| w == name),
            "{name} not installed: {line}"
        );
    }
    assert!(!line.contains("nano"), "{line}");

    let rootfs = image.rootfs.to_str().unwrap();
    assert!(debugfs(rootfs, "cat /etc/passwd").contains("root:x:0:0:root:/root:/bin/bash"));
    assert!(debugfs(rootfs, "stat /usr/bin/nano").contains("File not found"));
    // Services enabled under runit, the agent's among them.
    for service in ["sshd", "banger-agent", "docker"] {
        let stat = debugfs(
            rootfs,
            &format!("stat /etc/runit/runsvdir/default/{service}"),
        );
        assert!(
            stat.contains(&format!("Fast link dest: \"/etc/sv/{service}\"")),
            "{service}: {stat}"
        );
    }
    let run = debugfs(rootfs, "cat /etc/sv/banger-agent/run");
    assert!(
        run.contains("exec /usr/local/bin/banger-agent --listen vsock:1024"),
        "{run}"
    );
    assert!(debugfs(rootfs, "stat /usr/local/bin/banger-agent").contains("Type: regular"));
    assert!(debugfs(rootfs, "cat /etc/ssh/sshd_config").starts_with("# Added by banger"));
    assert!(
        debugfs(rootfs, "cat /etc/ssh/sshd_config.d/banger.conf").contains("AuthorizedKeysFile")
    );
    assert!(debugfs(rootfs, "cat /etc/xbps.d/00-repository-main.conf")
        .contains("repository=https://repo-default.voidlinux.org/current"));
    assert!(debugfs(rootfs, "cat /etc/docker/daemon.json").contains("/root/.local/share/docker"));
    // The default kernel's modules, and the npm tools.
    assert!(debugfs(
        rootfs,
        &format!("cat /usr/lib/modules/{KERNEL}/modules.dep")
    )
    .contains("vsock.ko"));
    for tool in ["mise", "opencode"] {
        assert!(debugfs(rootfs, &format!("stat /usr/local/bin/{tool}")).contains("Type: regular"));
    }
    // Root's /root is the work seed: mise for login and interactive bash.
    let seed = image.work_seed.clone().unwrap();
    assert!(std::fs::read_to_string(seed.join(".bashrc"))
        .unwrap()
        .contains("mise activate bash"));
    assert!(std::fs::read_to_string(seed.join(".bash_profile"))
        .unwrap()
        .contains(".bashrc"));
    assert!(
        std::fs::read_to_string(Path::new(&image.rootfs).with_file_name("packages.void"))
            .unwrap()
            .contains("docker")
    );
    assert_eq!(leftovers(&f.images), ["void-exp"]);
    // The image directory holds the image, not the build's tools or repository.
    let mut files: Vec<String> = std::fs::read_dir(f.images.join("void-exp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "initrd.img",
            "kernel-version",
            "manifest.sha256",
            "packages.void",
            "rootfs.ext4",
            "vmlinux",
            "work-seed"
        ]
    );
    // Verified packages are cached for the next build.
    assert!(f.cache.join("void/bash-5.2.32_1.x86_64.xbps").is_file());

    // Unchanged: reused, not rebuilt.
    let (again, stages) = build(&req).await;
    assert_eq!(again.unwrap().rootfs, image.rootfs);
    assert!(
        stages.iter().all(|s| !s.starts_with("image.download")),
        "{stages:?}"
    );
}

/// Serves a directory over HTTP on loopback (GET only).
fn serve(dir: PathBuf) -> String {
    common::serve(move |path| {
        let path = path.trim_start_matches('/');
        (!path.contains("..")).then(|| std::fs::read(dir.join(path)).ok())?
    })
}

#[tokio::test]
async fn bad_mirrors_and_package_lists_fail_clearly_and_leave_nothing() {
    let f = fixture();

    // What a failed build failed at, under the build's own error.
    fn cause(result: Result<banger_api::Image, BuildError>) -> (VoidError, Option<String>) {
        match result {
            Err(BuildError::Failed { source, .. }) => {
                let hint = source.hint();
                match *source {
                    BuildError::Void(e) => (e, hint),
                    other => panic!("not a Void failure: {other:?}"),
                }
            }
            other => panic!("not a failed build: {other:?}"),
        }
    }

    // Nothing listens there.
    let (result, _) = build(&request(&f, "void-a", "http://127.0.0.1:1", "")).await;
    let (err, hint) = cause(result);
    match err {
        VoidError::Unreachable { mirror, source } => {
            assert_eq!(mirror, "http://127.0.0.1:1");
            assert_eq!(source.url, "http://127.0.0.1:1/current/x86_64-repodata");
        }
        other => panic!("{other:?}"),
    }
    assert!(hint.unwrap().contains("--mirror"));

    // Over HTTP, a package the repository does not have.
    let url = serve(f.mirror.clone());
    let (result, _) = build(&request(&f, "void-b", &url, "docker\nno-such-package\n")).await;
    let (err, hint) = cause(result);
    match err {
        VoidError::Index(RepoError::Missing {
            missing, wanted_by, ..
        }) => {
            assert_eq!(missing, "no-such-package");
            assert_eq!(wanted_by, "the package list");
        }
        other => panic!("{other:?}"),
    }
    assert!(hint.unwrap().contains("packages.void"));

    // A package whose bytes are not what the index says.
    let docker = f.mirror.join("current/docker-27.3.1_1.x86_64.xbps");
    let mut bytes = std::fs::read(&docker).unwrap();
    bytes.push(0);
    std::fs::write(&docker, bytes).unwrap();
    let mut req = request(&f, "void-c", &url, "docker\n");
    req.download_cache = f.images.join("empty-cache");
    let (result, _) = build(&req).await;
    match cause(result).0 {
        VoidError::Fetch(FetchError::Mismatch { url, .. }) => {
            assert!(
                url.ends_with("/current/docker-27.3.1_1.x86_64.xbps"),
                "{url}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(!req
        .download_cache
        .join("void/docker-27.3.1_1.x86_64.xbps")
        .exists());

    // No image, no staging directory, from any of them.
    let left: Vec<String> = leftovers(&f.images)
        .into_iter()
        .filter(|n| n != "empty-cache")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
