//! `vm clone` through the daemon (fake Firecracker, real ext4 disks): the
//! clone has the source's files and an identity of its own, the source is
//! untouched, a running source whose image has no agent is refused (its
//! clone could not take its own identity), and a failed clone leaves
//! nothing.

mod common;

use std::path::Path;
use std::time::Duration;

use banger_api::VmState;
use banger_daemon::progress::Reporter;
use banger_daemon::vms::VmError;
use common::*;

fn debugfs(image: &Path, request: &str) -> String {
    let out = std::process::Command::new("debugfs")
        .args(["-R", request])
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn put(image: &Path, dir: &str, name: &str, contents: &str) {
    let local = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(local.path(), contents).unwrap();
    let script = format!("cd {dir}\nwrite {} {name}\n", local.path().display());
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), script).unwrap();
    let ok = std::process::Command::new("debugfs")
        .args(["-w", "-f"])
        .arg(file.path())
        .arg(image)
        .output()
        .unwrap();
    assert!(ok.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_has_the_files_and_its_own_identity() {
    let d = daemon(Duration::from_millis(50));
    let vms = d.app.vms().clone();
    let src = create(&d.app, "origin").await;

    let refused = vms
        .clone()
        .clone_vm("origin".into(), Some("early".into()), Reporter::silent())
        .await;
    assert!(
        matches!(refused, Err(VmError::CloneNeedsAgent { .. })),
        "{refused:?}"
    );
    assert!(
        d.app.store().resolve_vm("early").is_err(),
        "nothing of it kept"
    );

    vms.clone().stop("origin".into(), false).await.unwrap();
    // What the source's guest had done: a file in /root, its machine-id.
    let from = src.files();
    put(&from.work(), "/", "note", "kept\n");
    put(
        &from.overlay(),
        "/upper/etc",
        "machine-id",
        "0123456789abcdef\n",
    );

    let copy = vms
        .clone()
        .clone_vm("origin".into(), Some("copy".into()), Reporter::silent())
        .await
        .unwrap();
    assert_eq!(copy.state, VmState::Running);
    assert_ne!(copy.id, src.id);
    assert_ne!(copy.ip, src.ip);
    assert_ne!(copy.mac, src.mac);
    assert_ne!(copy.tap, src.tap);
    assert_eq!((copy.vcpu, copy.memory_mib), (src.vcpu, src.memory_mib));
    assert_eq!(copy.disk_size_bytes, src.disk_size_bytes);
    let to = copy.files();
    assert_eq!(debugfs(&to.work(), "cat /note"), "kept\n");
    assert_eq!(debugfs(&to.overlay(), "cat /upper/etc/hostname"), "copy\n");
    assert!(debugfs(&to.overlay(), "cat /upper/etc/banger/network").contains(&copy.ip.to_string()));
    assert!(debugfs(&to.overlay(), "cat /upper/etc/banger/network").contains(&copy.mac.to_string()));
    assert!(!debugfs(&to.overlay(), "stat /upper/etc/machine-id").contains("Type: regular"));
    let key = |dir: &Path| std::fs::read_to_string(dir.join("ssh_host_ed25519_key.pub")).unwrap();
    assert_ne!(key(&to.dir), key(&from.dir), "its own host key");
    assert_eq!(
        debugfs(&to.overlay(), "cat /upper/etc/ssh/ssh_host_ed25519_key.pub"),
        key(&to.dir)
    );
    let known = std::fs::read_to_string(to.known_hosts()).unwrap();
    assert!(
        known.starts_with(&format!("banger-{} ", copy.id)),
        "{known}"
    );
    // The source is as it was.
    assert_eq!(
        debugfs(&from.overlay(), "cat /upper/etc/hostname"),
        "origin\n"
    );
    assert_eq!(
        d.app.store().resolve_vm("origin").unwrap().state,
        VmState::Stopped
    );
    // A name that is taken is refused before anything is made.
    let taken = vms
        .clone()
        .clone_vm("origin".into(), Some("copy".into()), Reporter::silent())
        .await;
    assert!(matches!(taken, Err(VmError::NameTaken(_))), "{taken:?}");

    vms.clone().delete("copy".into(), true).await.unwrap();
    vms.clone().delete("origin".into(), true).await.unwrap();
    assert!(!to.dir.exists() && !from.dir.exists());
}
