//! Image builds against a real small filesystem: needs root (a tmpfs mount),
//! so it is in the end-to-end tier.

mod common;

use std::process::Command;
use std::time::Duration;

use banger_daemon::config::Config;
use banger_daemon::images::ImageError;
use banger_daemon::progress::Reporter;
use banger_image::BuildError;
use common::*;

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
    assert!(
        out.status.success(),
        "mount tmpfs (this tier runs as root): {out:?}"
    );
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
    let result = app
        .images()
        .build(
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
    match &e {
        ImageError::Build(BuildError::NoSpace { dir, free, .. }) => {
            assert_eq!(dir, &small);
            assert_eq!(free, "64M");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.hint().unwrap().contains("images_dir"));
    assert!(leftovers.is_empty(), "nothing staged: {leftovers:?}");
    assert!(app.store().get_image("big").unwrap().is_none());
}
