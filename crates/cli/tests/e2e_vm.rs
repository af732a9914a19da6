//! End to end, for real: the CLI auto-starts the daemon inside a network
//! namespace made for the test, which builds (once per run) the default
//! image from Debian's mirror, boots a real guest under QEMU, and the test
//! talks to it over SSH.

mod common;

use std::path::Path;

use common::*;

#[test]
fn a_vm_boots_keeps_its_files_across_stop_start_and_leaves_nothing_when_deleted() {
    require_root_tools();
    ensure_default_image();
    let env = TestEnv::new(Some(Netns::new("life")));

    // Create: the image is cached, so this is only the VM's own work.
    let vm = env.json(&["vm", "create", "--name", "calm-otter", "--json"]);
    assert_eq!(vm["state"], "running");
    assert_eq!(vm["vmm"], "qemu");
    let id = vm["id"].as_str().unwrap().to_string();
    let dir = vm["dir"].as_str().unwrap().to_string();
    let tap = vm["tap"].as_str().unwrap().to_string();
    assert!(vm["ip"].as_str().unwrap().starts_with("172.30.0."));
    assert!(env.netns.as_ref().unwrap().links().contains(&tap));

    assert_eq!(
        env.ok(&["vm", "ssh", "calm-otter", "--", "cat", "/etc/hostname"]),
        "calm-otter\n"
    );
    // The overlay's disks stay visible to the guest's systemd (clean shutdown).
    assert_eq!(
        env.ok(&[
            "vm",
            "ssh",
            "calm-otter",
            "--",
            "findmnt",
            "-n",
            "-o",
            "TARGET",
            "/run/banger/rw"
        ]),
        "/run/banger/rw\n"
    );
    env.ok(&[
        "vm",
        "ssh",
        "calm-otter",
        "--",
        "sh",
        "-c",
        "echo kept-in-root > /root/note && echo kept-in-etc > /etc/banger-note && sync",
    ]);

    // The list shows it; a ref may be an id prefix.
    let list = env.ok(&["vm", "list"]);
    assert!(
        list.contains("NAME") && list.contains("calm-otter") && list.contains("running"),
        "{list}"
    );
    assert_eq!(
        env.json(&["vm", "show", &id[..6], "--json"])["name"],
        "calm-otter"
    );

    // Bad input on a live system: a clear error, nothing changed.
    let err = env.fails(&["vm", "create", "--name", "calm-otter"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        env.json(&["vm", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A daemon restart does not touch the running VM, which stays managed.
    let pids = vmm_pids(&dir);
    assert_eq!(pids.len(), 1, "one VMM process for the VM");
    assert_eq!(helper_pids(&dir).len(), 1, "one vsock helper for the VM");
    env.ok(&["daemon", "stop"]);
    assert_eq!(vmm_pids(&dir), pids, "the VMM survives the daemon");
    assert_eq!(
        env.json(&["vm", "show", "calm-otter", "--json"])["state"],
        "running"
    );
    assert_eq!(
        env.ok(&["vm", "ssh", "calm-otter", "--", "cat", "/root/note"]),
        "kept-in-root\n"
    );

    // A VMM killed behind the daemon's back: the VM shows stopped, with the
    // reason, within a couple of seconds, and its disks are intact.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pids[0]).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let crashed = loop {
        let vm = env.json(&["vm", "show", "calm-otter", "--json"]);
        if vm["state"] == "stopped" || std::time::Instant::now() > deadline {
            break vm;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(crashed["state"], "stopped", "{crashed}");
    assert!(
        crashed["stop_reason"].as_str().unwrap().contains("exited"),
        "{crashed}"
    );
    assert!(
        !env.netns.as_ref().unwrap().links().contains(&tap),
        "TAP released after the crash"
    );
    env.ok(&["vm", "start", "calm-otter"]);
    assert_eq!(
        env.ok(&["vm", "ssh", "calm-otter", "--", "cat", "/root/note"]),
        "kept-in-root\n"
    );
    // Each start gets a TAP (a warm one from the pool when ready).
    let tap = env.json(&["vm", "show", "calm-otter", "--json"])["tap"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(env.netns.as_ref().unwrap().links().contains(&tap));

    // Stop keeps the disks; start brings back both files.
    env.ok(&["vm", "stop", "calm-otter"]);
    let stopped = env.json(&["vm", "show", "calm-otter", "--json"]);
    assert_eq!(stopped["state"], "stopped");
    assert!(stopped.get("pid").is_none());
    assert!(vmm_pids(&dir).is_empty(), "no VMM after stop");
    assert!(helper_pids(&dir).is_empty(), "no vsock helper after stop");
    assert!(
        !env.netns.as_ref().unwrap().links().contains(&tap),
        "TAP removed on stop"
    );
    let err = env.fails(&["vm", "ssh", "calm-otter", "--", "true"]);
    assert!(
        err.contains("not running") && err.contains("banger vm start"),
        "{err}"
    );

    env.ok(&["vm", "start", "calm-otter"]);
    assert_eq!(
        env.ok(&[
            "vm",
            "ssh",
            "calm-otter",
            "--",
            "cat",
            "/root/note",
            "/etc/banger-note"
        ]),
        "kept-in-root\nkept-in-etc\n"
    );
    let tap = env.json(&["vm", "show", "calm-otter", "--json"])["tap"]
        .as_str()
        .unwrap()
        .to_string();

    // Delete removes process, TAP, disks and directory; the image stays.
    env.ok(&["vm", "delete", "calm-otter"]);
    assert!(vmm_pids(&dir).is_empty(), "no VMM after delete");
    assert!(helper_pids(&dir).is_empty(), "no vsock helper after delete");
    assert!(
        !env.netns.as_ref().unwrap().links().contains(&tap),
        "no TAP after delete"
    );
    assert!(!Path::new(&dir).exists(), "VM directory removed");
    assert_eq!(
        env.json(&["vm", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert!(
        images_dir().join("default/rootfs.ext4").exists(),
        "the image stays"
    );
    let err = env.fails(&["vm", "show", "calm-otter"]);
    assert!(err.contains("no VM named"), "{err}");
}

#[test]
fn a_create_that_fails_half_way_leaves_nothing_behind() {
    require_root_tools();
    ensure_default_image();
    let env = TestEnv::new(Some(Netns::new("fail")));
    // A VMM that exits at once: disks, keys and the TAP exist by then.
    env.write_config("vmm = \"qemu\"\nqemu_bin = \"/bin/false\"");
    let err = env.fails(&["vm", "create", "--name", "doomed"]);
    assert!(err.contains("error:"), "{err}");
    assert_eq!(
        env.json(&["vm", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let vms_dir = env.state_dir().join("vms");
    let left: Vec<_> = std::fs::read_dir(&vms_dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "VM files left behind: {left:?}");
    assert!(
        !env.netns.as_ref().unwrap().links().contains("bg-"),
        "TAP left behind"
    );
}

#[test]
fn bad_input_gets_one_clear_error() {
    require_root_tools();
    let env = TestEnv::new(Some(Netns::new("bad")));
    for (args, expect) in [
        (&["vm", "create", "--name", "Bad_Name"][..], "invalid name"),
        (&["vm", "create", "--name=-x"][..], "invalid name"),
        (&["vm", "create", "--vcpu", "0"][..], "--vcpu 0"),
        (&["vm", "create", "--memory", "12"][..], "--memory 12"),
        (
            &["vm", "create", "--disk-size", "12Q"][..],
            "cannot parse size",
        ),
        (&["vm", "create", "--image", "nosuch"][..], "no image named"),
        (&["vm", "show", "ghost"][..], "no VM named"),
        (&["vm", "stop", "ghost"][..], "no VM named"),
        (&["vm", "ssh", "ghost"][..], "no VM named"),
    ] {
        let err = env.fails(args);
        assert!(
            err.contains(expect),
            "banger {args:?}: expected {expect:?} in:\n{err}"
        );
        assert!(err.starts_with("error:"), "{err}");
    }
    // A missing VMM binary names the tool and how to install it.
    env.banger(&["daemon", "stop"]);
    env.write_config("vmm = \"qemu\"\nqemu_bin = \"/nonexistent/qemu-system-x86_64\"");
    let err = env.fails(&["vm", "create", "--name", "ok-name"]);
    assert!(
        err.contains("qemu-system-x86_64") && err.contains("apt-get install qemu-system-x86"),
        "{err}"
    );
    // doctor names the same problem, with the same fix, and fails.
    let out = env.banger(&["doctor"]);
    assert!(!out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("FAIL  qemu") && report.contains("apt-get install qemu-system-x86"),
        "{report}"
    );
    // A broken config file is reported with the key at fault.
    env.banger(&["daemon", "stop"]);
    env.write_config("not_a_key = 1");
    let err = env.fails(&["vm", "list"]);
    assert!(err.contains("not_a_key"), "{err}");
    assert!(env.state_dir().exists());
}

#[test]
fn daemon_status_reports_its_paths_and_socket_is_private() {
    require_root_tools();
    let env = TestEnv::new(Some(Netns::new("status")));
    let status = env.json(&["daemon", "status", "--json"]);
    let socket = status["socket"].as_str().unwrap();
    assert!(socket.ends_with("run/banger/bangerd.sock"), "{socket}");
    assert!(status["log"]
        .as_str()
        .unwrap()
        .ends_with("state/banger/bangerd.log"));
    assert_eq!(status["dns"], "127.0.0.1:42069");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode");
    assert_eq!(env.ok(&["daemon", "socket"]).trim(), socket);
    // doctor passes on a machine set up by scripts/install-deps, and sees the daemon.
    let checks = env.json(&["doctor", "--json"]);
    let daemon = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "daemon")
        .unwrap();
    assert!(
        daemon["detail"].as_str().unwrap().contains("listening"),
        "{daemon}"
    );
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] != "fail"),
        "{checks:#}"
    );
    // The log is JSON lines.
    let log = std::fs::read_to_string(status["log"].as_str().unwrap()).unwrap();
    let first = log.lines().next().unwrap();
    serde_json::from_str::<serde_json::Value>(first).expect("JSON log line");
    // Another user cannot use this daemon, and is told why. (A copy of the
    // binary, in case the checkout is not readable by that user.)
    let copy = std::env::temp_dir().join(format!("banger-as-nobody-{}", std::process::id()));
    std::fs::copy(BANGER, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&copy)
        .args(["daemon", "status"])
        .env("XDG_RUNTIME_DIR", env.root.path().join("run"))
        .env("XDG_STATE_HOME", "/tmp")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&copy);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("permission denied") && err.contains("uid"),
        "{err}"
    );

    env.ok(&["daemon", "stop"]);
    assert!(!Path::new(socket).exists(), "socket removed on stop");
}
