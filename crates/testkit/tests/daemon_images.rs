//! Images through the daemon: register validates every file before
//! recording anything and updates registered images in place; delete is
//! refused while a VM uses the image and removes only what banger built.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use banger_api::{CreateVmRequest, RegisterImageRequest};
use banger_daemon::config::Config;
use banger_daemon::images::{FileProblem, ImageError};
use banger_daemon::progress::Reporter;
use banger_image::sources::void::VoidError;
use banger_image::vmlinux::VmlinuxError;
use banger_image::BuildError;
use common::*;

/// An e2fsprogs tool, found where banger finds it (root's tools live in
/// sbin, which an ordinary user's PATH may lack).
fn tool(name: &str) -> Command {
    Command::new(banger_host::tools::require(name).unwrap())
}

/// A small real ext4 image.
fn ext4(path: &Path) -> PathBuf {
    let out = tool("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(path)
        .arg("8M")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    path.to_path_buf()
}

/// The placeholder default image, with a kernel file that passes the ELF
/// check (Firecracker boots only ELF kernels).
fn default_with_elf_kernel(d: &Daemon) -> banger_api::Image {
    let default = d.app.store().get_image("default").unwrap().unwrap();
    std::fs::write(&default.kernel, banger_testkit::doubles::vmlinux()).unwrap();
    default
}

fn file(path: PathBuf, bytes: &[u8]) -> PathBuf {
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The file problem a register failed on, and the file's name.
fn bad_file(e: ImageError) -> (&'static str, FileProblem, String) {
    match e {
        ImageError::BadFile {
            what,
            path,
            problem,
        } => (what, problem, path.display().to_string()),
        other => panic!("not a bad file: {other:?}"),
    }
}

/// What a failed build failed at, under the build's own error.
fn build_cause(e: ImageError) -> BuildError {
    match e {
        ImageError::Build(BuildError::Failed { source, .. }) => *source,
        ImageError::Build(other) => other,
        other => panic!("not a build failure: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_checks_files_and_updates_in_place() {
    let d = daemon(Duration::from_millis(20));
    let dir = d.root.path().join("mine");
    std::fs::create_dir_all(dir.join("modules/6.1.0-test")).unwrap();
    let rootfs = ext4(&dir.join("rootfs.ext4"));
    let vmlinux = file(dir.join("vmlinux"), &banger_testkit::doubles::vmlinux());
    let mut bz = vec![0u8; 0x400];
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    let bzimage = file(dir.join("bzImage"), &bz);
    let arm = file(
        dir.join("arm64-Image"),
        &banger_testkit::doubles::elf(2, 183, &[], b""),
    );
    let initrd = file(dir.join("initrd.img"), b"070701");
    let not_ext4 = file(dir.join("junk.img"), &[0u8; 4096]);
    let request = |rootfs: &Path, kernel: &Path| RegisterImageRequest {
        name: "mine".into(),
        rootfs: rootfs.into(),
        kernel: Some(kernel.into()),
        initrd: Some(initrd.clone()),
        modules: Some(dir.join("modules/6.1.0-test")),
        ..Default::default()
    };
    let images = d.app.images().clone();
    let err = |r: RegisterImageRequest| {
        let images = images.clone();
        async move { images.register(r).await.unwrap_err() }
    };

    // Bad input: each names the file and the problem; nothing is recorded.
    let (what, problem, path) = bad_file(err(request(&not_ext4, &vmlinux)).await);
    assert_eq!((what, problem), ("rootfs", FileProblem::NotExt4));
    assert!(path.ends_with("junk.img"), "{path}");
    let (_, problem, _) = bad_file(err(request(Path::new("/nope/rootfs.ext4"), &vmlinux)).await);
    assert_eq!(problem, FileProblem::Missing);
    let (_, problem, _) = bad_file(err(request(Path::new("rootfs.ext4"), &vmlinux)).await);
    assert_eq!(problem, FileProblem::NotAbsolute);
    // Firecracker boots x86-64 ELF kernels only: each refusal says why.
    let (what, problem, _) = bad_file(err(request(&rootfs, &bzimage)).await);
    assert_eq!(
        (what, problem),
        ("kernel", FileProblem::NotElf(VmlinuxError::BzImage))
    );
    let (_, problem, _) = bad_file(err(request(&rootfs, &arm)).await);
    assert!(
        matches!(problem, FileProblem::NotElf(VmlinuxError::WrongKind(_))),
        "{problem:?}"
    );
    let mut no_initrd = request(&rootfs, &vmlinux);
    no_initrd.initrd = None;
    assert!(matches!(err(no_initrd).await, ImageError::InitrdNeeded));
    let mut bad_seed = request(&rootfs, &vmlinux);
    bad_seed.work_seed = Some(not_ext4.clone());
    assert_eq!(bad_file(err(bad_seed).await).1, FileProblem::NotSeed);
    // The managed default image is not replaced.
    let e = err(RegisterImageRequest {
        name: "default".into(),
        ..request(&rootfs, &vmlinux)
    })
    .await;
    assert!(
        matches!(e, ImageError::Managed(ref n) if n == "default"),
        "{e:?}"
    );
    assert!(d.app.store().get_image("mine").unwrap().is_none());

    // Good input: registered, not managed, version from the modules dir.
    let image = images.register(request(&rootfs, &vmlinux)).await.unwrap();
    assert!(!image.managed);
    assert_eq!(image.kernel_version, "6.1.0-test");
    assert!(!image.agent, "an empty rootfs has no agent");

    // A rootfs that carries the agent is recognised (VMs then wait for it).
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("usr/local/bin")).unwrap();
    std::fs::write(tree.join("usr/local/bin/banger-agent"), b"\x7fELF agent").unwrap();
    let with_agent = dir.join("with-agent.ext4");
    let out = tool("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&with_agent)
        .arg("8M")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let agented = images
        .register(RegisterImageRequest {
            name: "agented".into(),
            ..request(&with_agent, &vmlinux)
        })
        .await
        .unwrap();
    assert!(agented.agent);
    assert!(d.app.store().get_image("agented").unwrap().unwrap().agent);

    // Without --kernel it takes the default image's kernel and initrd.
    let default = default_with_elf_kernel(&d);
    let borrowed = images
        .register(RegisterImageRequest {
            name: "borrowed".into(),
            rootfs: rootfs.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (borrowed.kernel, borrowed.initrd),
        (default.kernel, default.initrd)
    );

    // A VM from it; re-registering with a new kernel is fine, a new rootfs
    // under the VM's overlay is not.
    d.app
        .vms()
        .clone()
        .create(
            CreateVmRequest {
                name: Some("on-mine".into()),
                image: Some("mine".into()),
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap();
    let vmlinux2 = file(
        dir.join("vmlinux2"),
        &banger_testkit::doubles::elf(2, 62, &[], b"a newer plain vmlinux"),
    );
    let updated = images.register(request(&rootfs, &vmlinux2)).await.unwrap();
    assert_eq!(updated.kernel, vmlinux2);
    assert_eq!(updated.created_at, image.created_at);
    let rootfs2 = ext4(&dir.join("rootfs2.ext4"));
    // A new rootfs under the VM's overlay is refused, naming the VM.
    match err(request(&rootfs2, &vmlinux2)).await {
        ImageError::OverlaysOnRootfs { users, .. } => assert_eq!(users, ["on-mine"]),
        other => panic!("{other:?}"),
    }

    // Delete: refused while used, naming the VM; then the record goes and
    // the user's files stay.
    match images.delete("mine").await.unwrap_err() {
        ImageError::InUse { users, .. } => assert_eq!(users, ["on-mine"]),
        other => panic!("{other:?}"),
    }
    d.app
        .vms()
        .clone()
        .delete("on-mine".into(), true)
        .await
        .unwrap();
    images.delete("mine").await.unwrap();
    assert!(d.app.store().get_image("mine").unwrap().is_none());
    assert!(
        rootfs.exists() && vmlinux2.exists(),
        "registered files are the user's"
    );
    assert!(matches!(
        images.delete("mine").await.unwrap_err(),
        ImageError::NotFound(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_managed_image_removes_its_directory() {
    let d = daemon(Duration::from_millis(20));
    let images_dir = d.app.images().dir().join("built");
    std::fs::create_dir_all(&images_dir).unwrap();
    let mut image = banger_testkit::doubles::placeholder_image(&images_dir);
    image.name = "built".into();
    d.app.store().put_image(&image).unwrap();
    d.app.images().delete("built").await.unwrap();
    assert!(!images_dir.exists(), "a managed image's files go with it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_seed_image_is_cloned_labelled_and_grown() {
    let d = daemon(Duration::from_millis(20));
    let dir = d.root.path().join("seeded");
    std::fs::create_dir_all(dir.join("tree")).unwrap();
    std::fs::write(dir.join("tree/.tmux.conf"), "set -g mouse on\n").unwrap();
    let seed = dir.join("seed.ext4");
    let out = tool("mkfs.ext4")
        .args(["-q", "-F", "-L", "whatever", "-d"])
        .arg(dir.join("tree"))
        .arg(&seed)
        .arg("16M")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rootfs = ext4(&dir.join("rootfs.ext4"));
    default_with_elf_kernel(&d);
    d.app
        .images()
        .register(RegisterImageRequest {
            name: "seeded".into(),
            rootfs,
            work_seed: Some(seed.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let vm = d
        .app
        .vms()
        .clone()
        .create(
            CreateVmRequest {
                name: Some("seeded-vm".into()),
                image: Some("seeded".into()),
                disk_size: Some("1G".into()),
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap();
    let work = vm.files().work();
    assert_eq!(
        std::fs::metadata(&work).unwrap().len(),
        1 << 30,
        "grown to --disk-size"
    );
    let label = tool("e2label").arg(&work).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "banger-work");
    let cat = tool("debugfs")
        .args(["-R", "cat /.tmux.conf"])
        .arg(&work)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "set -g mouse on\n");
    assert!(tool("e2fsck")
        .args(["-fn"])
        .arg(&work)
        .status()
        .unwrap()
        .success());
    // The seed itself is untouched.
    let label = tool("e2label").arg(&seed).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "whatever");
}

#[tokio::test]
async fn build_options_are_checked_before_anything_runs() {
    let d = daemon(Duration::from_millis(20));
    let images = d.app.images().clone();
    let build = |size: &str| {
        images.build(
            banger_api::BuildImageRequest {
                name: "tiny".into(),
                size: Some(size.into()),
                ..Default::default()
            },
            Reporter::silent(),
        )
    };
    let e = build("100M").await.unwrap_err();
    assert!(
        matches!(e, ImageError::SizeTooSmall(ref s) if s == "100M"),
        "{e:?}"
    );
    assert!(e.hint().unwrap().contains("512M"));
    let e = build("lots").await.unwrap_err();
    assert!(matches!(e, ImageError::Size(_)), "{e:?}");
    // A registered image's name is not taken over by a build.
    let rootfs = ext4(&d.root.path().join("r.ext4"));
    default_with_elf_kernel(&d);
    images
        .register(RegisterImageRequest {
            name: "mine".into(),
            rootfs,
            ..Default::default()
        })
        .await
        .unwrap();
    let e = images
        .build(
            banger_api::BuildImageRequest {
                name: "mine".into(),
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ImageError::Registered(ref n) if n == "mine"),
        "{e:?}"
    );
    // A package list entry that is an option, or splits mmdebstrap's
    // --include, never reaches a tool.
    let list = d.root.path().join("packages.apt");
    std::fs::write(&list, "jq\n-oAPT::Get::AllowUnauthenticated=1\n").unwrap();
    let e = images
        .build(
            banger_api::BuildImageRequest {
                name: "listed".into(),
                packages: Some(list),
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ImageError::Build(BuildError::BadPackageName(ref n)) if n.starts_with("-oAPT")),
        "{e:?}"
    );
    // A mirror that could be read as an option never reaches mmdebstrap.
    let e = images
        .build(
            banger_api::BuildImageRequest {
                name: "hooked".into(),
                mirror: Some("--setup-hook=touch /tmp/p".into()),
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ImageError::Build(BuildError::BadMirror(ref m)) if m.starts_with("--setup-hook")),
        "{e:?}"
    );

    // --kernel: the file is checked before anything runs.
    let kernel_build = |kernel: PathBuf| {
        images.build(
            banger_api::BuildImageRequest {
                name: "own-kernel".into(),
                kernel: Some(kernel),
                ..Default::default()
            },
            Reporter::silent(),
        )
    };
    let e = kernel_build("vmlinux".into()).await.unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::BadFile {
                problem: FileProblem::NotAbsolute,
                ..
            }
        ),
        "{e:?}"
    );
    let mut bz = vec![0u8; 0x400];
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    let bzimage = file(d.root.path().join("bzImage"), &bz);
    let e = kernel_build(bzimage).await.unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::Build(BuildError::UserKernel {
                source: VmlinuxError::BzImage,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(
        e.hint().unwrap().contains("extract-vmlinux"),
        "{:?}",
        e.hint()
    );
    assert!(images.get("own-kernel").is_err(), "nothing recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn void_builds_take_their_mirror_and_refuse_bad_requests() {
    let d = daemon(Duration::from_millis(20));
    let with = |void_mirror: Option<&str>| {
        restart_with(
            &d.root,
            d.net.clone(),
            Duration::from_millis(20),
            Config {
                void_mirror: void_mirror.map(Into::into),
                agent_bin: Some("/bin/true".into()),
                ..config()
            },
        )
    };
    let build = |app: std::sync::Arc<banger_daemon::app::App>,
                 name: &str,
                 distro: &str,
                 mirror: Option<&str>| {
        let request = banger_api::BuildImageRequest {
            name: name.into(),
            distro: Some(distro.into()),
            mirror: mirror.map(Into::into),
            ..Default::default()
        };
        async move { app.images().build(request, Reporter::silent()).await }
    };
    let e = build(d.app.clone(), "arch", "arch", None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ImageError::Build(BuildError::UnknownDistro(ref d)) if d == "arch"),
        "{e:?}"
    );
    assert!(e.hint().unwrap().contains("--distro void"));
    // It boots the default image's kernel, so it cannot replace it.
    let e = build(d.app.clone(), "default", "void", None)
        .await
        .unwrap_err();
    assert!(matches!(e, ImageError::BorrowsDefaultKernel(_)), "{e:?}");

    // A plain-HTTP mirror is refused before anything else happens.
    let e = build(
        with(None),
        "void-exp",
        "void",
        Some("http://mirror.example.org/void"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::Build(BuildError::Void(VoidError::PlainHttp(_)))
        ),
        "{e:?}"
    );
    // --mirror reaches the builder, as root or as a user (nothing listens
    // there)...
    let unreachable = |e: ImageError| match build_cause(e) {
        BuildError::Void(VoidError::Unreachable { mirror, source }) => (mirror, source.url),
        other => panic!("{other:?}"),
    };
    let e = build(
        with(None),
        "void-exp",
        "void",
        Some("http://127.0.0.1:1/void"),
    )
    .await
    .unwrap_err();
    let (mirror, url) = unreachable(e);
    assert_eq!(mirror, "http://127.0.0.1:1/void");
    assert_eq!(url, "http://127.0.0.1:1/void/current/x86_64-repodata");
    // ...and so does void_mirror from config.toml, when --mirror is absent.
    let app = with(Some("http://127.0.0.1:1/configured"));
    let e = build(app.clone(), "void-exp", "void", None)
        .await
        .unwrap_err();
    // A failed build names its log.
    match &e {
        ImageError::Build(BuildError::Failed { log, .. }) => {
            assert!(
                log.ends_with("image-build/void-exp.log"),
                "{}",
                log.display()
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(unreachable(e).0, "http://127.0.0.1:1/configured");
    assert!(app.store().get_image("void-exp").unwrap().is_none());
    let staged: Vec<_> = std::fs::read_dir(app.images().dir())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        staged
            .iter()
            .all(|n| !n.to_string_lossy().contains("void-exp")),
        "nothing staged: {staged:?}"
    );
}
