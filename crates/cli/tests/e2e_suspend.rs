//! Suspend and resume of a real guest under QEMU: processes (same PID), a
//! tmux session and a file in /dev/shm are there after a resume, the clock
//! is set from the host, and the VM survives a daemon restart and a
//! simulated host reboot (daemon gone, bridge gone) while suspended, and
//! the daemon killed at each step of a suspend and a resume. Then a clone
//! of it, stopped: both run at once, each with its own identity.
//!
//! QEMU refuses to save a guest with its vhost-user vsock device, so the
//! guest here boots an image without the agent (the default image's files
//! with the agent binary taken out, registered): it has no vsock device and
//! is reached over SSH. That the default image's guest is refused with
//! QEMU's reason, and keeps running, is checked too.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn ssh(env: &TestEnv, vm: &str, script: &str) -> String {
    env.ok(&["vm", "ssh", vm, "--", "sh", "-c", script])
}

/// How far the guest's clock is outside the host's while it was read
/// (an SSH login under emulation takes seconds), in seconds; 0 inside.
fn clock_skew(env: &TestEnv, vm: &str) -> f64 {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let before = now();
    let guest: f64 = ssh(env, vm, "date +%s.%N").trim().parse().unwrap();
    let after = now();
    if guest < before {
        guest - before
    } else if guest > after {
        guest - after
    } else {
        0.0
    }
}

fn state_of(env: &TestEnv, name: &str) -> String {
    env.json(&["vm", "show", name, "--json"])["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_suspended_guest_comes_back_with_its_processes_after_a_daemon_restart_and_a_reboot() {
    require_root_tools();
    ensure_default_image();
    let env = TestEnv::new(Some(Netns::new("suspend")));

    // The default image without its agent: no vsock device under QEMU.
    let files = tempfile::tempdir().unwrap();
    let default = images_dir().join("default");
    for file in ["rootfs.ext4", "vmlinux", "initrd.img"] {
        run_ok(
            Command::new("cp")
                .arg("--sparse=always")
                .arg(default.join(file))
                .arg(files.path().join(file)),
        );
    }
    let rootfs = files.path().join("rootfs.ext4");
    run_ok(
        Command::new("debugfs")
            .args(["-w", "-R", "rm /usr/local/bin/banger-agent"])
            .arg(&rootfs),
    );
    let path = |f: &str| files.path().join(f).display().to_string();
    env.ok(&[
        "image",
        "register",
        "--name",
        "plain",
        "--rootfs",
        &path("rootfs.ext4"),
        "--kernel",
        &path("vmlinux"),
        "--initrd",
        &path("initrd.img"),
        "--work-seed",
        default.join("work-seed").to_str().unwrap(),
    ]);
    let vm = env.json(&[
        "vm", "create", "--name", "nap", "--image", "plain", "--json",
    ]);
    let dir = std::path::PathBuf::from(vm["dir"].as_str().unwrap());
    assert!(!dir.join("vhost-vsock.sock").exists(), "no vsock device");

    // Work in progress: a process, a tmux session, a file in RAM.
    ssh(
        &env,
        "nap",
        "nohup sleep 100000 >/dev/null 2>&1 & echo $! > /root/sleep.pid; \
         tmux new-session -d -s work 'sleep 100001'; echo in-ram > /dev/shm/note",
    );
    let pid = ssh(&env, "nap", "cat /root/sleep.pid").trim().to_string();

    let suspended = env.json(&["vm", "suspend", "nap", "--json"]);
    assert_eq!(suspended[0]["state"], "suspended");
    let saved = suspended[0]["saved_state_bytes"].as_u64().unwrap();
    assert!(saved > 10 << 20, "{saved} bytes saved");
    let list = env.ok(&["vm", "list"]);
    assert!(list.contains("suspended"), "{list}");
    let tap = vm["tap"].as_str().unwrap();
    assert!(
        !env.netns.as_ref().unwrap().links().contains(tap),
        "TAP freed"
    );
    assert!(
        vmm_pids(dir.to_str().unwrap()).is_empty(),
        "no VMM while suspended"
    );

    // A daemon restart, then a host reboot: the daemon gone and the bridge
    // with it. The VM stays suspended.
    env.ok(&["daemon", "stop"]);
    env.ok(&["daemon", "status"]);
    env.ok(&["daemon", "stop"]);
    run_ok(env.command("ip").args(["link", "del", "banger0"]));
    std::thread::sleep(Duration::from_secs(3));
    let show = env.json(&["vm", "show", "nap", "--json"]);
    assert_eq!(show["state"], "suspended");

    let resumed = env.ok(&["vm", "resume", "nap"]);
    assert!(resumed.contains("running again"), "{resumed}");
    assert_eq!(
        ssh(&env, "nap", &format!("kill -0 {pid} && echo alive")).trim(),
        "alive",
        "the same process, same PID"
    );
    assert_eq!(ssh(&env, "nap", "cat /dev/shm/note").trim(), "in-ram");
    assert!(ssh(&env, "nap", "tmux ls").contains("work:"));
    // The clock is set from the host in the background, over SSH.
    let mut skew = f64::MAX;
    for _ in 0..20 {
        skew = clock_skew(&env, "nap");
        if skew.abs() < 2.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(skew.abs() < 2.0, "guest clock {skew:.1} s off");
    let show = env.json(&["vm", "show", "nap", "--json"]);
    assert_eq!(show["state"], "running");
    assert!(show.get("saved_state_bytes").is_none());
    assert!(!dir.join("saved").exists() && !dir.join("saved.used").exists());

    // The daemon killed at each step of a suspend and of a resume: the next
    // daemon finds the VM running or suspended, never half of one, and the
    // guest's processes survive all of it.
    for (point, verb, settled) in [
        ("suspend.begin", "suspend", "running"),
        ("suspend.saved", "suspend", "suspended"),
        ("resume.loaded", "resume", "suspended"),
        ("resume.used", "resume", "running"),
    ] {
        if verb == "resume" && state_of(&env, "nap") != "suspended" {
            env.ok(&["vm", "suspend", "nap"]);
        }
        crash_at(&env, point, &["vm", verb, "nap"]);
        let state = state_of(&env, "nap");
        assert_eq!(state, settled, "after a crash at {point}");
        let running = vmm_pids(dir.to_str().unwrap());
        match settled {
            "running" => assert_eq!(running.len(), 1, "one VMM after {point}"),
            _ => {
                assert!(running.is_empty(), "no VMM left after {point}: {running:?}");
                assert!(
                    dir.join("saved/state.json").exists(),
                    "the state kept at {point}"
                );
            }
        }
        assert!(!dir.join("saved.partial").exists() && !dir.join("saved.used").exists());
    }
    if state_of(&env, "nap") != "running" {
        env.ok(&["vm", "resume", "nap"]);
    }
    assert_eq!(
        ssh(&env, "nap", &format!("kill -0 {pid} && echo alive")).trim(),
        "alive",
        "the process outlived every crash"
    );

    // A clone of the stopped VM: both run at once, with the source's files
    // and each its own identity.
    env.ok(&["vm", "stop", "nap"]);
    // The daemon killed once the disks are copied: the half-made clone is
    // rolled back at the next start, the source untouched.
    crash_at(
        &env,
        "clone.copied",
        &["vm", "clone", "nap", "--name", "nap-crash"],
    );
    let list = env.json(&["vm", "list", "--json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nap"], "the interrupted clone is gone");
    assert_eq!(state_of(&env, "nap"), "stopped");
    let vms_dir = dir.parent().unwrap();
    assert_eq!(
        std::fs::read_dir(vms_dir).unwrap().count(),
        1,
        "no clone directory left"
    );
    let copy = env.json(&["vm", "clone", "nap", "--name", "nap-copy", "--json"]);
    assert_eq!(copy["state"], "running");
    env.ok(&["vm", "start", "nap"]);
    let ask = |vm: &str, script: &str| ssh(&env, vm, script).trim().to_string();
    assert_eq!(ask("nap-copy", "hostname"), "nap-copy");
    assert_eq!(ask("nap", "hostname"), "nap");
    assert_eq!(
        ask("nap-copy", "cat /root/sleep.pid"),
        pid,
        "the source's /root"
    );
    for script in [
        "cat /sys/class/net/eth0/address",
        "ip -4 -o addr show eth0",
        "cat /etc/machine-id",
        "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
        "head -c 16 /dev/urandom | od -An -tx1",
    ] {
        assert_ne!(ask("nap", script), ask("nap-copy", script), "{script}");
    }
    let dig = env
        .command("dig")
        .args(["@127.0.0.1", "-p", "42069", "+short", "nap-copy.vm"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&dig.stdout).trim(),
        copy["ip"].as_str().unwrap()
    );
    env.ok(&["vm", "delete", "nap-copy"]);

    // Suspended again and deleted: the saved state goes with it.
    env.ok(&["vm", "suspend", "nap"]);
    env.ok(&["vm", "delete", "nap"]);
    assert!(!dir.exists());
}
