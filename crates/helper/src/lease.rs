//! Each owner's network. Two users' daemons must never share a bridge or
//! hand out the same address, so the helper decides: `--owner alice` gives
//! the first owner `banger0` with `172.30.0.0/24` (the defaults of
//! config.toml), the second `banger1` with `172.30.1.0/24`, and so on;
//! `--owner alice=br-alice,10.77.0.0/24` names them. The daemon asks
//! (`hello`) and uses what it is given.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// One owner's uid, bridge and subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub uid: u32,
    pub user: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
}

impl Lease {
    /// The bridge's own address: the subnet's first.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + 1)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LeaseError {
    #[error("--owner {0:?}: no such user")]
    NoUser(String),
    #[error(
        "--owner {0:?}: expected USER or USER=BRIDGE,SUBNET (e.g. alice=banger1,172.30.1.0/24)"
    )]
    Syntax(String),
    #[error("--owner {0:?}: the subnet must be an IPv4 network between /16 and /29")]
    Subnet(String),
    #[error("{a} and {b} would share a bridge or overlapping subnets")]
    Overlap { a: String, b: String },
}

/// Resolves a user name (or a numeric uid) to its uid.
pub fn uid_of(user: &str) -> Option<u32> {
    if let Ok(uid) = user.parse::<u32>() {
        return Some(uid);
    }
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

/// The leases of `--owner` arguments, in order (see the module docs).
pub fn assign(owners: &[String]) -> Result<Vec<Lease>, LeaseError> {
    let mut leases: Vec<Lease> = Vec::new();
    for (index, arg) in owners.iter().enumerate() {
        let (user, network) = match arg.split_once('=') {
            Some((user, spec)) => {
                let (bridge, subnet) = spec
                    .split_once(',')
                    .ok_or_else(|| LeaseError::Syntax(arg.clone()))?;
                let subnet: Ipv4Net = subnet
                    .parse()
                    .map_err(|_| LeaseError::Subnet(arg.clone()))?;
                (user, Some((bridge.to_string(), subnet)))
            }
            None => (arg.as_str(), None),
        };
        let uid = uid_of(user).ok_or_else(|| LeaseError::NoUser(user.to_string()))?;
        let (bridge, subnet) = match network {
            Some(n) => n,
            None => {
                let third = u8::try_from(index).map_err(|_| LeaseError::Syntax(arg.clone()))?;
                (
                    format!("banger{index}"),
                    Ipv4Net::new(Ipv4Addr::new(172, 30, third, 0), 24).expect("a /24"),
                )
            }
        };
        if !(16..=29).contains(&subnet.prefix_len()) {
            return Err(LeaseError::Subnet(arg.clone()));
        }
        let lease = Lease {
            uid,
            user: user.to_string(),
            bridge,
            subnet: subnet.trunc(),
        };
        let name_check = banger_host::privileged::Op::DeleteTap {
            tap: lease.bridge.clone(),
        };
        if name_check.validate().is_err() {
            return Err(LeaseError::Syntax(arg.clone()));
        }
        if let Some(other) = leases.iter().find(|l| {
            l.uid == lease.uid
                || l.bridge == lease.bridge
                || l.subnet.contains(&lease.subnet.network())
                || lease.subnet.contains(&l.subnet.network())
        }) {
            return Err(LeaseError::Overlap {
                a: other.user.clone(),
                b: lease.user.clone(),
            });
        }
        leases.push(lease);
    }
    Ok(leases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_get_their_own_bridge_and_subnet() {
        let leases = assign(&["0".into(), "1=br-one,10.77.0.0/24".into(), "2".into()]).unwrap();
        let got: Vec<(u32, &str, String)> = leases
            .iter()
            .map(|l| (l.uid, l.bridge.as_str(), l.subnet.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "banger0", "172.30.0.0/24".into()),
                (1, "br-one", "10.77.0.0/24".into()),
                (2, "banger2", "172.30.2.0/24".into()),
            ]
        );
        assert_eq!(leases[0].gateway(), Ipv4Addr::new(172, 30, 0, 1));
    }

    #[test]
    fn bad_or_overlapping_owners_are_refused() {
        assert_eq!(
            assign(&["no-such-user-here".into()]),
            Err(LeaseError::NoUser("no-such-user-here".into()))
        );
        assert!(matches!(
            assign(&["0=br".into()]),
            Err(LeaseError::Syntax(_))
        ));
        assert!(matches!(
            assign(&["0=br,10.0.0.0/8".into()]),
            Err(LeaseError::Subnet(_))
        ));
        assert!(matches!(
            assign(&["0=-rf,10.1.0.0/24".into()]),
            Err(LeaseError::Syntax(_))
        ));
        assert!(matches!(
            assign(&["0".into(), "1=banger0,10.1.0.0/24".into()]),
            Err(LeaseError::Overlap { .. })
        ));
        assert!(matches!(
            assign(&["0=a,10.1.0.0/16".into(), "1=b,10.1.7.0/24".into()]),
            Err(LeaseError::Overlap { .. })
        ));
        assert!(matches!(
            assign(&["0".into(), "0".into()]),
            Err(LeaseError::Overlap { .. })
        ));
    }
}
