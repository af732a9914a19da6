//! The runtime bundle end to end: package the built default image, install
//! it from a manifest, and boot a VM from it on a fresh state directory
//! without building anything.

mod common;

use common::*;

#[test]
fn a_vm_boots_from_a_fetched_runtime_bundle() {
    require_root_tools();
    ensure_default_image();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("dist/banger-runtime.tar.gz");

    // Package the image the test run built.
    let packer = TestEnv::new(None);
    packer.ok(&["image", "build", "--name", "default"]); // cached: only registers it
    let out = packer.ok(&["runtime", "package", "--out", archive.to_str().unwrap()]);
    let sha = out
        .lines()
        .find_map(|l| l.strip_prefix("sha256 "))
        .expect("sha256 printed")
        .to_string();
    packer.banger(&["daemon", "stop"]);

    // Install it where BANGER_RUNTIME_DIR points, from a manifest with a relative url.
    let manifest = work.path().join("runtime-bundle.local.toml");
    std::fs::write(
        &manifest,
        format!("url = \"./dist/banger-runtime.tar.gz\"\nsha256 = \"{sha}\"\n"),
    )
    .unwrap();
    let runtime = work.path().join("runtime");
    let env = TestEnv::new(Some(Netns::new("bundle")));
    // No shared images_dir here: the image must come from the bundle.
    std::fs::write(
        env.config_dir().join("config.toml"),
        "boot_timeout_secs = 400\n",
    )
    .unwrap();
    let fetch = |args: &[&str]| {
        env.command(BANGER)
            .env("BANGER_RUNTIME_DIR", &runtime)
            .args(args)
            .output()
            .unwrap()
    };
    let out = fetch(&["runtime", "fetch", "--manifest", manifest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = fetch(&["runtime", "show"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("BANGER_RUNTIME_DIR"),
        "{}",
        text(&out)
    );
    let out = fetch(&["doctor"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pass  runtime bundle"),
        "{}",
        text(&out)
    );

    let out = fetch(&["vm", "create", "--name", "from-bundle"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("runtime bundle"),
        "{}",
        text(&out)
    );
    let images = env.json(&["image", "list", "--json"]);
    assert_eq!(images[0]["managed"], false);
    assert!(images[0]["rootfs"]
        .as_str()
        .unwrap()
        .starts_with(runtime.to_str().unwrap()));
    assert_eq!(
        env.ok(&["vm", "ssh", "from-bundle", "--", "cat", "/etc/hostname"]),
        "from-bundle\n"
    );
    env.ok(&["vm", "delete", "--force", "from-bundle"]);
    assert!(
        !env.state_dir().join("images/default").exists(),
        "nothing was built"
    );
}
