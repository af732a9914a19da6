//! restart, kill, stats and set against a real guest, and the errors for
//! bad signals, shrinking disks and reshaping a running VM. The guest boots
//! from an image registered from a directory whose name has a comma: every
//! path in a QEMU option string is escaped.

mod common;

use common::*;

#[test]
fn restart_kill_stats_and_set_work_on_a_real_guest() {
    require_root_tools();
    ensure_default_image();
    let env = TestEnv::new(Some(Netns::new("manage").with_default_route()));
    let files = tempfile::tempdir().unwrap();
    let comma = files.path().join("img,v2");
    std::fs::create_dir_all(&comma).unwrap();
    let default = images_dir().join("default");
    for file in ["rootfs.ext4", "vmlinux", "initrd.img"] {
        let copied = std::process::Command::new("cp")
            .args(["--sparse=always"])
            .arg(default.join(file))
            .arg(comma.join(file))
            .status()
            .unwrap();
        assert!(copied.success(), "copy {file}");
    }
    let path = |f: &str| comma.join(f).display().to_string();
    env.ok(&[
        "image",
        "register",
        "--name",
        "comma",
        "--rootfs",
        &path("rootfs.ext4"),
        "--kernel",
        &path("vmlinux"),
        "--initrd",
        &path("initrd.img"),
        "--work-seed",
        default.join("work-seed").to_str().unwrap(),
    ]);
    env.ok(&[
        "vm",
        "create",
        "--name",
        "tweak",
        "--image",
        "comma",
        "--disk-size",
        "2G",
    ]);
    env.ok(&[
        "vm",
        "ssh",
        "tweak",
        "--",
        "sh",
        "-c",
        "echo kept > /root/note && sync",
    ]);

    // Host-side stats of a running VM.
    let stats = env.json(&["vm", "stats", "tweak", "--json"]);
    assert_eq!(stats["state"], "running");
    assert!(stats["rss_bytes"].as_u64().unwrap() > 64 << 20, "{stats}");
    assert!(stats["cpu_percent"].as_f64().is_some());
    assert!(stats["work_used_bytes"].as_u64().unwrap() > 0);
    assert!(
        stats["overlay_used_bytes"].as_u64().unwrap()
            < stats["overlay_size_bytes"].as_u64().unwrap()
    );
    assert!(env.ok(&["vm", "stats", "tweak"]).contains("resident"));

    // Bad input: a clear error and nothing changed.
    let err = env.fails(&["vm", "kill", "--signal", "BOGUS", "tweak"]);
    assert!(
        err.contains("unknown signal") && err.contains("TERM"),
        "{err}"
    );
    let err = env.fails(&["vm", "set", "tweak", "--memory", "2048"]);
    assert!(
        err.contains("stopped VM") && err.contains("banger vm stop tweak"),
        "{err}"
    );
    assert_eq!(
        env.json(&["vm", "show", "tweak", "--json"])["memory_mib"],
        1024
    );

    // Restart keeps the disks.
    let before = env.json(&["vm", "show", "tweak", "--json"])["pid"].clone();
    env.ok(&["vm", "restart", "tweak"]);
    let after = env.json(&["vm", "show", "tweak", "--json"]);
    assert_eq!(after["state"], "running");
    assert_ne!(after["pid"], before, "a new VMM process");
    assert_eq!(
        env.ok(&["vm", "ssh", "tweak", "--", "cat", "/root/note"]),
        "kept\n"
    );

    // kill -KILL: the VM is shown stopped right away.
    let killed = env.ok(&["vm", "kill", "--signal", "KILL", "tweak"]);
    assert!(killed.contains("stopped"), "{killed}");

    // set on the stopped VM; the disk only grows.
    let err = env.fails(&["vm", "set", "tweak", "--disk-size", "1G"]);
    assert!(err.contains("only grows"), "{err}");
    let err = env.fails(&["vm", "set", "tweak", "--vcpu", "0"]);
    assert!(err.contains("--vcpu 0"), "{err}");
    env.ok(&[
        "vm",
        "set",
        "tweak",
        "--memory",
        "1536",
        "--vcpu",
        "1",
        "--disk-size",
        "3G",
        "--nat",
    ]);
    let vm = env.json(&["vm", "show", "tweak", "--json"]);
    assert_eq!(vm["memory_mib"], 1536);
    assert_eq!(vm["vcpu"], 1);
    assert_eq!(vm["disk_size_bytes"], 3u64 << 30);
    assert_eq!(vm["nat"], true);

    // The guest sees the new shape, and /root kept its file. NAT set while
    // stopped is applied by the start.
    env.ok(&["vm", "start", "tweak"]);
    let ns = &env.netns.as_ref().unwrap().name;
    let rules = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "iptables",
            "-t",
            "nat",
            "-S",
            "POSTROUTING",
        ])
        .output()
        .unwrap();
    let id = vm["id"].as_str().unwrap();
    assert!(
        String::from_utf8_lossy(&rules.stdout).contains(&format!("banger-{id}")),
        "NAT rules after start"
    );
    let shape = env.ok(&[
        "vm",
        "ssh",
        "tweak",
        "--",
        "sh",
        "-c",
        "nproc; df -BM --output=size /root | tail -1; cat /root/note",
    ]);
    let lines: Vec<&str> = shape.lines().collect();
    assert_eq!(lines[0], "1", "{shape}");
    let root_mib: u64 = lines[1].trim().trim_end_matches('M').parse().unwrap();
    assert!(root_mib > 2800, "/root should be ~3G, is {root_mib}M");
    assert_eq!(lines[2], "kept");
    let mem = env.ok(&[
        "vm",
        "ssh",
        "tweak",
        "--",
        "grep",
        "MemTotal",
        "/proc/meminfo",
    ]);
    let kib: u64 = mem.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(kib > 1300 * 1024 && kib < 1536 * 1024, "{mem}");

    // Several refs at once: each reported; one unknown ref fails the command.
    let out = env.banger(&["vm", "delete", "--force", "tweak", "ghost"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("tweak: deleted"), "{stdout}");
    assert!(stderr.contains("ghost"), "{stderr}");
    assert_eq!(
        env.json(&["vm", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
}
