//! The daemon killed (SIGKILL) at each step of create, start, stop and
//! delete, and a simulated host reboot: after the next daemon start every VM
//! is in a true state and nothing is leaked. Real daemon, real QEMU guests,
//! inside a network namespace the test owns.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn tap_links(env: &TestEnv) -> Vec<String> {
    env.netns
        .as_ref()
        .unwrap()
        .links()
        .lines()
        .filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|n| n.trim().split('@').next().unwrap().to_string())
        })
        .filter(|n| n.starts_with("bg-") || n.starts_with("bgp-"))
        .collect()
}

/// Every VM is in a true state and nothing exists that no VM owns.
/// Retries briefly: a VMM may still be exiting while the new daemon starts.
fn assert_true_state(env: &TestEnv, context: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let vms: Vec<Value> = env
            .json(&["vm", "list", "--json"])
            .as_array()
            .unwrap()
            .clone();
        match check(env, &vms) {
            Ok(()) => return vms,
            Err(problem) if Instant::now() > deadline => {
                panic!("{context}: {problem}\nVMs: {vms:#?}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

fn check(env: &TestEnv, vms: &[Value]) -> Result<(), String> {
    let vms_dir = env.state_dir().join("vms");
    for entry in std::fs::read_dir(&vms_dir)
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !vms.iter().any(|vm| vm["id"] == name.as_str()) {
            return Err(format!("leaked VM directory {name}"));
        }
    }
    let taps = tap_links(env);
    let mut idle_pool = 0;
    for tap in &taps {
        if !vms
            .iter()
            .any(|vm| vm["tap"] == tap.as_str() && vm["state"] == "running")
        {
            // Warm pool TAPs (tap_pool_size = 2) belong to no VM.
            if tap.starts_with("bgp-") && idle_pool < 2 {
                idle_pool += 1;
                continue;
            }
            return Err(format!("leaked TAP {tap}"));
        }
    }
    let state_dir = env.state_dir().display().to_string();
    let vmms = vmm_pids(&state_dir);
    for vm in vms {
        let dir = vm["dir"].as_str().unwrap();
        for disk in ["overlay.ext4", "work.ext4"] {
            if !Path::new(dir).join(disk).exists() {
                return Err(format!("VM {} lost its {disk}", vm["name"]));
            }
        }
        let running = vm["state"] == "running";
        let has_vmm = !vmm_pids(dir).is_empty();
        // Every QEMU VM has its vsock helper, and only while it runs.
        let has_helper = !helper_pids(dir).is_empty();
        if running != has_helper {
            return Err(format!(
                "VM {} is {} but its vsock helper running={has_helper}",
                vm["name"], vm["state"]
            ));
        }
        let has_tap = taps.iter().any(|t| vm["tap"] == t.as_str());
        if running != has_vmm || running != has_tap {
            return Err(format!(
                "VM {} is {} but VMM running={has_vmm}, TAP={has_tap}",
                vm["name"], vm["state"]
            ));
        }
        if vm["state"] != "running" && vm["state"] != "stopped" {
            return Err(format!("VM {} is left {}", vm["name"], vm["state"]));
        }
    }
    let running = vms.iter().filter(|vm| vm["state"] == "running").count();
    if vmms.len() > running {
        return Err(format!("leaked VMM processes: {vmms:?}"));
    }
    let helpers = helper_pids(&state_dir);
    if helpers.len() > running {
        return Err(format!("leaked vsock helpers: {helpers:?}"));
    }
    Ok(())
}

fn state_of(env: &TestEnv, name: &str) -> String {
    env.json(&["vm", "show", name, "--json"])["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_daemon_killed_at_any_step_recovers_without_leaks() {
    require_root_tools();
    ensure_default_image();
    let env = TestEnv::new(Some(Netns::new("crash")));
    assert_eq!(
        env.json(&["daemon", "status", "--json"])["crash_points"],
        true,
        "this bangerd has no crash injection: run as `cargo test --workspace --all-features`"
    );

    // Creates interrupted at every step are rolled back completely.
    for point in [
        "create.claimed",
        "create.disks",
        "boot.tap",
        "boot.launched",
    ] {
        crash_at(&env, point, &["vm", "create", "--name", "crashy"]);
        let vms = assert_true_state(&env, point);
        assert!(
            vms.is_empty(),
            "{point}: the partial create was not rolled back: {vms:#?}"
        );
    }

    env.ok(&["vm", "create", "--name", "keeper"]);
    env.ok(&[
        "vm",
        "ssh",
        "keeper",
        "--",
        "sh",
        "-c",
        "echo survives > /root/note && sync",
    ]);

    // Stop interrupted after the shutdown request, then after the VMM exited.
    crash_at(&env, "stop.requested", &["vm", "stop", "keeper"]);
    assert_true_state(&env, "stop.requested");
    if state_of(&env, "keeper") == "running" {
        env.ok(&["vm", "stop", "keeper"]);
    }
    env.ok(&["vm", "start", "keeper"]);
    crash_at(&env, "stop.exited", &["vm", "stop", "keeper"]);
    assert_true_state(&env, "stop.exited");
    assert_eq!(state_of(&env, "keeper"), "stopped");

    // Start interrupted before and after the VMM exists.
    crash_at(&env, "boot.tap", &["vm", "start", "keeper"]);
    assert_true_state(&env, "start at boot.tap");
    assert_eq!(state_of(&env, "keeper"), "stopped");
    crash_at(&env, "boot.launched", &["vm", "start", "keeper"]);
    assert_true_state(&env, "start at boot.launched");
    assert_eq!(
        state_of(&env, "keeper"),
        "running",
        "a live VMM is adopted, not killed"
    );

    // Host reboot: the daemon, the VMM and the TAP devices all vanish.
    let pid = env.json(&["daemon", "status", "--json"])["pid"]
        .as_u64()
        .unwrap();
    let vm = env.json(&["vm", "show", "keeper", "--json"]);
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    for vmm in vmm_pids(vm["dir"].as_str().unwrap()) {
        std::process::Command::new("kill")
            .args(["-9", &vmm.to_string()])
            .status()
            .unwrap();
    }
    let ns = &env.netns.as_ref().unwrap().name;
    std::process::Command::new("ip")
        .args(["-n", ns, "link", "del", vm["tap"].as_str().unwrap()])
        .status()
        .unwrap();
    assert_true_state(&env, "after reboot");
    let after = env.json(&["vm", "show", "keeper", "--json"]);
    assert_eq!(after["state"], "stopped");
    assert!(
        after["stop_reason"]
            .as_str()
            .unwrap()
            .contains("not running when bangerd started"),
        "{after}"
    );
    env.ok(&["vm", "start", "keeper"]);
    assert_eq!(
        env.ok(&["vm", "ssh", "keeper", "--", "cat", "/root/note"]),
        "survives\n"
    );

    // Delete interrupted after the stop, and after the row is gone.
    crash_at(
        &env,
        "delete.stopped",
        &["vm", "delete", "--force", "keeper"],
    );
    assert_true_state(&env, "delete.stopped");
    assert_eq!(state_of(&env, "keeper"), "stopped");
    crash_at(&env, "delete.row", &["vm", "delete", "keeper"]);
    let vms = assert_true_state(&env, "delete.row");
    assert!(vms.is_empty());
    assert!(
        !Path::new(vm["dir"].as_str().unwrap()).exists(),
        "the interrupted delete was finished"
    );
}
