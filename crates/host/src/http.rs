//! Downloads over HTTP(S) trust what the host trusts: the system CA bundle
//! (as curl and apt do), so a proxy whose CA the administrator installed
//! works too. Mozilla's roots only when the host has no bundle.

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
    let candidates: Vec<std::path::PathBuf> = from_env
        .into_iter()
        .chain(BUNDLES.iter().map(std::path::PathBuf::from))
        .collect();
    roots_from(&candidates).map(|(_, certs)| certs)
}

/// The certificates of the first readable bundle among `candidates` that
/// holds any, with how many it holds.
fn roots_from(candidates: &[std::path::PathBuf]) -> Option<(usize, RootCerts)> {
    candidates.iter().find_map(|path| {
        let pem = std::fs::read(path).ok()?;
        let certs: Vec<_> = parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        (!certs.is_empty()).then(|| (certs.len(), RootCerts::new_with_certs(&certs)))
    })
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
    use super::*;

    /// A self-signed certificate (CN=banger-test), as a bundle holds them.
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUEfCs2iYv/30nLmYa/8Xcv78zLjcwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLYmFuZ2VyLXRlc3QwIBcNMjYxMjAxMTk1NjU1WhgPMjEyNjEx
MDcxOTU2NTVaMBYxFDASBgNVBAMMC2Jhbmdlci10ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAETDr2tGTBCFhYYie7Dg4DnRQSz7zLMGll4/RcDvnekYWRovX8
kDdVOhq1KRqeh0AnGpTMpMzkORY+tLuoLZAYZKNTMFEwHQYDVR0OBBYEFPSlGiGw
uEKZnz2nfuAXGn3YgzduMB8GA1UdIwQYMBaAFPSlGiGwuEKZnz2nfuAXGn3Ygzdu
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAJxBBXYdgEXyMzhD
i1yMTQCz41eI6n1VFfxNSawgcT2PAiEA9dJga9UF9S/+/ttVtwfXZjpYr0eU/68/
JJtPDgMzhIk=
-----END CERTIFICATE-----
";

    #[test]
    fn the_first_bundle_with_certificates_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.crt");
        let empty = dir.path().join("empty.crt");
        let bundle = dir.path().join("bundle.crt");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        std::fs::write(&bundle, format!("{CERT}{CERT}")).unwrap();
        let (count, _) = roots_from(&[missing.clone(), empty.clone(), bundle]).unwrap();
        assert_eq!(count, 2);
        assert!(roots_from(&[missing, empty]).is_none());
    }
}
