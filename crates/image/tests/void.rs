//! The Void builder against a mirror the test makes: a tiny repository
//! (index and packages, compressed with zstd as Void's are) and a stand-in
//! for the static XBPS tools, which cannot be downloaded here. Everything of
//! banger's runs for real: reading the index, resolving dependencies and
//! virtual packages, downloading and checking each package, the agent run
//! in the tree's own libc, the kernel modules copied out of the base image
//! with debugfs, runit services, and the ext4 image.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

mod common;
mod void_fixture;

use banger_host::runner::SystemRunner;
use banger_image::sources::void::fetch::FetchError;
use banger_image::sources::void::repo::RepoError;
use banger_image::sources::void::{Void, VoidError};
use banger_image::{build_image, BuildError, BuildRequest};
use void_fixture::{fixture, Fixture, KERNEL};

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
