//! `image build --base-rootfs`: an image built on top of another image's
//! root filesystem (the default image's), with an extra package installed
//! by the base's own apt, booted by a kernel passed with `--kernel` (the
//! default image's own vmlinux, as a user would pass one they trust). The
//! copy keeps setuid and sticky bits, the base is left untouched, and the
//! new image boots under QEMU in a test network namespace with the package
//! working.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn debugfs(image: &Path, command: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", command])
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn an_image_built_on_a_base_rootfs_keeps_its_permissions_and_boots() {
    require_root_tools();
    ensure_default_image();
    let base = images_dir().join("default/rootfs.ext4");
    let base_arg = base.display().to_string();
    let base_before = std::fs::metadata(&base).unwrap().modified().unwrap();

    // The build needs Debian's mirror (apt in the tree): outside the namespace.
    let builder = TestEnv::new(None);
    let packages = builder.root.path().join("extra.apt");
    std::fs::write(&packages, "# one more tool\njq\n").unwrap();
    let packages_arg = packages.display().to_string();
    let kernel = images_dir().join("default/vmlinux");
    let kernel_arg = kernel.display().to_string();
    let build = [
        "image",
        "build",
        "--name",
        "based",
        "--base-rootfs",
        &base_arg,
        "--packages",
        &packages_arg,
        "--kernel",
        &kernel_arg,
    ];
    let out = builder.banger(&build);
    assert!(out.status.success(), "build failed:\n{}", text(&out));
    // The kernel given is the one the image boots; its version is read
    // from the kernel itself.
    assert!(
        std::fs::read(images_dir().join("based/vmlinux")).unwrap()
            == std::fs::read(&kernel).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(images_dir().join("based/kernel-version")).unwrap(),
        std::fs::read_to_string(images_dir().join("default/kernel-version"))
            .unwrap()
            .trim()
    );

    let rootfs = images_dir().join("based/rootfs.ext4");
    assert!(debugfs(&rootfs, "stat /usr/bin/jq").contains("Type: regular"));
    // What an unmounted copy would lose: setuid, sticky.
    assert!(
        debugfs(&rootfs, "stat /usr/bin/su").contains("Mode:  04755"),
        "{}",
        debugfs(&rootfs, "stat /usr/bin/su")
    );
    assert!(debugfs(&rootfs, "stat /tmp").contains("Mode:  01777"));
    assert!(debugfs(&rootfs, "stat /usr/local/bin/banger-agent").contains("Type: regular"));
    // No build leftovers in the image: apt's guard, the host's DNS, apt's lists.
    assert!(debugfs(&rootfs, "stat /usr/sbin/policy-rc.d").contains("File not found"));
    assert_eq!(
        debugfs(&rootfs, "stat /etc/resolv.conf").contains("File not found"),
        debugfs(&base, "stat /etc/resolv.conf").contains("File not found"),
    );
    assert_eq!(
        debugfs(&rootfs, "cat /etc/resolv.conf"),
        debugfs(&base, "cat /etc/resolv.conf")
    );
    assert!(!debugfs(&rootfs, "ls /var/lib/apt/lists").contains("_Packages"));
    // The base's /root went to its own work seed; this one's seed has
    // Debian's dotfiles back (login shells read .bashrc) and mise.
    let seed = images_dir().join("based/work-seed");
    assert!(std::fs::read_to_string(seed.join(".profile"))
        .unwrap()
        .contains(".bashrc"));
    let bashrc = std::fs::read_to_string(seed.join(".bashrc")).unwrap();
    assert_eq!(bashrc.matches("mise activate bash").count(), 1, "{bashrc}");
    // The base is read, never written.
    assert!(debugfs(&base, "stat /usr/bin/jq").contains("File not found"));
    assert_eq!(
        std::fs::metadata(&base).unwrap().modified().unwrap(),
        base_before
    );

    // Bad bases are refused before anything runs.
    for (base, why) in [
        ("/etc/hostname", "not an ext4 filesystem image"),
        ("/nope.ext4", "does not exist"),
    ] {
        let err = builder.fails(&["image", "build", "--name", "bad", "--base-rootfs", base]);
        assert!(err.contains(why), "{err}");
    }
    let err = builder.fails(&[
        "image",
        "build",
        "--name",
        "bad",
        "--kernel",
        "/etc/hostname",
    ]);
    assert!(err.contains("not an ELF file"), "{err}");
    builder.banger(&["daemon", "stop"]);

    let env = TestEnv::new(Some(Netns::new("based")));
    env.write_config("vmm = \"qemu\"");
    // Same base, same packages: the shared images directory has it.
    env.ok(&build);
    env.ok(&["vm", "create", "--name", "onbase", "--image", "based"]);
    let jq = env.ok(&["vm", "exec", "onbase", "--", "jq", "--version"]);
    assert!(jq.starts_with("jq-"), "{jq}");
    let su = env.ok(&[
        "vm",
        "exec",
        "onbase",
        "--",
        "stat",
        "-c",
        "%a",
        "/usr/bin/su",
    ]);
    assert_eq!(su.trim(), "4755");
    env.ok(&["vm", "delete", "onbase"]);
    env.ok(&["image", "delete", "based"]);
}
