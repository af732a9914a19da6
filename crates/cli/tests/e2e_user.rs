//! banger as a developer uses it: the daemon and its VMMs run as an
//! ordinary user, and the root helper — started by root for that user in
//! the test's network namespace — makes the bridge, TAP and NAT changes.
//! The user reuses the default image (a copy in the user's own images
//! directory), creates a VM, reaches it by `vm exec` and `vm ssh`, turns
//! NAT on and off, stops and starts it, survives the helper being killed
//! and restarted, and deletes it; nothing is left behind, and nothing under
//! the user's directories belongs to root.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::*;

/// The ordinary user the test acts as (made once; `useradd -m` gives it
/// subordinate ids, as for any user).
const USER: &str = "banger-e2e";
/// A second user, for two users on one host.
const OTHER: &str = "banger-e2e2";

fn ids_of(name: &str) -> (u32, u32) {
    let lookup = || nix::unistd::User::from_name(name).unwrap();
    if lookup().is_none() {
        let out = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", name])
            .output()
            .unwrap();
        // Another test may have made it meanwhile.
        assert!(
            out.status.success() || lookup().is_some(),
            "useradd: {}",
            text(&out)
        );
    }
    let user = lookup().unwrap();
    (user.uid.as_raw(), user.gid.as_raw())
}

fn user_ids() -> (u32, u32) {
    ids_of(USER)
}

fn helper_binary() -> PathBuf {
    let helper = Path::new(BANGER).with_file_name("banger-helper");
    assert!(
        helper.is_file(),
        "{} is missing (cargo test --workspace)",
        helper.display()
    );
    helper
}

/// The helper, as root, in the namespace, serving `USER`. The caller
/// kills and waits for it.
fn start_helper(netns: &str, socket: &Path, log: &Path) -> Child {
    start_helper_for(netns, socket, log, &[USER])
}

#[allow(clippy::zombie_processes)]
fn start_helper_for(netns: &str, socket: &Path, log: &Path, owners: &[&str]) -> Child {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns]).arg(helper_binary());
    for owner in owners {
        command.args(["--owner", owner]);
    }
    let mut child = command
        .arg("--socket")
        .arg(socket)
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if socket.exists() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "the helper never listened: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn uid_of_pid(pid: u32) -> u32 {
    std::fs::metadata(format!("/proc/{pid}")).unwrap().uid()
}

/// Files under `dir` owned by root.
fn roots_files(dir: &Path) -> Vec<PathBuf> {
    let out = Command::new("find")
        .arg(dir)
        .args(["-uid", "0"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

#[test]
fn a_user_runs_vms_with_the_root_helper_doing_only_the_network() {
    require_root_tools();
    ensure_default_image();
    let (uid, gid) = user_ids();
    let netns = Netns::new("user").with_default_route();
    let ns = netns.name.clone();
    let env = TestEnv::as_user(Some(netns), uid, gid);
    // The helper's socket and log are root's: outside the user's directories.
    let helper_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        helper_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let socket = helper_dir.path().join("helper.sock");
    let helper_log = helper_dir.path().join("helper.log");

    // The user's own copy of the default image (reused, not rebuilt: same
    // builder, same agent, so the build finds it complete).
    let images = env.root.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let copied = Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(images_dir().join("default"))
        .arg(&images)
        .status()
        .unwrap();
    assert!(copied.success());
    Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(&images)
        .status()
        .unwrap();
    std::fs::write(
        env.config_dir().join("config.toml"),
        format!(
            "images_dir = {:?}\nboot_timeout_secs = 400\nvmm = \"qemu\"\nhelper_socket = {:?}\n",
            images.display().to_string(),
            socket.display().to_string()
        ),
    )
    .unwrap();

    // Without the helper, the user is told what to run.
    let err = env.fails(&["vm", "create", "--name", "nohelper"]);
    assert!(
        err.contains("root helper") && err.contains("banger system install"),
        "{err}"
    );
    // doctor fails (exit 1) and says why.
    let doctor: serde_json::Value =
        serde_json::from_slice(&env.banger(&["doctor", "--json"]).stdout).unwrap();
    let privileges = doctor
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "network privileges")
        .unwrap()
        .clone();
    assert_eq!(privileges["status"], "fail", "{privileges}");
    env.ok(&["daemon", "stop"]);

    let mut helper = start_helper(&ns, &socket, &helper_log);
    let status = env.ok(&[
        "system",
        "status",
        "--socket",
        &socket.display().to_string(),
    ]);
    assert!(
        status.contains("running") && status.contains(USER) && status.contains("banger0"),
        "{status}"
    );

    env.ok(&["vm", "create", "--name", "u1"]);
    let vm = env.json(&["vm", "show", "u1", "--json"]);
    let pid = u32::try_from(vm["pid"].as_u64().unwrap()).unwrap();
    assert_eq!(uid_of_pid(pid), uid, "the VMM runs as the user");
    let daemon = env.json(&["daemon", "status", "--json"]);
    let daemon_pid = u32::try_from(daemon["pid"].as_u64().unwrap()).unwrap();
    assert_eq!(uid_of_pid(daemon_pid), uid, "the daemon runs as the user");
    assert_eq!(daemon["network"]["by"], "helper", "{daemon}");
    assert_eq!(env.ok(&["vm", "exec", "u1", "--", "id", "-u"]).trim(), "0");
    assert_eq!(env.ok(&["vm", "ssh", "u1", "--", "hostname"]).trim(), "u1");
    // Files the user's daemon wrote are root's in the guest.
    let owners = env.ok(&[
        "vm",
        "exec",
        "u1",
        "--",
        "stat",
        "-c",
        "%u",
        "/etc/hostname",
        "/root/.bashrc",
    ]);
    assert_eq!(
        owners.split_whitespace().collect::<Vec<_>>(),
        ["0", "0"],
        "{owners}"
    );
    let tap = vm["tap"].as_str().unwrap().to_string();
    let link = netns_run(&ns, &["ip", "-d", "-o", "link", "show", "dev", &tap]);
    assert!(
        link.contains(&format!("user {USER}")),
        "the TAP is the user's: {link}"
    );

    env.ok(&["vm", "set", "u1", "--nat"]);
    assert_eq!(
        netns_run(&ns, &["iptables-save"])
            .matches("banger-")
            .count(),
        3
    );
    env.ok(&["vm", "set", "u1", "--no-nat"]);
    assert_eq!(
        netns_run(&ns, &["iptables-save"])
            .matches("banger-")
            .count(),
        0
    );
    env.ok(&["vm", "stop", "u1"]);
    env.ok(&["vm", "start", "u1"]);
    // A clone of the running VM, as the user: the helper takes its TAP off
    // the bridge until the guest has its own identity, and puts it back.
    env.ok(&["vm", "clone", "u1", "--name", "u2"]);
    assert_eq!(env.ok(&["vm", "exec", "u2", "--", "hostname"]).trim(), "u2");
    assert_eq!(env.ok(&["vm", "ssh", "u2", "--", "hostname"]).trim(), "u2");
    let plugged = std::fs::read_to_string(&helper_log).unwrap();
    assert_eq!(
        plugged.matches("PlugTap {").count(),
        2,
        "off the bridge and on again:\n{plugged}"
    );
    env.ok(&["vm", "delete", "u2"]);

    // The helper dies: running VMs do not notice.
    helper.kill().unwrap();
    helper.wait().unwrap();
    assert_eq!(env.ok(&["vm", "exec", "u1", "--", "true"]), "");
    // Restarted, it serves again; a new daemon reconciles through it.
    let mut helper = start_helper(&ns, &socket, &helper_log);
    env.ok(&["daemon", "stop"]);
    assert_eq!(
        env.json(&["vm", "show", "u1", "--json"])["state"],
        "running"
    );
    env.ok(&["vm", "set", "u1", "--nat"]);
    env.ok(&["vm", "delete", "u1"]);
    env.ok(&["daemon", "stop"]);

    // Nothing left: no TAP, no rule, no process of the user, nothing of
    // root's in the user's directories.
    let links = netns_run(&ns, &["ip", "-o", "link"]);
    assert!(!links.contains("bg-") && !links.contains("bgp-"), "{links}");
    assert!(!netns_run(&ns, &["iptables-save"]).contains("banger-"));
    assert!(vmm_pids(&env.root.path().display().to_string()).is_empty());
    assert_eq!(
        roots_files(env.root.path())
            .into_iter()
            .filter(|p| !p.ends_with("helper.log"))
            .collect::<Vec<_>>(),
        Vec::<PathBuf>::new()
    );
    let log = std::fs::read_to_string(&helper_log).unwrap();
    assert!(
        log.contains("\"uid\":") && log.contains("performed"),
        "{log}"
    );
    helper.kill().unwrap();
    helper.wait().unwrap();
}

fn netns_run(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A user's environment with its own copy of the default image and the
/// helper's socket in its config.
fn user_env(netns: Netns, name: &str, socket: &Path) -> TestEnv {
    let (uid, gid) = ids_of(name);
    let env = TestEnv::as_user(Some(netns), uid, gid);
    let images = env.root.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let copied = Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(images_dir().join("default"))
        .arg(&images)
        .status()
        .unwrap();
    assert!(copied.success());
    Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(&images)
        .status()
        .unwrap();
    std::fs::write(
        env.config_dir().join("config.toml"),
        format!(
            "images_dir = {:?}\nboot_timeout_secs = 400\nvmm = \"qemu\"\nhelper_socket = {:?}\n",
            images.display().to_string(),
            socket.display().to_string()
        ),
    )
    .unwrap();
    env
}

#[test]
fn two_users_on_one_host_get_their_own_bridge_addresses_and_vms() {
    require_root_tools();
    ensure_default_image();
    ids_of(USER);
    ids_of(OTHER);
    let netns = Netns::new("users").with_default_route();
    let ns = netns.name.clone();
    let helper_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        helper_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let socket = helper_dir.path().join("helper.sock");
    let log = helper_dir.path().join("helper.log");
    let mut helper = start_helper_for(&ns, &socket, &log, &[USER, OTHER]);
    // Both in the one namespace: the second environment enters it by name.
    let first = user_env(netns, USER, &socket);
    let second = user_env(Netns::join(&ns), OTHER, &socket);

    first.ok(&["vm", "create", "--name", "same-name"]);
    second.ok(&["vm", "create", "--name", "same-name", "--nat"]);
    let a = first.json(&["vm", "show", "same-name", "--json"]);
    let b = second.json(&["vm", "show", "same-name", "--json"]);
    let (ip_a, ip_b) = (a["ip"].as_str().unwrap(), b["ip"].as_str().unwrap());
    assert!(
        ip_a.starts_with("172.30.0.") && ip_b.starts_with("172.30.1."),
        "{ip_a} {ip_b}"
    );
    let master = |tap: &str| netns_run(&ns, &["ip", "-o", "link", "show", "dev", tap]);
    assert!(master(a["tap"].as_str().unwrap()).contains("master banger0"));
    assert!(master(b["tap"].as_str().unwrap()).contains("master banger1"));
    assert_eq!(
        first
            .ok(&["vm", "exec", "same-name", "--", "hostname"])
            .trim(),
        "same-name"
    );
    assert_eq!(second.ok(&["vm", "exec", "same-name", "--", "true"]), "");
    // Each sees only its own VMs.
    assert_eq!(
        first
            .json(&["vm", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    second.ok(&["vm", "delete", "same-name"]);
    assert_eq!(
        first.json(&["vm", "show", "same-name", "--json"])["state"],
        "running"
    );
    first.ok(&["vm", "delete", "same-name"]);
    first.ok(&["daemon", "stop"]);
    second.ok(&["daemon", "stop"]);
    let links = netns_run(&ns, &["ip", "-o", "link"]);
    assert!(!links.contains("bg-") && !links.contains("bgp-"), "{links}");
    assert!(!netns_run(&ns, &["iptables-save"]).contains("banger-"));
    helper.kill().unwrap();
    helper.wait().unwrap();
    drop(second);
    drop(first);
}
