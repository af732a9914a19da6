//! The `.vm` DNS answered over real UDP and TCP sockets and queried with a
//! real resolver client (`dig`): A records, NXDOMAIN inside `.vm`, REFUSED
//! outside it, records following VMs, and malformed packets that never
//! bring it down.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use banger_daemon::dns::{DnsError, DnsStatus, VmDns};
use proptest::prelude::*;

/// A DNS server on a free loopback port, on its own runtime thread.
fn server() -> (Arc<VmDns>, SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dns = Arc::new(VmDns::new());
    let addr = rt.block_on(dns.serve("127.0.0.1:0")).unwrap();
    assert_eq!(dns.status(), DnsStatus::Serving(addr));
    (dns, addr, rt)
}

/// `dig` output: the status line's code and the answers.
fn dig(addr: SocketAddr, name: &str, qtype: &str, tcp: bool) -> (String, Vec<String>) {
    let mut cmd = Command::new("dig");
    cmd.arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), name, qtype])
        .args(["+time=2", "+tries=1", "+noall", "+comments", "+answer"]);
    if tcp {
        cmd.arg("+tcp");
    }
    let out = cmd.output().expect("dig is installed (dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no answer from {addr}: {text}"))
        .to_string();
    let answers = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    (status, answers)
}

#[test]
fn answers_for_vms_over_udp_and_tcp() {
    let (dns, addr, rt) = server();
    rt.block_on(dns.set("calm-otter", Ipv4Addr::new(172, 30, 0, 5)));
    for tcp in [false, true] {
        assert_eq!(
            dig(addr, "calm-otter.vm", "A", tcp),
            ("NOERROR".into(), vec!["172.30.0.5".into()]),
            "tcp={tcp}"
        );
        // Names are case-insensitive.
        assert_eq!(dig(addr, "CALM-Otter.VM", "A", tcp).1, ["172.30.0.5"]);
        // Unknown names inside .vm do not exist.
        assert_eq!(dig(addr, "nobody.vm", "A", tcp).0, "NXDOMAIN");
        // Outside .vm this server has no say.
        assert_eq!(dig(addr, "example.com", "A", tcp).0, "REFUSED");
        assert_eq!(dig(addr, "vmx", "A", tcp).0, "REFUSED");
        // The name exists, but has no IPv6 address.
        assert_eq!(
            dig(addr, "calm-otter.vm", "AAAA", tcp),
            ("NOERROR".into(), vec![])
        );
    }

    // Records follow VMs.
    rt.block_on(dns.set("calm-otter", Ipv4Addr::new(172, 30, 0, 9)));
    assert_eq!(dig(addr, "calm-otter.vm", "A", false).1, ["172.30.0.9"]);
    rt.block_on(dns.remove("calm-otter"));
    assert_eq!(dig(addr, "calm-otter.vm", "A", false).0, "NXDOMAIN");
    rt.block_on(dns.replace_all(&[
        ("a".into(), Ipv4Addr::new(172, 30, 0, 2)),
        ("b".into(), Ipv4Addr::new(172, 30, 0, 3)),
    ]));
    assert_eq!(dig(addr, "b.vm", "A", true).1, ["172.30.0.3"]);
    assert_eq!(rt.block_on(dns.names()), ["a.vm.", "b.vm."]);
}

#[test]
fn a_busy_port_is_reported_not_fatal() {
    let (_dns, addr, rt) = server();
    let second = Arc::new(VmDns::new());
    let err = rt.block_on(second.serve(&addr.to_string())).unwrap_err();
    assert!(
        matches!(err, DnsError::Bind { proto: "udp", addr: a, .. } if a == addr),
        "{err:?}"
    );
    // `daemon status` shows why, cause included.
    match second.status() {
        DnsStatus::Failed(why) => assert!(why.contains("Address already in use"), "{why}"),
        other => panic!("{other:?}"),
    }
    let err = rt.block_on(second.serve("localhost")).unwrap_err();
    assert!(matches!(err, DnsError::BadAddress(a) if a == "localhost"));
}

/// A well-formed query for `calm-otter.vm A`, as sent on the wire.
fn valid_query() -> Vec<u8> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut message = Message::query();
    message.metadata.id = 7;
    message.add_query(Query::query(
        Name::from_ascii("calm-otter.vm.").unwrap(),
        RecordType::A,
    ));
    message.to_vec().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random packets, and valid queries with random bytes changed, over
    /// UDP and TCP: the server answers or drops them, and keeps answering.
    #[test]
    fn malformed_packets_never_crash_it(
        junk in proptest::collection::vec(any::<u8>(), 0..600),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        static SERVER: std::sync::OnceLock<(Arc<VmDns>, SocketAddr, tokio::runtime::Runtime)> =
            std::sync::OnceLock::new();
        let (dns, addr, rt) = SERVER.get_or_init(|| {
            let s = server();
            s.2.block_on(s.0.set("calm-otter", Ipv4Addr::new(172, 30, 0, 5)));
            s
        });
        let _ = (dns, rt);
        let mut mutated = valid_query();
        for (at, byte) in flips {
            let len = mutated.len();
            mutated[at % len] = byte;
        }
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        for packet in [&junk, &mutated] {
            udp.send_to(packet, addr).unwrap();
            let mut buf = [0u8; 4096];
            let _ = udp.recv_from(&mut buf);
            // TCP: a length prefix that may lie, then the bytes.
            if let Ok(mut tcp) = TcpStream::connect(addr) {
                tcp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                // Packets here are under 1 KiB; the prefix is a u16.
                let length = u16::try_from(packet.len()).unwrap();
                let _ = tcp.write_all(&length.to_be_bytes());
                let _ = tcp.write_all(packet);
                let _ = tcp.read(&mut buf);
            }
        }
        // Still alive and correct (a fresh socket: no late reply to junk).
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        udp.send_to(&valid_query(), addr).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = udp.recv_from(&mut buf).expect("the server still answers");
        let reply = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
        prop_assert_eq!(reply.metadata.id, 7);
        prop_assert_eq!(reply.answers.len(), 1);
    }
}
