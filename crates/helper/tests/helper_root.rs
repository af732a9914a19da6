//! The helper against the real host, as root, in a network namespace of the
//! test's own (this thread's; every `ip` and `iptables` it runs is there):
//! what it performs for an owner, what it refuses, and that nothing outside
//! banger's own devices and rules changes whatever it is sent.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use banger_helper::lease::{self, Lease};
use banger_helper::protocol::{Answer, Request};
use banger_helper::server::Helper;
use banger_helper::world::HostWorld;
use banger_host::net::IpNetwork;
use banger_host::privileged::{NatRule, Op};
use banger_host::runner::SystemRunner;
use proptest::prelude::*;

/// A user other than root that the test can act as (made if missing).
const OTHER: &str = "banger-helper-test";

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn other_uid() -> u32 {
    if lease::uid_of(OTHER).is_none() {
        run(&["useradd", "--system", "--no-create-home", OTHER]);
    }
    lease::uid_of(OTHER).unwrap()
}

/// This thread (and what it starts) in a new network namespace.
fn own_namespace() {
    assert!(nix::unistd::geteuid().is_root(), "this tier runs as root");
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    run(&["ip", "link", "set", "lo", "up"]);
}

/// A helper serving `leases` on a socket in `dir`, on its own runtime.
struct Running {
    socket: PathBuf,
    runtime: tokio::runtime::Runtime,
}

fn start(dir: &Path, leases: Vec<Lease>) -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let socket = dir.join("helper.sock");
    let listener = runtime.block_on(async { Helper::bind(&socket).unwrap() });
    let helper = Arc::new(Helper::new(
        leases,
        Arc::new(IpNetwork::new(SystemRunner)),
        Arc::new(HostWorld {
            net: IpNetwork::new(SystemRunner),
        }),
    ));
    runtime.spawn(helper.serve(listener));
    Running { socket, runtime }
}

impl Running {
    /// Sends raw lines on one connection; the answers, one per line.
    fn raw(&self, lines: &[u8]) -> Vec<serde_json::Value> {
        use std::io::{BufRead, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        // The helper may hang up before taking it all (a request too long).
        let _ = stream.write_all(lines);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        std::io::BufReader::new(stream)
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect()
    }

    fn ask(&self, request: &Request) -> Answer {
        let mut line = serde_json::to_vec(request).unwrap();
        line.push(b'\n');
        serde_json::from_value(self.raw(&line).remove(0)).unwrap()
    }

    fn perform(&self, op: Op) -> Answer {
        self.ask(&Request::Perform { op })
    }

    /// As another user: a short Python client run with that uid.
    fn ask_as(&self, uid: u32, request: &Request) -> Answer {
        let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(sys.argv[2].encode()+b'\\n')\nprint(s.makefile().readline(),end='')";
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(&self.socket)
            .arg(serde_json::to_string(request).unwrap())
            .uid(uid)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    }
}

use std::os::unix::process::CommandExt;

fn root_lease() -> Lease {
    lease::assign(&["0".into()]).unwrap().remove(0)
}

fn refused(answer: Answer) -> String {
    match answer {
        Answer::Refused { reason } => reason,
        other => panic!("not refused: {other:?}"),
    }
}

fn done(answer: Answer) {
    assert!(matches!(answer, Answer::Done { .. }), "{answer:?}");
}

fn tap_owner_line(tap: &str) -> String {
    run(&["ip", "-d", "-o", "link", "show", "dev", tap])
}

#[test]
fn an_owner_gets_its_bridge_taps_and_nat_and_nothing_else() {
    own_namespace();
    let other = other_uid();
    let dir = tempfile::tempdir().unwrap();
    let leases = lease::assign(&["0".into(), other.to_string()]).unwrap();
    let helper = start(dir.path(), leases);
    let gateway = Ipv4Addr::new(172, 30, 0, 1);

    match helper.ask(&Request::Hello) {
        Answer::Welcome(w) => assert_eq!(
            (w.uid, w.bridge.as_str(), w.subnet.as_str()),
            (0, "banger0", "172.30.0.0/24")
        ),
        other => panic!("{other:?}"),
    }
    done(helper.perform(Op::EnsureBridge {
        bridge: "banger0".into(),
        gateway,
        prefix: 24,
    }));
    done(helper.perform(Op::CreateTap {
        tap: "bg-0a0a0a0a0a0a".into(),
        bridge: "banger0".into(),
        user: Some(other),
    }));
    // Made for the caller (root here), not for whom the request named.
    let line = tap_owner_line("bg-0a0a0a0a0a0a");
    assert!(
        line.contains("master banger0") && line.contains("user root"),
        "{line}"
    );

    // The other owner's network and TAPs are not this one's.
    let refusals = [
        Op::EnsureBridge {
            bridge: "banger1".into(),
            gateway: Ipv4Addr::new(172, 30, 1, 1),
            prefix: 24,
        },
        Op::EnsureBridge {
            bridge: "banger0".into(),
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            prefix: 24,
        },
        Op::DeleteTap { tap: "eth0".into() },
        Op::DeleteTap { tap: "lo".into() },
        Op::CreateTap {
            tap: "bg-0a0a0a0a0a0b".into(),
            bridge: "docker0".into(),
            user: None,
        },
        Op::AddNat(NatRule {
            tag: "banger-0a0a0a0a0a0a".into(),
            source: Ipv4Addr::new(172, 30, 1, 2),
            bridge: "banger0".into(),
        }),
        Op::RemoveNat {
            tag: "docker-1".into(),
        },
    ];
    for op in refusals {
        let reason = refused(helper.perform(op.clone()));
        assert!(!reason.is_empty(), "{op:?}");
        // ... and the connection's next request is served.
        assert!(matches!(helper.ask(&Request::Hello), Answer::Welcome(_)));
    }
    // A TAP of the other owner: not deletable by this one.
    run(&[
        "ip",
        "tuntap",
        "add",
        "dev",
        "bg-0b0b0b0b0b0b",
        "mode",
        "tap",
        "user",
        &other.to_string(),
    ]);
    let reason = refused(helper.perform(Op::DeleteTap {
        tap: "bg-0b0b0b0b0b0b".into(),
    }));
    assert!(reason.contains("not a TAP you own"), "{reason}");
    assert!(banger_host::net::link_exists("bg-0b0b0b0b0b0b"));
    // ... by its owner it is.
    let by_owner = helper.ask_as(
        other,
        &Request::Perform {
            op: Op::DeleteTap {
                tap: "bg-0b0b0b0b0b0b".into(),
            },
        },
    );
    done(by_owner);
    assert!(!banger_host::net::link_exists("bg-0b0b0b0b0b0b"));

    // NAT: own rules in, listed, out; the other owner sees none of them.
    done(helper.perform(Op::AddNat(NatRule {
        tag: "banger-0a0a0a0a0a0a".into(),
        source: Ipv4Addr::new(172, 30, 0, 2),
        bridge: "banger0".into(),
    })));
    let tags = |answer: Answer| match answer {
        Answer::Done {
            outcome: banger_host::privileged::Outcome::NatTags(t),
        } => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(tags(helper.perform(Op::ListNat)), ["banger-0a0a0a0a0a0a"]);
    assert!(tags(helper.ask_as(other, &Request::Perform { op: Op::ListNat })).is_empty());
    let theirs = helper.ask_as(
        other,
        &Request::Perform {
            op: Op::RemoveNat {
                tag: "banger-0a0a0a0a0a0a".into(),
            },
        },
    );
    assert!(matches!(theirs, Answer::Refused { .. }), "{theirs:?}");
    done(helper.perform(Op::RemoveNat {
        tag: "banger-0a0a0a0a0a0a".into(),
    }));
    assert!(!run(&["iptables-save"]).contains("banger-0a0a0a0a0a0a"));
    done(helper.perform(Op::DeleteTap {
        tap: "bg-0a0a0a0a0a0a".into(),
    }));
    drop(helper.runtime);
}

#[test]
fn junk_and_strangers_are_refused_and_the_helper_keeps_serving() {
    own_namespace();
    let other = other_uid();
    let dir = tempfile::tempdir().unwrap();
    // Root is not among this helper's owners.
    let stranger = start(dir.path(), lease::assign(&[other.to_string()]).unwrap());
    let reason = refused(stranger.ask(&Request::Hello));
    assert!(reason.contains("uid 0 is not an owner"), "{reason}");
    drop(stranger.runtime);

    let dir = tempfile::tempdir().unwrap();
    let helper = start(dir.path(), vec![root_lease()]);
    let answers = helper.raw(b"not json\n{\"request\":\"perform\",\"op\":{\"op\":\"run_this\",\"cmd\":\"reboot\"}}\n{\"request\":\"hello\"}\n");
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0]["answer"], "refused");
    assert_eq!(answers[1]["answer"], "refused");
    assert!(answers[1]["reason"]
        .as_str()
        .unwrap()
        .contains("not a request"));
    assert_eq!(answers[2]["answer"], "welcome");
    // A 1 MiB request: refused without reading it all, then the helper
    // serves the next connection.
    let mut big = vec![b'x'; 1 << 20];
    big.push(b'\n');
    let answers = helper.raw(&big);
    assert_eq!(answers[0]["answer"], "refused");
    assert!(answers[0]["reason"]
        .as_str()
        .unwrap()
        .contains("longer than"));
    assert!(matches!(helper.ask(&Request::Hello), Answer::Welcome(_)));
}

/// What must never change: links that are not banger's, rules without its tag.
fn outside_banger() -> (Vec<String>, Vec<String>) {
    let links = run(&["ip", "-o", "link"])
        .lines()
        .filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        })
        .filter(|n| !(n.starts_with("bg-") || n.starts_with("bgp-") || n == "banger0"))
        .collect();
    let rules = run(&["iptables-save"])
        .lines()
        .filter(|l| l.starts_with("-A") && !l.contains("banger-"))
        .map(String::from)
        .collect();
    (links, rules)
}

fn any_op() -> impl Strategy<Value = Op> {
    let name = prop_oneof![
        Just("eth0".to_string()),
        Just("lo".to_string()),
        Just("banger0".to_string()),
        Just("docker0".to_string()),
        "bg-[0-9a-f]{0,12}",
        "bgp-[0-9a-f]{0,8}",
        "[a-z-]{0,16}",
        ".{0,20}",
    ];
    let tag = prop_oneof!["banger-[0-9a-f]{12}", "banger-[a-z]{0,5}", ".{0,20}"];
    let addr = (any::<u8>(), any::<u8>()).prop_map(|(c, d)| Ipv4Addr::new(172, 30, c % 3, d));
    prop_oneof![
        (name.clone(), addr.clone(), any::<u8>()).prop_map(|(bridge, gateway, prefix)| {
            Op::EnsureBridge {
                bridge,
                gateway,
                prefix,
            }
        }),
        (name.clone(), name.clone(), any::<Option<u32>>())
            .prop_map(|(tap, bridge, user)| Op::CreateTap { tap, bridge, user }),
        name.clone().prop_map(|tap| Op::DeleteTap { tap }),
        (tag.clone(), addr, name).prop_map(|(tag, source, bridge)| Op::AddNat(NatRule {
            tag,
            source,
            bridge
        })),
        tag.prop_map(|tag| Op::RemoveNat { tag }),
        Just(Op::ListNat),
    ]
}

#[test]
fn random_requests_change_nothing_outside_bangers_devices_and_rules() {
    own_namespace();
    // Something of the "user's" own, which must survive whatever comes.
    run(&[
        "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ]);
    run(&[
        "iptables",
        "-A",
        "FORWARD",
        "-i",
        "eth0",
        "-m",
        "comment",
        "--comment",
        "banger-vpn-not-ours",
        "-j",
        "ACCEPT",
    ]);
    run(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-o",
        "eth0",
        "-j",
        "MASQUERADE",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let helper = start(dir.path(), vec![root_lease()]);
    let before = outside_banger();
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(any_op(), 1..6), junk in proptest::collection::vec(any::<u8>(), 0..200))| {
        for op in ops {
            let answer = helper.perform(op);
            prop_assert!(!matches!(answer, Answer::Welcome(_)));
        }
        let mut line = junk;
        line.retain(|b| *b != b'\n');
        line.push(b'\n');
        let answers = helper.raw(&line);
        prop_assert_eq!(answers.len(), 1);
        prop_assert!(matches!(helper.ask(&Request::Hello), Answer::Welcome(_)));
    });
    assert_eq!(outside_banger(), before, "something not banger's changed");
    assert!(run(&["iptables-save"]).contains("banger-vpn-not-ours"));
}
