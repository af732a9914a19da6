//! `banger vm forward NAME [HOST:]GUEST`: a host port relayed to a guest
//! port (TCP, or UDP with --udp), kept across restarts until removed.

use std::net::IpAddr;
use std::process::ExitCode;

use banger_api::{Forward, Proto};
use banger_client::DaemonClient;
use clap::Args;

use crate::output;

#[derive(Args)]
pub struct ForwardArgs {
    vm: String,
    /// GUEST (the same port on the host) or HOST:GUEST; with --remove, HOST
    port: String,
    /// UDP instead of TCP
    #[arg(long)]
    udp: bool,
    /// The host address to listen on (loopback unless you say otherwise)
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// Remove the forward of this host port instead
    #[arg(long)]
    remove: bool,
    #[arg(long)]
    json: bool,
}

/// `8080` or `5433:5432`.
pub fn parse_ports(spec: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{p:?} is not a port (1 to 65535)"))
    };
    match spec.split_once(':') {
        Some((host, guest)) => Ok((port(host)?, port(guest)?)),
        None => port(spec).map(|p| (p, p)),
    }
}

pub async fn run(client: &DaemonClient, args: ForwardArgs) -> anyhow::Result<ExitCode> {
    let proto = if args.udp { Proto::Udp } else { Proto::Tcp };
    let forwards = if args.remove {
        let (host_port, _) = parse_ports(&args.port).map_err(anyhow::Error::msg)?;
        client.remove_forward(&args.vm, proto, host_port).await?
    } else {
        let (host_port, guest_port) = parse_ports(&args.port).map_err(anyhow::Error::msg)?;
        client
            .add_forward(
                &args.vm,
                &Forward {
                    proto,
                    host_address: args.address,
                    host_port,
                    guest_port,
                },
            )
            .await?
    };
    if args.json {
        output::json(&forwards);
    } else if forwards.is_empty() {
        println!("{} has no forwards", args.vm);
    } else {
        for forward in &forwards {
            println!("{}: {forward}", args.vm);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_one_or_host_colon_guest() {
        assert_eq!(parse_ports("8080"), Ok((8080, 8080)));
        assert_eq!(parse_ports("5433:5432"), Ok((5433, 5432)));
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("70000").is_err());
        assert!(parse_ports("a:80").unwrap_err().contains("\"a\""));
    }
}
