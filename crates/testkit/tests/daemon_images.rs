//! Images through the daemon: register validates every file before
//! recording anything and updates registered images in place; delete is
//! refused while a VM uses the image and removes only what banger built.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use banger_api::{CreateVmRequest, ErrorCode, RegisterImageRequest};
use banger_daemon::config::Config;
use banger_daemon::images;
use banger_daemon::progress::Reporter;
use banger_daemon::vms::{create, lifecycle};
use common::*;

/// A small real ext4 image.
fn ext4(path: &Path) -> String {
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(path)
        .arg("8M")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    path.display().to_string()
}

/// The placeholder default image, with a kernel file that passes the ELF
/// check (Firecracker boots only ELF kernels).
fn default_with_elf_kernel(d: &Daemon) -> banger_api::Image {
    let default = d.app.store.get_image("default").unwrap().unwrap();
    std::fs::write(&default.kernel, b"\x7fELF\x02\x01\x01 default kernel").unwrap();
    default
}

fn file(path: PathBuf, bytes: &[u8]) -> String {
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_checks_files_and_updates_in_place() {
    let d = daemon(Duration::from_millis(20));
    let dir = d.root.path().join("mine");
    std::fs::create_dir_all(dir.join("modules/6.1.0-test")).unwrap();
    let rootfs = ext4(&dir.join("rootfs.ext4"));
    let vmlinux = file(dir.join("vmlinux"), b"\x7fELF\x02\x01\x01 a kernel");
    let bzimage = file(dir.join("bzImage"), b"MZ not an ELF");
    let initrd = file(dir.join("initrd.img"), b"070701");
    let not_ext4 = file(dir.join("junk.img"), &[0u8; 4096]);
    let request = |rootfs: &str, kernel: &str| RegisterImageRequest {
        name: "mine".into(),
        rootfs: rootfs.into(),
        kernel: Some(kernel.into()),
        initrd: Some(initrd.clone()),
        modules: Some(dir.join("modules/6.1.0-test").display().to_string()),
        ..Default::default()
    };
    let err = |r: RegisterImageRequest| {
        let app = d.app.clone();
        async move { images::register(&app, r).await.unwrap_err() }
    };

    // Bad input: each names the file and the fix; nothing is recorded.
    let e = err(request(&not_ext4, &vmlinux)).await;
    assert!(
        e.message.contains("not an ext4") && e.message.contains("junk.img"),
        "{}",
        e.message
    );
    let e = err(request("/nope/rootfs.ext4", &vmlinux)).await;
    assert!(e.message.contains("does not exist"), "{}", e.message);
    let e = err(request("rootfs.ext4", &vmlinux)).await;
    assert!(e.message.contains("absolute"), "{}", e.message);
    let e = err(request(&rootfs, &bzimage)).await;
    assert!(
        e.message.contains("not an ELF vmlinux"),
        "Firecracker needs ELF: {}",
        e.message
    );
    let mut no_initrd = request(&rootfs, &vmlinux);
    no_initrd.initrd = None;
    assert!(err(no_initrd).await.message.contains("--initrd"));
    let mut bad_seed = request(&rootfs, &vmlinux);
    bad_seed.work_seed = Some(not_ext4.clone());
    assert!(err(bad_seed).await.message.contains("work seed"));
    let e = err(RegisterImageRequest {
        name: "default".into(),
        ..request(&rootfs, &vmlinux)
    })
    .await;
    assert_eq!(
        e.code,
        ErrorCode::Conflict,
        "the managed default image is not replaced"
    );
    assert!(d.app.store.get_image("mine").unwrap().is_none());

    // Good input: registered, not managed, version from the modules dir.
    let image = images::register(&d.app, request(&rootfs, &vmlinux))
        .await
        .unwrap();
    assert!(!image.managed);
    assert_eq!(image.kernel_version, "6.1.0-test");
    assert!(!image.agent, "an empty rootfs has no agent");

    // A rootfs that carries the agent is recognised (VMs then wait for it).
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("usr/local/bin")).unwrap();
    std::fs::write(tree.join("usr/local/bin/banger-agent"), b"\x7fELF agent").unwrap();
    let with_agent = dir.join("with-agent.ext4");
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&with_agent)
        .arg("8M")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let agented = images::register(
        &d.app,
        RegisterImageRequest {
            name: "agented".into(),
            ..request(&with_agent.display().to_string(), &vmlinux)
        },
    )
    .await
    .unwrap();
    assert!(agented.agent);
    assert!(d.app.store.get_image("agented").unwrap().unwrap().agent);

    // Without --kernel it takes the default image's kernel and initrd.
    let default = default_with_elf_kernel(&d);
    let borrowed = images::register(
        &d.app,
        RegisterImageRequest {
            name: "borrowed".into(),
            rootfs: rootfs.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (borrowed.kernel, borrowed.initrd),
        (default.kernel, default.initrd)
    );

    // A VM from it; re-registering with a new kernel is fine, a new rootfs
    // under the VM's overlay is not.
    create::create(
        d.app.clone(),
        CreateVmRequest {
            name: Some("on-mine".into()),
            image: Some("mine".into()),
            ..Default::default()
        },
        Reporter::silent(),
    )
    .await
    .unwrap();
    let vmlinux2 = file(dir.join("vmlinux2"), b"\x7fELF\x02\x01\x01 newer");
    let updated = images::register(&d.app, request(&rootfs, &vmlinux2))
        .await
        .unwrap();
    assert_eq!(updated.kernel, vmlinux2);
    assert_eq!(updated.created_at, image.created_at);
    let rootfs2 = ext4(&dir.join("rootfs2.ext4"));
    let e = err(request(&rootfs2, &vmlinux2)).await;
    assert!(
        e.message.contains("on-mine"),
        "names the VMs: {}",
        e.message
    );

    // Delete: refused while used, naming the VM; then the record goes and
    // the user's files stay.
    let e = images::delete(&d.app, "mine").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Conflict);
    assert!(e.message.contains("on-mine"), "{}", e.message);
    lifecycle::delete(d.app.clone(), "on-mine".into(), true)
        .await
        .unwrap();
    images::delete(&d.app, "mine").await.unwrap();
    assert!(d.app.store.get_image("mine").unwrap().is_none());
    assert!(
        Path::new(&rootfs).exists() && Path::new(&vmlinux2).exists(),
        "registered files are the user's"
    );
    let e = images::delete(&d.app, "mine").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_managed_image_removes_its_directory() {
    let d = daemon(Duration::from_millis(20));
    let images_dir = d.app.images_dir().join("built");
    std::fs::create_dir_all(&images_dir).unwrap();
    let mut image = banger_testkit::doubles::placeholder_image(&images_dir);
    image.name = "built".into();
    d.app.store.put_image(&image).unwrap();
    images::delete(&d.app, "built").await.unwrap();
    assert!(!images_dir.exists(), "a managed image's files go with it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_seed_image_is_cloned_labelled_and_grown() {
    let d = daemon(Duration::from_millis(20));
    let dir = d.root.path().join("seeded");
    std::fs::create_dir_all(dir.join("tree")).unwrap();
    std::fs::write(dir.join("tree/.tmux.conf"), "set -g mouse on\n").unwrap();
    let seed = dir.join("seed.ext4");
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "whatever", "-d"])
        .arg(dir.join("tree"))
        .arg(&seed)
        .arg("16M")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rootfs = ext4(&dir.join("rootfs.ext4"));
    default_with_elf_kernel(&d);
    images::register(
        &d.app,
        RegisterImageRequest {
            name: "seeded".into(),
            rootfs,
            work_seed: Some(seed.display().to_string()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let vm = create::create(
        d.app.clone(),
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
    let work = Path::new(&vm.dir).join("work.ext4");
    assert_eq!(
        std::fs::metadata(&work).unwrap().len(),
        1 << 30,
        "grown to --disk-size"
    );
    let label = Command::new("e2label").arg(&work).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "banger-work");
    let cat = Command::new("debugfs")
        .args(["-R", "cat /.tmux.conf"])
        .arg(&work)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout), "set -g mouse on\n");
    assert!(Command::new("e2fsck")
        .args(["-fn"])
        .arg(&work)
        .status()
        .unwrap()
        .success());
    // The seed itself is untouched.
    let label = Command::new("e2label").arg(&seed).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "whatever");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_cannot_fit_is_refused_before_it_starts() {
    // A real small filesystem (tmpfs) as the images directory.
    let d = daemon(Duration::from_millis(20));
    let small = d.root.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(&small)
        .output()
        .unwrap();
    assert!(out.status.success(), "mount tmpfs (root needed): {out:?}");
    let app = restart_with(
        &d.root,
        d.net.clone(),
        Duration::from_millis(20),
        Config {
            images_dir: Some(small.clone()),
            agent_bin: Some("/bin/true".into()),
            ..config()
        },
    );
    let result = images::build(
        &app,
        banger_api::BuildImageRequest {
            name: "big".into(),
            ..Default::default()
        },
        Reporter::silent(),
    )
    .await;
    let leftovers: Vec<_> = std::fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let _ = Command::new("umount").arg(&small).output();
    let e = result.unwrap_err();
    assert!(
        e.message.contains("not enough free space")
            && e.message.contains("64M free")
            && e.message.contains("images_dir"),
        "{}",
        e.message
    );
    assert!(leftovers.is_empty(), "nothing staged: {leftovers:?}");
    assert!(app.store.get_image("big").unwrap().is_none());
}

#[tokio::test]
async fn build_options_are_checked_before_anything_runs() {
    let d = daemon(Duration::from_millis(20));
    let build = |size: &str| {
        images::build(
            &d.app,
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
        e.message.contains("too small") && e.hint.unwrap().contains("512M"),
        "{}",
        e.message
    );
    let e = build("lots").await.unwrap_err();
    assert!(e.message.contains("lots"), "{}", e.message);
    // A registered image's name is not taken over by a build.
    let rootfs = ext4(&d.root.path().join("r.ext4"));
    default_with_elf_kernel(&d);
    images::register(
        &d.app,
        RegisterImageRequest {
            name: "mine".into(),
            rootfs,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let e = images::build(
        &d.app,
        banger_api::BuildImageRequest {
            name: "mine".into(),
            ..Default::default()
        },
        Reporter::silent(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
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
        async move { images::build(&app, request, Reporter::silent()).await }
    };
    let e = build(d.app.clone(), "arch", "arch", None)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput, "{}", e.message);
    assert!(e.hint.unwrap().contains("--distro void"));
    // It boots the default image's kernel, so it cannot replace it.
    let e = build(d.app.clone(), "default", "void", None)
        .await
        .unwrap_err();
    assert!(
        e.message.contains("cannot be the default image"),
        "{}",
        e.message
    );

    // A plain-HTTP mirror is refused before anything else happens.
    let e = build(
        with(None),
        "void-exp",
        "void",
        Some("http://mirror.example.org/void"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput, "{}", e.message);
    assert!(e.message.contains("plain HTTP"), "{}", e.message);
    // --mirror reaches the builder (nothing listens there)...
    let e = build(
        with(None),
        "void-exp",
        "void",
        Some("http://127.0.0.1:1/void"),
    )
    .await
    .unwrap_err();
    assert!(
        e.message
            .contains("cannot download http://127.0.0.1:1/void/current/x86_64-repodata")
            && e.message.contains("void_mirror"),
        "{}",
        e.message
    );
    // ...and so does void_mirror from config.toml, when --mirror is absent.
    let app = with(Some("http://127.0.0.1:1/configured"));
    let e = build(app.clone(), "void-exp", "void", None)
        .await
        .unwrap_err();
    assert!(
        e.message.contains("http://127.0.0.1:1/configured/current"),
        "{}",
        e.message
    );
    // A failed build names its log.
    assert!(
        e.message.contains("image-build/void-exp.log"),
        "{}",
        e.message
    );
    assert!(app.store.get_image("void-exp").unwrap().is_none());
    let staged: Vec<_> = std::fs::read_dir(app.images_dir())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        staged
            .iter()
            .all(|n| !n.to_string_lossy().contains("void-exp")),
        "nothing staged: {staged:?}"
    );
}
