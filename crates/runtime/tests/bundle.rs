//! Packaging a bundle and installing it from a manifest: relative path,
//! file:// and http:// sources, checksum verification, and templates.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use banger_api::Image;
use banger_runtime::{fetch::fetch, package::package, Bundle, BundleError};

fn fake_image(dir: &Path) -> Image {
    std::fs::create_dir_all(dir.join("work-seed")).unwrap();
    std::fs::write(dir.join("work-seed/.profile"), "export EDITOR=vi\n").unwrap();
    std::fs::write(dir.join("vmlinux"), b"\x7fELF kernel bytes").unwrap();
    std::fs::write(dir.join("initrd.img"), b"070701 initrd").unwrap();
    let rootfs = std::fs::File::create(dir.join("rootfs.ext4")).unwrap();
    rootfs.set_len(64 << 20).unwrap();
    Image {
        name: "default".into(),
        managed: true,
        rootfs: dir.join("rootfs.ext4"),
        kernel: dir.join("vmlinux"),
        initrd: dir.join("initrd.img"),
        kernel_version: "6.1.0-test".into(),
        work_seed: Some(dir.join("work-seed")),
        packages_sha256: "abc".into(),
        agent: false,
        agent_serial: false,
        warm: false,
        created_at: time::OffsetDateTime::now_utc(),
    }
}

struct Setup {
    root: tempfile::TempDir,
    archive: PathBuf,
    sha: String,
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let image = fake_image(&root.path().join("image"));
    let firecracker = root.path().join("firecracker");
    std::fs::write(&firecracker, b"#!/bin/sh\n").unwrap();
    let archive = root.path().join("dist/banger-runtime.tar.gz");
    let sha = package(&image, "curl\n", &[firecracker], &archive).unwrap();
    assert_eq!(sha.len(), 64);
    Setup { root, archive, sha }
}

fn manifest(dir: &Path, url: &str, sha: &str) -> PathBuf {
    let path = dir.join("runtime-bundle.local.toml");
    std::fs::write(&path, format!("url = {url:?}\nsha256 = {sha:?}\n")).unwrap();
    path
}

#[test]
fn a_packaged_bundle_installs_from_a_relative_path_and_file_url() {
    let s = setup();
    let target = s.root.path().join("runtime");
    let bundle = fetch(
        &manifest(s.root.path(), "./dist/banger-runtime.tar.gz", &s.sha),
        &target,
    )
    .unwrap();
    assert_eq!(bundle.manifest.kernel_version, "6.1.0-test");
    assert_eq!(bundle.manifest.binaries, ["firecracker"]);
    assert_eq!(
        std::fs::read(target.join("vmlinux")).unwrap(),
        b"\x7fELF kernel bytes"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("work-seed/.profile")).unwrap(),
        "export EDITOR=vi\n"
    );
    assert_eq!(
        std::fs::metadata(target.join("rootfs.ext4")).unwrap().len(),
        64 << 20
    );
    let image = bundle.default_image("default");
    assert!(
        !image.managed,
        "a bundle's image is registered, not managed"
    );
    assert!(image.rootfs.starts_with(&target));

    // Again from a file:// URL: replaces the installed bundle.
    let url = format!("file://{}", s.archive.display());
    fetch(&manifest(s.root.path(), &url, &s.sha), &target).unwrap();
    Bundle::open(&target).unwrap();
}

#[test]
fn a_bundle_installs_over_http() {
    let s = setup();
    let bytes = std::fs::read(&s.archive).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = conn.read(&mut request).unwrap();
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bytes.len()
        )
        .unwrap();
        conn.write_all(&bytes).unwrap();
    });
    let target = s.root.path().join("runtime");
    let url = format!("http://127.0.0.1:{port}/banger-runtime.tar.gz");
    fetch(&manifest(s.root.path(), &url, &s.sha), &target).unwrap();
    server.join().unwrap();
    Bundle::open(&target).unwrap();
}

#[test]
fn a_checksum_mismatch_installs_nothing_and_keeps_the_old_bundle() {
    let s = setup();
    let target = s.root.path().join("runtime");
    fetch(
        &manifest(s.root.path(), "./dist/banger-runtime.tar.gz", &s.sha),
        &target,
    )
    .unwrap();
    std::fs::write(target.join("marker"), "still here").unwrap();
    let wrong = "0".repeat(64);
    let err = fetch(
        &manifest(s.root.path(), "./dist/banger-runtime.tar.gz", &wrong),
        &target,
    )
    .unwrap_err();
    assert!(
        matches!(&err, BundleError::Checksum { want, got, .. } if *want == wrong && *got == s.sha),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("marker")).unwrap(),
        "still here"
    );
    let leftovers: Vec<_> = std::fs::read_dir(s.root.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".banger-runtime")
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn the_template_manifest_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../runtime-bundle.toml"
    ))
    .unwrap();
    let path = dir.path().join("runtime-bundle.toml");
    std::fs::write(&path, template).unwrap();
    let err = fetch(&path, &dir.path().join("runtime")).unwrap_err();
    assert!(
        matches!(&err, BundleError::Template(p) if *p == path),
        "{err:?}"
    );
    assert!(err.hint().unwrap().contains("sha256"));
    assert!(!dir.path().join("runtime").exists());
}
