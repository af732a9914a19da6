//! Every host change that needs root (CAP_NET_ADMIN), as a fixed list of
//! typed operations. Nothing else in banger changes the host's network: the
//! daemon builds an [`Op`], [`Op::validate`] checks its arguments, and a
//! [`crate::net::Network`] performs it. When the daemon runs as root it
//! performs them directly; the list is serialisable so a small root helper
//! can later perform them for a daemon that runs as the user.
//!
//! There is deliberately no "run this command" operation.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Why a privileged operation was refused before anything ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("prefix /{0} is out of range")]
    Prefix(u8),
    #[error("{0:?} is not a valid interface name")]
    Interface(String),
    #[error("{0:?} is not a banger rule tag")]
    Tag(String),
}

/// Prefix of the iptables comment on every rule banger adds.
pub const NAT_TAG_PREFIX: &str = "banger-";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Create the bridge if missing, give it `gateway/prefix`, bring it up.
    EnsureBridge {
        bridge: String,
        gateway: Ipv4Addr,
        prefix: u8,
    },
    /// Create a TAP device attached to `bridge`, up. A leftover device of
    /// the same name is replaced. `user`: the uid that may attach to it
    /// without privilege (the root helper sets the caller's; a daemon that
    /// runs as root leaves it out).
    CreateTap {
        tap: String,
        bridge: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<u32>,
    },
    /// Remove a TAP device; done when it is already gone.
    DeleteTap { tap: String },
    /// Put an existing TAP on `bridge` (`Some`) or take it off any (`None`):
    /// a guest restored from another's memory stays off the network until
    /// it has its own address. Plugged in, the host forgets its neighbour
    /// entry for `address`: it may name the MAC of a guest that had the
    /// address before.
    PlugTap {
        tap: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bridge: Option<String>,
        address: Ipv4Addr,
    },
    /// `net.ipv4.ip_forward = 1` (never turned off again: other tools, Docker
    /// among them, rely on it too).
    EnableForwarding,
    /// Add the NAT rules of one guest; rules already present are kept.
    AddNat(NatRule),
    /// Remove every rule carrying this tag.
    RemoveNat { tag: String },
    /// The tags of every banger rule installed (reading rules needs root too).
    ListNat,
}

/// NAT for one guest: MASQUERADE its address on the way out of any
/// interface but the bridge (so it follows the host's default route, even
/// when that changes), and accept its forwarded traffic (new connections
/// out, replies back in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatRule {
    /// `banger-<vm id>`: how banger finds exactly its own rules again.
    pub tag: String,
    pub source: Ipv4Addr,
    pub bridge: String,
}

/// What an operation returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    NatTags(Vec<String>),
}

impl Op {
    /// Rejects arguments that are not what the operation expects, before
    /// anything runs.
    pub fn validate(&self) -> Result<(), Refusal> {
        match self {
            Op::EnsureBridge { bridge, prefix, .. } => {
                interface(bridge)?;
                if !(8..=30).contains(prefix) {
                    return Err(Refusal::Prefix(*prefix));
                }
                Ok(())
            }
            Op::CreateTap { tap, bridge, .. } => interface(tap).and(interface(bridge)),
            Op::DeleteTap { tap } => interface(tap),
            Op::PlugTap { tap, bridge, .. } => {
                interface(tap)?;
                bridge.as_deref().map_or(Ok(()), interface)
            }
            Op::EnableForwarding | Op::ListNat => Ok(()),
            Op::AddNat(rule) => {
                tag(&rule.tag)?;
                interface(&rule.bridge)
            }
            Op::RemoveNat { tag: t } => tag(t),
        }
    }
}

impl NatRule {
    /// The rules, as `(table, chain, match and target)`.
    pub fn specs(&self) -> Vec<(&'static str, &'static str, Vec<String>)> {
        let source = format!("{}/32", self.source);
        let words = |parts: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            // The tag goes before the target (the last two words).
            let at = v.len() - 2;
            for (i, w) in ["-m", "comment", "--comment", &self.tag].iter().enumerate() {
                v.insert(at + i, w.to_string());
            }
            v
        };
        let bridge = self.bridge.as_str();
        vec![
            (
                "nat",
                "POSTROUTING",
                words(&["-s", &source, "!", "-o", bridge, "-j", "MASQUERADE"]),
            ),
            // Routed traffic from a bridge port enters with the bridge as its
            // interface (the TAP is only a port of it), so the guest is
            // matched by its address on the bridge.
            (
                "filter",
                "FORWARD",
                words(&[
                    "-s", &source, "-i", bridge, "!", "-o", bridge, "-j", "ACCEPT",
                ]),
            ),
            (
                "filter",
                "FORWARD",
                words(&[
                    "-d",
                    &source,
                    "!",
                    "-i",
                    bridge,
                    "-o",
                    bridge,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "RELATED,ESTABLISHED",
                    "-j",
                    "ACCEPT",
                ]),
            ),
        ]
    }
}

/// A Linux interface name: 1–15 characters, no '/', no whitespace, not
/// starting with '-' (so it can never be read as an option).
fn interface(name: &str) -> Result<(), Refusal> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Refusal::Interface(name.to_string()))
    }
}

/// Whether a rule comment is a banger tag: `banger-` and a VM id (12
/// lowercase hex digits). Anything else, `banger-vpn` included, is not ours.
pub fn is_tag(t: &str) -> bool {
    t.strip_prefix(NAT_TAG_PREFIX).is_some_and(|id| {
        id.len() == 12
            && id
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

fn tag(t: &str) -> Result<(), Refusal> {
    if is_tag(t) {
        Ok(())
    } else {
        Err(Refusal::Tag(t.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_validated() {
        let tap = |t: &str| Op::DeleteTap { tap: t.into() }.validate();
        assert!(tap("bg-0a1b2c3d4e5f").is_ok());
        assert!(tap("").is_err());
        assert!(tap("-rf").is_err());
        assert!(tap("a/b").is_err());
        assert!(tap("has space").is_err());
        assert!(tap("sixteen-chars-xx").is_err());
        let rm = |t: &str| Op::RemoveNat { tag: t.into() }.validate();
        assert!(rm("banger-0a1b2c3d4e5f").is_ok());
        assert!(rm("banger-0a1b2c").is_err());
        assert!(rm("banger-vpn").is_err(), "a user's rule is not ours");
        assert!(rm("banger-").is_err());
        assert!(rm("docker-1").is_err());
        assert!(rm("banger-x;rm").is_err());
        let bridge = |p| {
            Op::EnsureBridge {
                bridge: "banger0".into(),
                gateway: Ipv4Addr::new(172, 30, 0, 1),
                prefix: p,
            }
            .validate()
        };
        assert!(bridge(24).is_ok());
        assert!(bridge(31).is_err());
    }

    #[test]
    fn operations_serialise_for_a_helper() {
        let op = Op::AddNat(NatRule {
            tag: "banger-0a1b2c3d4e5f".into(),
            source: Ipv4Addr::new(172, 30, 0, 2),
            bridge: "banger0".into(),
        });
        let json = serde_json::to_string(&op).unwrap();
        assert!(json.contains("\"op\":\"add_nat\""), "{json}");
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
    }

    #[test]
    fn nat_rules_carry_the_tag_and_the_guest_address() {
        let rule = NatRule {
            tag: "banger-0a1b2c3d4e5f".into(),
            source: Ipv4Addr::new(172, 30, 0, 2),
            bridge: "banger0".into(),
        };
        let specs = rule.specs();
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[0].0, "nat");
        for (_, _, args) in &specs {
            assert!(args
                .windows(2)
                .any(|w| w == ["--comment", "banger-0a1b2c3d4e5f"]));
            // Never tied to one uplink: any interface but the bridge.
            assert!(args.windows(2).any(|w| w[0] == "!"));
            assert!(args.iter().any(|a| a == "172.30.0.2/32"));
        }
    }
}
