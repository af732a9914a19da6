//! Networking against a real guest: NAT through iptables and the `.vm` DNS.
//! Two namespaces of the test's own: one runs the daemon and its guest, the
//! other plays "the internet" (198.51.100.1, reachable through a veth and
//! the first namespace's default route). Nothing touches the host's network.

mod common;

use std::process::{Child, Command, Stdio};

use common::*;

const INTERNET: &str = "198.51.100.1";

/// A second namespace, linked to `host` by a veth pair, serving HTTP.
struct Internet {
    ns: Netns,
    server: Child,
}

impl Internet {
    fn new(host: &Netns) -> Internet {
        let ns = Netns::new("inet");
        let ip = |ns: &str, args: &[&str]| {
            let out = Command::new("ip")
                .arg("-n")
                .arg(ns)
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "ip {args:?}: {}", text(&out));
        };
        ip(
            &host.name,
            &[
                "link", "add", "uplink0", "type", "veth", "peer", "name", "wan0", "netns", &ns.name,
            ],
        );
        ip(
            &host.name,
            &["addr", "add", "198.51.100.2/24", "dev", "uplink0"],
        );
        ip(&host.name, &["link", "set", "uplink0", "up"]);
        ip(&host.name, &["route", "add", "default", "via", INTERNET]);
        ip(
            &ns.name,
            &["addr", "add", &format!("{INTERNET}/24"), "dev", "wan0"],
        );
        ip(&ns.name, &["link", "set", "wan0", "up"]);
        let www = tempfile::tempdir().unwrap().keep();
        std::fs::write(www.join("index.html"), "hello from the internet\n").unwrap();
        let server = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                INTERNET,
            ])
            .current_dir(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Internet { ns, server }
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = &self.ns;
    }
}

/// Whether the guest can fetch the page from "the internet".
fn guest_reaches_internet(env: &TestEnv, vm: &str) -> bool {
    let out = env.banger(&[
        "vm",
        "ssh",
        vm,
        "--",
        "curl",
        "-sf",
        "-m",
        "4",
        &format!("http://{INTERNET}:8080/"),
    ]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("hello from the internet")
}

/// `iptables -S` of the daemon's namespace (filter FORWARD + nat POSTROUTING).
fn rules(env: &TestEnv) -> String {
    let ns = &env.netns.as_ref().unwrap().name;
    let mut all = String::new();
    for (table, chain) in [("filter", "FORWARD"), ("nat", "POSTROUTING")] {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "iptables", "-t", table, "-S", chain])
            .output()
            .unwrap();
        all.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    all
}

fn iptables(env: &TestEnv, args: &[&str]) {
    let ns = &env.netns.as_ref().unwrap().name;
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "iptables"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "iptables {args:?}: {}", text(&out));
}

/// `dig` against the daemon's DNS inside its namespace: the answers.
fn dig(env: &TestEnv, name: &str, extra: &[&str]) -> String {
    let ns = &env.netns.as_ref().unwrap().name;
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "dig",
            "@127.0.0.1",
            "-p",
            "42069",
            name,
            "+time=2",
            "+tries=1",
        ])
        .args(extra)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn nat_and_dns_follow_a_real_guest() {
    require_root_tools();
    ensure_default_image();
    let env = TestEnv::new(Some(Netns::new("net")));
    let _internet = Internet::new(env.netns.as_ref().unwrap());

    // Without NAT the guest cannot reach the internet.
    let vm = env.json(&["vm", "create", "--name", "web", "--json"]);
    let (id, ip) = (
        vm["id"].as_str().unwrap().to_string(),
        vm["ip"].as_str().unwrap().to_string(),
    );
    let tag = format!("banger-{id}");
    assert!(
        !guest_reaches_internet(&env, "web"),
        "reached the internet without NAT"
    );
    assert!(!rules(&env).contains(&tag));

    // DNS: the VM's name resolves to its address, over UDP and TCP.
    let status = env.json(&["daemon", "status", "--json"]);
    assert_eq!(status["dns"], "127.0.0.1:42069");
    assert!(status.get("dns_error").is_none(), "{status}");
    assert_eq!(dig(&env, "web.vm", &["+short"]).trim(), ip);
    assert_eq!(dig(&env, "web.vm", &["+short", "+tcp"]).trim(), ip);
    assert!(dig(&env, "nobody.vm", &[]).contains("status: NXDOMAIN"));
    assert!(dig(&env, "example.com", &[]).contains("status: REFUSED"));
    // The systemd-resolved recipe of docs/networking.md: port 53 of the
    // bridge address answers for .vm.
    for proto in ["udp", "tcp"] {
        iptables(
            &env,
            &[
                "-t",
                "nat",
                "-A",
                "OUTPUT",
                "-p",
                proto,
                "-d",
                "172.30.0.1",
                "--dport",
                "53",
                "-j",
                "DNAT",
                "--to-destination",
                "127.0.0.1:42069",
            ],
        );
    }
    let ns = &env.netns.as_ref().unwrap().name;
    for transport in ["+notcp", "+tcp"] {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "dig",
                "@172.30.0.1",
                "web.vm",
                "+short",
                "+time=2",
                transport,
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            ip,
            "{transport}"
        );
    }

    // NAT on: it can; the rules carry the VM's tag.
    env.ok(&["vm", "set", "web", "--nat"]);
    assert!(guest_reaches_internet(&env, "web"), "no internet with NAT");
    let with_nat = rules(&env);
    assert_eq!(with_nat.matches(&tag).count(), 3, "{with_nat}");
    assert!(with_nat.contains("MASQUERADE") && with_nat.contains(&format!("{ip}/32")));

    // NAT off: it cannot again.
    env.ok(&["vm", "set", "web", "--no-nat"]);
    assert!(
        !guest_reaches_internet(&env, "web"),
        "still NAT after --no-nat"
    );
    assert!(!rules(&env).contains(&tag));

    // A daemon restart restores a rule lost meanwhile and removes a stale
    // banger rule; a user's rule that merely starts with banger- is left alone.
    env.ok(&["vm", "set", "web", "--nat"]);
    iptables(
        &env,
        &[
            "-t",
            "nat",
            "-D",
            "POSTROUTING",
            "-s",
            &format!("{ip}/32"),
            "!",
            "-o",
            "banger0",
            "-m",
            "comment",
            "--comment",
            &tag,
            "-j",
            "MASQUERADE",
        ],
    );
    iptables(
        &env,
        &[
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            "172.30.0.250/32",
            "-m",
            "comment",
            "--comment",
            "banger-0000dead0000",
            "-j",
            "MASQUERADE",
        ],
    );
    iptables(
        &env,
        &[
            "-A",
            "FORWARD",
            "-s",
            "172.30.0.251/32",
            "-m",
            "comment",
            "--comment",
            "banger-vpn",
            "-j",
            "ACCEPT",
        ],
    );
    env.ok(&["daemon", "stop"]);
    assert_eq!(
        env.json(&["vm", "show", "web", "--json"])["state"],
        "running"
    );
    let after = rules(&env);
    assert_eq!(after.matches(&tag).count(), 3, "{after}");
    assert!(!after.contains("banger-0000dead0000"), "{after}");
    assert!(
        after.contains("banger-vpn"),
        "a user's own rule stays: {after}"
    );
    assert!(guest_reaches_internet(&env, "web"));
    assert_eq!(
        dig(&env, "web.vm", &["+short"]).trim(),
        ip,
        "DNS rebuilt at start"
    );

    // Stop: no rules, no record. Delete: nothing of the VM remains.
    env.ok(&["vm", "stop", "web"]);
    assert!(!rules(&env).contains(&tag));
    assert!(dig(&env, "web.vm", &[]).contains("status: NXDOMAIN"));
    env.ok(&["vm", "start", "web"]);
    assert!(
        rules(&env).contains(&tag),
        "NAT is a setting of the VM: back after start"
    );
    let tap = env.json(&["vm", "show", "web", "--json"])["tap"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(&["vm", "delete", "web"]);
    let left = rules(&env);
    assert!(!left.contains(&tag), "{left}");
    // Only the user's own rule is left.
    assert_eq!(left.matches("--comment").count(), 1, "{left}");
    assert!(dig(&env, "web.vm", &[]).contains("status: NXDOMAIN"));
    assert!(!env.netns.as_ref().unwrap().links().contains(&tap));
}
