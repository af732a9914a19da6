//! Downloads over HTTP(S) trust what the host trusts: the system CA bundle
//! (as curl and apt do), so a proxy whose CA the administrator installed
//! works too. Mozilla's roots only when the host has no bundle.

use std::path::Path;
use std::time::Duration;

use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};

/// Where Debian, Ubuntu and Alpine keep the bundle; Fedora and Arch next.
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The host's root certificates (`SSL_CERT_FILE` first), if it has any.
pub fn system_roots() -> Option<RootCerts> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let path = from_env
        .into_iter()
        .chain(BUNDLES.iter().map(|p| Path::new(p).to_path_buf()))
        .find(|p| p.is_file())?;
    let pem = std::fs::read(path).ok()?;
    let certs: Vec<_> = parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    (!certs.is_empty()).then(|| RootCerts::new_with_certs(&certs))
}

/// An agent for downloads: connect timeout, overall timeout, system roots.
pub fn agent(connect: Duration, total: Duration) -> ureq::Agent {
    let roots = system_roots().unwrap_or(RootCerts::WebPki);
    ureq::Agent::config_builder()
        .timeout_connect(Some(connect))
        .timeout_global(Some(total))
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_system_bundle_is_read_when_present() {
        if std::path::Path::new(super::BUNDLES[0]).is_file() {
            assert!(super::system_roots().is_some());
        }
    }
}
