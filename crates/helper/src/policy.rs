//! What an owner may ask for, decided before anything runs. The typed
//! operations already refuse malformed arguments ([`Op::validate`]); here
//! each is held to the caller's own [`Lease`]: its bridge and subnet, TAPs
//! with banger's prefix that the caller owns (the kernel records a TAP's
//! owner uid), NAT rules whose addresses are in its subnet.

use std::net::Ipv4Addr;

use async_trait::async_trait;
use banger_host::privileged::{Op, Refusal};
use banger_host::HostError;

use crate::lease::Lease;

/// The prefixes of banger's TAP names: a VM's own (`bg-<id>`) and the
/// warm pool's (`bgp-<hex>`).
pub const TAP_PREFIXES: &[&str] = &["bg-", "bgp-"];

/// Who owns a network device, as the kernel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapOwner {
    Missing,
    /// Not a TAP, or a TAP without an owner: never a user's.
    Nobody,
    Uid(u32),
}

/// What the policy reads of the host.
#[async_trait]
pub trait World: Send + Sync {
    fn tap_owner(&self, name: &str) -> TapOwner;
    /// Every banger-tagged rule as `(tag, guest address)`.
    async fn tagged_rules(&self) -> Result<Vec<(String, Ipv4Addr)>, HostError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(transparent)]
    Invalid(#[from] Refusal),
    #[error("bridge {asked} is not yours (yours is {yours})")]
    Bridge { asked: String, yours: String },
    #[error("{asked} is not your bridge address (yours is {yours})")]
    Gateway { asked: String, yours: String },
    #[error("{0:?} is not a banger TAP name (bg-… or bgp-…)")]
    TapName(String),
    #[error("{0} is not a TAP you own")]
    NotYourTap(String),
    #[error("{addr} is outside your subnet {subnet}")]
    Subnet { addr: Ipv4Addr, subnet: String },
    #[error("the rules tagged {0} are not yours")]
    NotYourRule(String),
}

fn tap_name(tap: &str) -> Result<(), Denied> {
    if TAP_PREFIXES
        .iter()
        .any(|p| tap.starts_with(p) && tap.len() > p.len())
    {
        Ok(())
    } else {
        Err(Denied::TapName(tap.to_string()))
    }
}

fn bridge(lease: &Lease, asked: &str) -> Result<(), Denied> {
    if asked == lease.bridge {
        Ok(())
    } else {
        Err(Denied::Bridge {
            asked: asked.to_string(),
            yours: lease.bridge.clone(),
        })
    }
}

fn in_subnet(lease: &Lease, addr: Ipv4Addr) -> Result<(), Denied> {
    if lease.subnet.contains(&addr) {
        Ok(())
    } else {
        Err(Denied::Subnet {
            addr,
            subnet: lease.subnet.to_string(),
        })
    }
}

/// A TAP the caller may replace or remove: absent, or its own.
fn own_tap(lease: &Lease, world: &dyn World, tap: &str) -> Result<(), Denied> {
    match world.tap_owner(tap) {
        TapOwner::Missing => Ok(()),
        TapOwner::Uid(uid) if uid == lease.uid => Ok(()),
        _ => Err(Denied::NotYourTap(tap.to_string())),
    }
}

/// Rules already tagged `tag` must all be in the caller's subnet.
async fn own_rules(lease: &Lease, world: &dyn World, tag: &str) -> Result<(), Denied> {
    let rules = world.tagged_rules().await.unwrap_or_default();
    if rules
        .iter()
        .any(|(t, addr)| t == tag && !lease.subnet.contains(addr))
    {
        return Err(Denied::NotYourRule(tag.to_string()));
    }
    Ok(())
}

/// Checks `op` for the caller of `lease`; returns the operation to perform
/// (a TAP is made for the caller's uid, whatever the request said).
pub async fn check(lease: &Lease, world: &dyn World, op: Op) -> Result<Op, Denied> {
    op.validate()?;
    match op {
        Op::EnsureBridge {
            bridge: b,
            gateway,
            prefix,
        } => {
            bridge(lease, &b)?;
            if gateway != lease.gateway() || prefix != lease.subnet.prefix_len() {
                return Err(Denied::Gateway {
                    asked: format!("{gateway}/{prefix}"),
                    yours: format!("{}/{}", lease.gateway(), lease.subnet.prefix_len()),
                });
            }
            Ok(Op::EnsureBridge {
                bridge: b,
                gateway,
                prefix,
            })
        }
        Op::CreateTap { tap, bridge: b, .. } => {
            tap_name(&tap)?;
            bridge(lease, &b)?;
            own_tap(lease, world, &tap)?;
            Ok(Op::CreateTap {
                tap,
                bridge: b,
                user: Some(lease.uid),
            })
        }
        Op::DeleteTap { tap } => {
            tap_name(&tap)?;
            own_tap(lease, world, &tap)?;
            Ok(Op::DeleteTap { tap })
        }
        Op::PlugTap {
            tap,
            bridge: b,
            address,
        } => {
            tap_name(&tap)?;
            if let Some(b) = &b {
                bridge(lease, b)?;
            }
            in_subnet(lease, address)?;
            // Only a TAP that exists and is the caller's: a missing one
            // could be another's by the time it is moved.
            if world.tap_owner(&tap) != TapOwner::Uid(lease.uid) {
                return Err(Denied::NotYourTap(tap));
            }
            Ok(Op::PlugTap {
                tap,
                bridge: b,
                address,
            })
        }
        Op::EnableForwarding => Ok(Op::EnableForwarding),
        Op::AddNat(rule) => {
            bridge(lease, &rule.bridge)?;
            in_subnet(lease, rule.source)?;
            own_rules(lease, world, &rule.tag).await?;
            Ok(Op::AddNat(rule))
        }
        Op::RemoveNat { tag } => {
            own_rules(lease, world, &tag).await?;
            Ok(Op::RemoveNat { tag })
        }
        Op::ListNat => Ok(Op::ListNat),
    }
}

/// The tags a caller may see: those of rules in its subnet.
pub fn visible_tags(lease: &Lease, rules: &[(String, Ipv4Addr)]) -> Vec<String> {
    let mut tags: Vec<String> = rules
        .iter()
        .filter(|(_, addr)| lease.subnet.contains(addr))
        .map(|(tag, _)| tag.clone())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_host::privileged::NatRule;

    struct Host {
        taps: Vec<(&'static str, TapOwner)>,
        rules: Vec<(String, Ipv4Addr)>,
    }

    #[async_trait]
    impl World for Host {
        fn tap_owner(&self, name: &str) -> TapOwner {
            self.taps
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(TapOwner::Missing, |(_, o)| *o)
        }
        async fn tagged_rules(&self) -> Result<Vec<(String, Ipv4Addr)>, HostError> {
            Ok(self.rules.clone())
        }
    }

    fn alice() -> Lease {
        Lease {
            uid: 1000,
            user: "alice".into(),
            bridge: "banger0".into(),
            subnet: "172.30.0.0/24".parse().unwrap(),
        }
    }

    fn host() -> Host {
        Host {
            taps: vec![
                ("bg-aaaaaaaaaaaa", TapOwner::Uid(1000)),
                ("bg-bbbbbbbbbbbb", TapOwner::Uid(1001)),
                ("bgp-cafe", TapOwner::Nobody),
                ("eth0", TapOwner::Nobody),
            ],
            rules: vec![
                ("banger-aaaaaaaaaaaa".into(), Ipv4Addr::new(172, 30, 0, 2)),
                ("banger-bbbbbbbbbbbb".into(), Ipv4Addr::new(172, 30, 1, 2)),
            ],
        }
    }

    async fn denied(op: Op) -> Denied {
        check(&alice(), &host(), op).await.unwrap_err()
    }

    #[tokio::test]
    async fn an_owner_gets_its_own_network_and_nothing_else() {
        let (lease, world) = (alice(), host());
        let made = check(
            &lease,
            &world,
            Op::CreateTap {
                tap: "bg-000000000001".into(),
                bridge: "banger0".into(),
                user: Some(0),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            made,
            Op::CreateTap {
                tap: "bg-000000000001".into(),
                bridge: "banger0".into(),
                user: Some(1000),
            },
            "the TAP is the caller's, whatever it asked"
        );
        for op in [
            Op::DeleteTap {
                tap: "bg-aaaaaaaaaaaa".into(),
            },
            Op::DeleteTap {
                tap: "bg-gone".into(),
            },
            Op::EnsureBridge {
                bridge: "banger0".into(),
                gateway: Ipv4Addr::new(172, 30, 0, 1),
                prefix: 24,
            },
            Op::EnableForwarding,
            Op::RemoveNat {
                tag: "banger-aaaaaaaaaaaa".into(),
            },
            Op::AddNat(NatRule {
                tag: "banger-cccccccccccc".into(),
                source: Ipv4Addr::new(172, 30, 0, 9),
                bridge: "banger0".into(),
            }),
            Op::ListNat,
            Op::PlugTap {
                tap: "bg-aaaaaaaaaaaa".into(),
                bridge: None,
                address: Ipv4Addr::new(172, 30, 0, 2),
            },
            Op::PlugTap {
                tap: "bg-aaaaaaaaaaaa".into(),
                bridge: Some("banger0".into()),
                address: Ipv4Addr::new(172, 30, 0, 2),
            },
        ] {
            assert!(check(&lease, &world, op.clone()).await.is_ok(), "{op:?}");
        }
        let visible = visible_tags(&lease, &world.rules);
        assert_eq!(visible, ["banger-aaaaaaaaaaaa"]);
    }

    #[tokio::test]
    async fn what_is_not_the_callers_is_refused() {
        let plug = |tap: &str, bridge: &str, address| Op::PlugTap {
            tap: tap.into(),
            bridge: Some(bridge.into()),
            address,
        };
        let mine = Ipv4Addr::new(172, 30, 0, 2);
        assert_eq!(
            denied(plug("bg-bbbbbbbbbbbb", "banger0", mine)).await,
            Denied::NotYourTap("bg-bbbbbbbbbbbb".into())
        );
        assert_eq!(
            denied(plug("bg-gone", "banger0", mine)).await,
            Denied::NotYourTap("bg-gone".into()),
            "a TAP that does not exist may not be moved"
        );
        assert!(matches!(
            denied(plug("bg-aaaaaaaaaaaa", "docker0", mine)).await,
            Denied::Bridge { .. }
        ));
        assert!(matches!(
            denied(plug(
                "bg-aaaaaaaaaaaa",
                "banger0",
                Ipv4Addr::new(10, 0, 0, 1)
            ))
            .await,
            Denied::Subnet { .. }
        ));
        assert_eq!(
            denied(Op::DeleteTap { tap: "eth0".into() }).await,
            Denied::TapName("eth0".into())
        );
        assert_eq!(
            denied(Op::DeleteTap { tap: "lo".into() }).await,
            Denied::TapName("lo".into())
        );
        assert_eq!(
            denied(Op::DeleteTap {
                tap: "bg-bbbbbbbbbbbb".into()
            })
            .await,
            Denied::NotYourTap("bg-bbbbbbbbbbbb".into())
        );
        assert_eq!(
            denied(Op::CreateTap {
                tap: "bgp-cafe".into(),
                bridge: "banger0".into(),
                user: None,
            })
            .await,
            Denied::NotYourTap("bgp-cafe".into()),
            "a TAP without an owner is nobody's to replace"
        );
        assert!(matches!(
            denied(Op::CreateTap {
                tap: "bg-000000000001".into(),
                bridge: "docker0".into(),
                user: None,
            })
            .await,
            Denied::Bridge { .. }
        ));
        assert!(matches!(
            denied(Op::EnsureBridge {
                bridge: "banger0".into(),
                gateway: Ipv4Addr::new(10, 0, 0, 1),
                prefix: 24,
            })
            .await,
            Denied::Gateway { .. }
        ));
        assert!(matches!(
            denied(Op::AddNat(NatRule {
                tag: "banger-cccccccccccc".into(),
                source: Ipv4Addr::new(172, 30, 1, 9),
                bridge: "banger0".into(),
            }))
            .await,
            Denied::Subnet { .. }
        ));
        assert_eq!(
            denied(Op::RemoveNat {
                tag: "banger-bbbbbbbbbbbb".into()
            })
            .await,
            Denied::NotYourRule("banger-bbbbbbbbbbbb".into())
        );
        assert!(matches!(
            denied(Op::RemoveNat {
                tag: "banger-vpn".into()
            })
            .await,
            Denied::Invalid(Refusal::Tag(_))
        ));
    }
}
