//! Listening sockets, from `/proc/net/{tcp,tcp6,udp,udp6}`, with the
//! process that owns each (found through `/proc/<pid>/fd`). Works on any
//! guest without `ss`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use banger_api::agent::Listener;

/// TCP_LISTEN in /proc/net/tcp*; for UDP, 07 (TCP_CLOSE) is a bound,
/// unconnected socket: the UDP equivalent of listening.
const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

pub fn listeners() -> Vec<Listener> {
    let owners = socket_owners();
    let mut found = Vec::new();
    for (file, protocol, state) in [
        ("tcp", "tcp", TCP_LISTEN),
        ("tcp6", "tcp", TCP_LISTEN),
        ("udp", "udp", UDP_UNCONNECTED),
        ("udp6", "udp", UDP_UNCONNECTED),
    ] {
        let Ok(table) = std::fs::read_to_string(format!("/proc/net/{file}")) else {
            continue;
        };
        for socket in parse_table(&table, state) {
            let owner = owners.get(&socket.inode);
            found.push(Listener {
                protocol: protocol.into(),
                address: socket.address,
                port: socket.port,
                pid: owner.map(|o| o.0),
                process: owner.map(|o| o.1.clone()),
                command: owner.map(|o| o.2.clone()),
            });
        }
    }
    found.sort_by(|a, b| (a.port, &a.protocol, &a.address).cmp(&(b.port, &b.protocol, &b.address)));
    found.dedup();
    found
}

#[derive(Debug, PartialEq)]
pub struct Socket {
    pub address: String,
    pub port: u16,
    pub inode: u64,
}

/// The sockets of one `/proc/net` table in `state`. Malformed lines are
/// skipped, never fatal.
pub fn parse_table(table: &str, state: &str) -> Vec<Socket> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&state) {
                return None;
            }
            let (address, port) = fields.get(1)?.split_once(':')?;
            Some(Socket {
                address: parse_address(address)?,
                port: u16::from_str_radix(port, 16).ok()?,
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// The kernel prints addresses as 32-bit words in host (little-endian) order.
fn parse_address(hex: &str) -> Option<String> {
    let words = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<Vec<u32>>>()?;
    match words.as_slice() {
        [w] => Some(Ipv4Addr::from(w.swap_bytes()).to_string()),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            Some(Ipv6Addr::from(bytes).to_string())
        }
        _ => None,
    }
}

/// Socket inode → (pid, comm, command line).
fn socket_owners() -> HashMap<u64, (u32, String, String)> {
    let mut owners = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return owners;
    };
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            owners.entry(inode).or_insert_with(|| {
                let read = |f: &str| std::fs::read(entry.path().join(f)).unwrap_or_default();
                let comm = String::from_utf8_lossy(&read("comm")).trim().to_string();
                let cmdline = read("cmdline")
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ");
                (pid, comm, cmdline)
            });
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   2: 0200A8C0:0016 0100A8C0:D431 01 00000000:00000000 02:00094A5A 00000000     0        0 555 4 0000000000000000 20 4 30 10 -1
   3: garbage
";

    #[test]
    fn listening_sockets_are_parsed_and_others_skipped() {
        let sockets = parse_table(TCP, TCP_LISTEN);
        assert_eq!(
            sockets,
            [
                Socket {
                    address: "0.0.0.0".into(),
                    port: 8080,
                    inode: 31337
                },
                Socket {
                    address: "127.0.0.1".into(),
                    port: 22,
                    inode: 4242
                },
            ]
        );
    }

    #[test]
    fn ipv6_addresses_are_read_word_by_word() {
        assert_eq!(
            parse_address("00000000000000000000000000000000").unwrap(),
            "::"
        );
        assert_eq!(
            parse_address("00000000000000000000000001000000").unwrap(),
            "::1"
        );
        assert_eq!(
            parse_address("0000000000000000FFFF00000100007F").unwrap(),
            "::ffff:127.0.0.1"
        );
        assert!(parse_address("123").is_none());
        assert!(parse_address("zzzzzzzz").is_none());
    }
}
