//! The host side of guest networking: one bridge, a TAP device per running
//! VM, and NAT rules for guests that ask for them. Every change goes through
//! [`Network::perform`] with a validated [`Op`].

use std::net::Ipv4Addr;

use async_trait::async_trait;

use crate::privileged::{is_tag, NatRule, Op, Outcome};
use crate::runner::{Cmd, Runner};
use crate::HostError;

#[async_trait]
pub trait Network: Send + Sync {
    /// Performs one privileged operation (validated first).
    async fn perform(&self, op: &Op) -> Result<Outcome, HostError>;
    /// The interface of the host's default IPv4 route: where NAT sends
    /// guest traffic. Reading routes needs no privilege.
    async fn uplink(&self) -> Result<Option<String>, HostError>;
    /// Whether a network interface exists (read-only).
    fn has_link(&self, name: &str) -> bool;
    /// The bridge an interface is attached to, if any (read-only).
    fn link_master(&self, name: &str) -> Option<String>;
}

/// [`Network`] through iproute2's `ip`, `iptables` and `/proc/sys`, for a
/// daemon that runs as root.
pub struct IpNetwork<R> {
    runner: R,
}

impl<R: Runner> IpNetwork<R> {
    pub fn new(runner: R) -> Self {
        IpNetwork { runner }
    }

    async fn ip(&self, args: &[&str]) -> Result<String, HostError> {
        Ok(self
            .runner
            .run(Cmd::new("ip").args(args))
            .await?
            .stdout_str())
    }

    async fn ensure_bridge(
        &self,
        bridge: &str,
        gateway: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), HostError> {
        // Another process may create the bridge or address between our check
        // and our change: "already exists" counts as done.
        if !link_exists(bridge) {
            let added = self.ip(&["link", "add", bridge, "type", "bridge"]).await;
            if added.is_err() && !link_exists(bridge) {
                added?;
            }
        }
        let cidr = format!("{gateway}/{prefix}");
        let show = ["-4", "-o", "addr", "show", "dev", bridge];
        let has_address = |out: &str| out.contains(&format!(" {cidr} "));
        if !has_address(&self.ip(&show).await?) {
            if let Err(err) = self.ip(&["addr", "add", &cidr, "dev", bridge]).await {
                if !has_address(&self.ip(&show).await?) {
                    return Err(err);
                }
            }
        }
        self.ip(&["link", "set", bridge, "up"]).await?;
        Ok(())
    }

    async fn create_tap(
        &self,
        tap: &str,
        bridge: &str,
        user: Option<u32>,
    ) -> Result<(), HostError> {
        if link_exists(tap) {
            // Left from an interrupted attempt that was recorded for this VM.
            self.ip(&["link", "del", tap]).await?;
        }
        let uid = user.map(|u| u.to_string());
        let mut add = vec!["tuntap", "add", "dev", tap, "mode", "tap"];
        if let Some(uid) = &uid {
            // The user's VMM attaches to it without privilege.
            add.extend(["user", uid.as_str()]);
        }
        self.ip(&add).await?;
        self.ip(&["link", "set", tap, "master", bridge]).await?;
        self.ip(&["link", "set", tap, "up"]).await?;
        Ok(())
    }

    async fn iptables(&self, table: &str, args: Vec<String>, ok: &[i32]) -> Result<i32, HostError> {
        // -w: wait for the xtables lock instead of failing when Docker or
        // another tool changes rules at the same moment.
        let out = self
            .runner
            .run(
                Cmd::new("iptables")
                    .args(["-w", "5", "-t", table])
                    .args(args)
                    .ok_codes(ok),
            )
            .await?;
        Ok(out.code)
    }

    async fn add_nat(&self, rule: &NatRule) -> Result<(), HostError> {
        for (table, chain, spec) in rule.specs() {
            let check = [vec!["-C".to_string(), chain.to_string()], spec.clone()].concat();
            // iptables -C exits 1 when the rule is missing.
            if self.iptables(table, check, &[1]).await? == 0 {
                continue;
            }
            // FORWARD rules go first, ahead of a DROP policy chain such as
            // Docker's; POSTROUTING order does not matter.
            let add = match chain {
                "FORWARD" => [vec!["-I".into(), chain.into(), "1".into()], spec].concat(),
                _ => [vec!["-A".into(), chain.into()], spec].concat(),
            };
            self.iptables(table, add, &[]).await?;
        }
        Ok(())
    }

    /// Every banger-tagged rule as `(tag, guest address)` (its `-s` or `-d`).
    pub async fn tagged_rules(&self) -> Result<Vec<(String, Ipv4Addr)>, HostError> {
        if crate::tools::find("iptables").is_none() {
            return Ok(Vec::new());
        }
        Ok(self
            .nat_rules()
            .await?
            .iter()
            .filter_map(|(_, words)| {
                let tag = rule_tag(words)?;
                let addr = words
                    .windows(2)
                    .find(|w| w[0] == "-s" || w[0] == "-d")
                    .and_then(|w| w[1].trim_end_matches("/32").parse().ok())?;
                Some((tag.to_string(), addr))
            })
            .collect())
    }

    /// Banger's rules as `(table, rule spec words)`, from `iptables -S`.
    async fn nat_rules(&self) -> Result<Vec<(&'static str, Vec<String>)>, HostError> {
        let mut rules = Vec::new();
        for (table, chain) in [("nat", "POSTROUTING"), ("filter", "FORWARD")] {
            let out = self
                .runner
                .run(Cmd::new("iptables").args(["-w", "5", "-t", table, "-S", chain]))
                .await?
                .stdout_str();
            for line in out.lines() {
                let Some(words) = shlex::split(line) else {
                    continue;
                };
                if words.first().map(String::as_str) == Some("-A") && rule_tag(&words).is_some() {
                    rules.push((table, words));
                }
            }
        }
        Ok(rules)
    }

    async fn remove_nat(&self, tag: &str) -> Result<(), HostError> {
        for (table, mut words) in self.nat_rules().await? {
            if rule_tag(&words) == Some(tag) {
                words[0] = "-D".into();
                // Deleted meanwhile by someone else: fine.
                self.iptables(table, words, &[1, 2]).await?;
            }
        }
        Ok(())
    }
}

/// The banger tag of a rule (`--comment banger-...`), if it has one.
fn rule_tag(words: &[String]) -> Option<&str> {
    words
        .windows(2)
        .find(|w| w[0] == "--comment")
        .map(|w| w[1].as_str())
        .filter(|t| is_tag(t))
}

/// The host's upstream DNS resolvers, which a guest with NAT can reach:
/// systemd-resolved's real upstreams when it runs, else /etc/resolv.conf,
/// without loopback stubs (127.0.0.53 means nothing inside a guest).
pub fn upstream_nameservers() -> Vec<std::net::IpAddr> {
    ["/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| parse_nameservers(&text))
        .find(|found| !found.is_empty())
        .unwrap_or_default()
}

fn parse_nameservers(text: &str) -> Vec<std::net::IpAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|addr| addr.trim().parse::<std::net::IpAddr>().ok())
        .filter(|ip| !ip.is_loopback())
        .take(3)
        .collect()
}

/// Whether a network device exists, asked of the kernel (an ioctl on a
/// socket made by the calling thread), so the answer is for the calling
/// thread's network namespace: `/sys/class/net` shows the namespace that
/// mounted sysfs, which need not be it.
pub fn link_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

#[async_trait]
impl<R: Runner> Network for IpNetwork<R> {
    async fn perform(&self, op: &Op) -> Result<Outcome, HostError> {
        op.validate()?;
        tracing::debug!(?op, "privileged operation");
        match op {
            Op::EnsureBridge {
                bridge,
                gateway,
                prefix,
            } => self.ensure_bridge(bridge, *gateway, *prefix).await?,
            Op::CreateTap { tap, bridge, user } => self.create_tap(tap, bridge, *user).await?,
            Op::DeleteTap { tap } => {
                if link_exists(tap) {
                    self.ip(&["link", "del", tap]).await?;
                }
            }
            Op::PlugTap {
                tap,
                bridge,
                address,
            } => match bridge {
                Some(bridge) => {
                    self.ip(&["link", "set", tap, "master", bridge]).await?;
                    let address = address.to_string();
                    // Gone already (or never known) is as good.
                    let _ = self.ip(&["neigh", "del", &address, "dev", bridge]).await;
                }
                None => {
                    self.ip(&["link", "set", tap, "nomaster"]).await?;
                }
            },
            Op::EnableForwarding => {
                let path = "/proc/sys/net/ipv4/ip_forward";
                if std::fs::read_to_string(path).unwrap_or_default().trim() != "1" {
                    std::fs::write(path, "1\n")
                        .map_err(|e| HostError::io(format!("cannot enable {path}"), e))?;
                }
            }
            Op::AddNat(rule) => {
                crate::tools::require("iptables")?;
                self.add_nat(rule).await?
            }
            // Without iptables no rule can exist: nothing to remove or list.
            Op::RemoveNat { .. } | Op::ListNat if crate::tools::find("iptables").is_none() => {
                return Ok(match op {
                    Op::ListNat => Outcome::NatTags(Vec::new()),
                    _ => Outcome::Done,
                })
            }
            Op::RemoveNat { tag } => self.remove_nat(tag).await?,
            Op::ListNat => {
                let mut tags: Vec<String> = self
                    .nat_rules()
                    .await?
                    .iter()
                    .filter_map(|(_, words)| rule_tag(words).map(str::to_string))
                    .collect();
                tags.sort();
                tags.dedup();
                return Ok(Outcome::NatTags(tags));
            }
        }
        Ok(Outcome::Done)
    }

    fn has_link(&self, name: &str) -> bool {
        link_exists(name)
    }

    fn link_master(&self, name: &str) -> Option<String> {
        // `ip` answers for the caller's namespace (see `link_exists`).
        let out = std::process::Command::new("ip")
            .args(["-o", "link", "show", "dev", name])
            .output()
            .ok()?;
        parse_master(&String::from_utf8_lossy(&out.stdout))
    }

    async fn uplink(&self) -> Result<Option<String>, HostError> {
        Ok(default_route_interface())
    }
}

/// The uid a TAP device belongs to (`ip tuntap add ... user UID`): `None`
/// for a device that is not a TUN/TAP, or has no owner. Asked through
/// netlink (`ip -d -j link`), for the caller's namespace.
pub fn tun_owner(name: &str) -> Option<u32> {
    let out = std::process::Command::new("ip")
        .args(["-d", "-j", "link", "show", "dev", name])
        .output()
        .ok()?;
    parse_tun_owner(&out.stdout)
}

fn parse_tun_owner(json: &[u8]) -> Option<u32> {
    let links: serde_json::Value = serde_json::from_slice(json).ok()?;
    let info = &links.get(0)?["linkinfo"];
    if info["info_kind"] != "tun" {
        return None;
    }
    match &info["info_data"]["user"] {
        serde_json::Value::Number(n) => n.as_u64().and_then(|u| u32::try_from(u).ok()),
        serde_json::Value::String(user) => user.parse().ok().or_else(|| {
            nix::unistd::User::from_name(user)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw())
        }),
        _ => None,
    }
}

/// The master device in one line of `ip -o link show`.
fn parse_master(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "master")?;
    words.next().map(String::from)
}

/// The interface of the default IPv4 route, from the calling thread's
/// route table (`/proc/thread-self/net`: `/proc/net` is the main
/// thread's); no `ip` process needed.
pub fn default_route_interface() -> Option<String> {
    parse_default_route(&std::fs::read_to_string("/proc/thread-self/net/route").ok()?)
}

fn parse_default_route(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Destination and mask both 0.0.0.0.
        (fields.get(1) == Some(&"00000000") && fields.get(7) == Some(&"00000000"))
            .then(|| fields[0].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taps_owner_is_read_from_ip_link_json() {
        let tap = br#"[{"ifname":"bg-x","linkinfo":{"info_kind":"tun","info_data":{"type":"tap","persist":true,"user":"root"}}}]"#;
        assert_eq!(parse_tun_owner(tap), Some(0));
        let numeric = br#"[{"linkinfo":{"info_kind":"tun","info_data":{"user":"4242"}}}]"#;
        assert_eq!(parse_tun_owner(numeric), Some(4242));
        let unowned = br#"[{"linkinfo":{"info_kind":"tun","info_data":{"type":"tap"}}}]"#;
        assert_eq!(parse_tun_owner(unowned), None);
        let dummy = br#"[{"ifname":"eth0","linkinfo":{"info_kind":"dummy"}}]"#;
        assert_eq!(parse_tun_owner(dummy), None);
        assert_eq!(parse_tun_owner(b"[]"), None);
    }

    #[test]
    fn the_master_is_read_from_ip_link_output() {
        let line = "3: bg-ab: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc pfifo_fast master banger0 state DOWN mode DEFAULT";
        assert_eq!(parse_master(line).as_deref(), Some("banger0"));
        assert_eq!(parse_master("2: eth0: <UP> mtu 1500 state UP"), None);
    }

    #[test]
    fn loopback_exists_and_a_made_up_name_does_not() {
        assert!(link_exists("lo"));
        assert!(!link_exists("bg-nosuchlink"));
    }

    #[test]
    fn the_default_route_is_found_in_the_route_table() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
banger0\t00001EAC\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
";
        assert_eq!(parse_default_route(table).as_deref(), Some("eth0"));
        assert_eq!(
            parse_default_route(&table[..table.find("eth0").unwrap()]),
            None
        );
    }

    #[test]
    fn nameservers_skip_loopback_stubs() {
        let text = "# x\nnameserver 127.0.0.53\nnameserver 9.9.9.9\nsearch lan\nnameserver ::1\nnameserver 2620:fe::fe\n";
        let found: Vec<String> = parse_nameservers(text)
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(found, ["9.9.9.9", "2620:fe::fe"]);
    }

    #[test]
    fn tags_are_read_from_iptables_output() {
        let line = "-A POSTROUTING -s 172.30.0.2/32 ! -o banger0 -m comment --comment banger-0a1b2c3d4e5f -j MASQUERADE";
        let words = shlex::split(line).unwrap();
        assert_eq!(rule_tag(&words), Some("banger-0a1b2c3d4e5f"));
        let quoted =
            shlex::split("-A FORWARD -m comment --comment \"banger-0a1b2c3d4e5f\" -j ACCEPT")
                .unwrap();
        assert_eq!(rule_tag(&quoted), Some("banger-0a1b2c3d4e5f"));
        let users = shlex::split("-A FORWARD -m comment --comment banger-vpn -j ACCEPT").unwrap();
        assert_eq!(
            rule_tag(&users),
            None,
            "a user's own banger-... rule is not ours"
        );
        let docker =
            shlex::split("-A FORWARD -m comment --comment \"docker rule\" -j ACCEPT").unwrap();
        assert_eq!(rule_tag(&docker), None);
    }
}
