//! The npm tool downloads against a registry on loopback: verified by
//! integrity, cached, unpacked to /usr/local/bin; a tampered tarball, an
//! unreachable registry and a tarball without the binary are clear errors
//! that install nothing.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod common;

use banger_image::tools::{fetch, install, integrity_of, NpmTool, ToolError};

/// An npm-style tarball holding `package/bin/<name>`.
fn tarball(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, format!("package/bin/{name}"), content)
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

/// Serves `body` for every request on loopback; counts the requests.
fn registry(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let url = common::serve(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Some(body.clone())
    });
    (url, hits)
}

fn tool(integrity: &'static str) -> NpmTool {
    NpmTool {
        name: "hello",
        package: "@fixture/hello-linux-x64",
        version: "1.2.3",
        integrity,
        member: "package/bin/hello",
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn a_verified_tool_is_installed_and_cached() {
    let body = tarball("hello", b"#!/bin/sh\necho hello\n");
    let t = tool(leak(integrity_of(&body)));
    let (url, hits) = registry(body);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");

    let bytes = fetch(&t, &url, &cache).unwrap();
    let installed = install(&t, &bytes, &dir.path().join("root")).unwrap();
    assert_eq!(installed, dir.path().join("root/usr/local/bin/hello"));
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        b"#!/bin/sh\necho hello\n"
    );
    let mode = std::fs::metadata(&installed).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);

    // The second build takes it from the cache.
    fetch(&t, &url, &cache).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn a_tarball_that_does_not_match_its_pin_is_refused_and_not_cached() {
    let (url, _) = registry(tarball("hello", b"tampered"));
    let t = tool(leak(integrity_of(b"what was pinned")));
    let cache = tempfile::tempdir().unwrap();
    let err = fetch(&t, &url, cache.path()).unwrap_err();
    assert!(matches!(err, ToolError::Mismatch { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("hello-linux-x64-1.2.3.tgz") && message.contains("integrity"),
        "{message}"
    );
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

#[test]
fn an_unreachable_registry_names_the_url() {
    // Nothing listens on a port just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = tool("sha512-unused");
    let cache = tempfile::tempdir().unwrap();
    let err = fetch(&t, &format!("http://127.0.0.1:{port}"), cache.path()).unwrap_err();
    assert!(matches!(err, ToolError::Unreachable(_)), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{port}/@fixture/hello-linux-x64")),
        "{err}"
    );
}

#[test]
fn a_tarball_without_the_binary_installs_nothing() {
    let body = tarball("other", b"x");
    let t = tool(leak(integrity_of(&body)));
    let root = tempfile::tempdir().unwrap();
    let err = install(&t, &body, root.path()).unwrap_err();
    assert!(err.to_string().contains("package/bin/hello"), "{err}");
    assert!(!root.path().join("usr/local/bin/hello").exists());
}
