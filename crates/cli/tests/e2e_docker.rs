//! `image build --docker`: an image with Docker, booted under QEMU in a test
//! network namespace; the Docker daemon runs in the guest (overlay2 on the
//! ext4 /root) and runs a container.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_docker_image_boots_with_a_working_docker_daemon() {
    require_root_tools();
    // The build needs Debian's mirror: outside the namespace.
    let builder = TestEnv::new(None);
    let out = builder.banger(&["image", "build", "--name", "docker-test", "--docker"]);
    assert!(out.status.success(), "build failed:\n{}", text(&out));
    builder.banger(&["daemon", "stop"]);

    let env = TestEnv::new(Some(Netns::new("docker")));
    env.write_config("vmm = \"qemu\"");
    // The same build in the VM's own state: the shared images directory
    // already has it (no network needed), so this only records it.
    env.ok(&["image", "build", "--name", "docker-test", "--docker"]);
    env.ok(&["vm", "create", "--name", "whale", "--image", "docker-test"]);
    let version = env.ok(&["vm", "exec", "whale", "--", "docker", "--version"]);
    assert!(version.starts_with("Docker version"), "{version}");
    // dockerd starts with the guest; under emulation it takes a while.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = env.banger(&[
            "vm",
            "exec",
            "whale",
            "--",
            "docker",
            "info",
            "--format",
            "{{.ServerVersion}} {{.Driver}}",
        ]);
        if out.status.success() {
            // overlay2 works because Docker's data is on the ext4 /root.
            let info = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(info.contains("overlay2"), "{info}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Docker daemon never answered:\n{}\n{}",
            text(&out),
            env.ok(&[
                "vm",
                "exec",
                "whale",
                "--",
                "journalctl",
                "-u",
                "docker",
                "--no-pager",
                "-n",
                "20"
            ])
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    // A container runs (no registry here: an image imported from the
    // guest's own busybox), under AppArmor's default profile.
    let out = env.ok(&[
        "vm",
        "exec",
        "whale",
        "--",
        "sh",
        "-c",
        "mkdir -p /tmp/bb && cp /bin/busybox /tmp/bb/ && tar -C /tmp/bb -c . | docker import - bb >/dev/null \
         && docker run --rm --network none bb /busybox echo hello-from-a-container",
    ]);
    assert_eq!(out, "hello-from-a-container\n");
    env.ok(&["vm", "delete", "whale"]);
    let out = env.banger(&["image", "delete", "docker-test"]);
    assert!(out.status.success(), "{}", text(&out));
}
