//! Which Void mirrors a build may use, and which one the image keeps.

use super::error::VoidError;
use super::DEFAULT_MIRROR;
use crate::BuildError;

/// Void's packages are signed, but its index is not, and banger checks
/// packages against the index: the index must come over a channel nobody
/// can change on the way. Plain HTTP is accepted only on loopback (a local
/// proxy or test mirror).
pub fn check_mirror(mirror: &str) -> Result<(), BuildError> {
    if on_this_host(mirror) || !is_plain_http(mirror) {
        return Ok(());
    }
    Err(VoidError::PlainHttp(mirror.to_string()).into())
}

/// A directory, or a server on this machine's loopback: nothing on a
/// network can change it, and no guest can reach it.
fn on_this_host(mirror: &str) -> bool {
    crate::download::local(mirror).is_some() || is_loopback(mirror)
}

fn is_plain_http(url: &str) -> bool {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.scheme_str().map(|s| s.eq_ignore_ascii_case("http")))
        .unwrap_or(true) // unparsable: not trusted as HTTPS
}

/// Whether a URL's host (user-info aside) is this machine's loopback.
fn is_loopback(url: &str) -> bool {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_ascii_lowercase))
        .is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// The mirror the image's own xbps uses later: the build's, unless that
/// was a directory on, or a server local to, the build host.
pub fn guest_mirror(mirror: &str) -> &str {
    if on_this_host(mirror) {
        DEFAULT_MIRROR
    } else {
        mirror
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_mirrors_are_refused_except_on_loopback() {
        assert!(check_mirror("https://repo-default.voidlinux.org").is_ok());
        assert!(check_mirror("/srv/void").is_ok());
        assert!(check_mirror("http://127.0.0.1:8080/void").is_ok());
        assert!(check_mirror("http://localhost/void").is_ok());
        assert!(check_mirror("http://[::1]/void").is_ok());
        // The scheme in any case; the host is the host, not the user-info.
        assert!(check_mirror("HTTP://mirror.example.org/").is_err());
        assert!(check_mirror("http://localhost:x@evil.example/").is_err());
        assert!(check_mirror("http://127.0.0.1@evil.example:8080/").is_err());
        assert!(matches!(
            check_mirror("http://mirror.example.org/voidlinux"),
            Err(BuildError::Void(VoidError::PlainHttp(m))) if m == "http://mirror.example.org/voidlinux"
        ));
    }
}
