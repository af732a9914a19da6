//! Package lists: one name per line, `#` comments, blank lines ignored;
//! Debian names checked against Debian's grammar before they reach apt or
//! mmdebstrap, so no entry can ever be read as an option.

use crate::BuildError;

/// Package names from a manifest.
pub fn parse_packages(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A Debian package name as apt takes it (`name`, `name=version`,
/// `name/suite`, `name:arch`): anything else, an option-like `-o...` or a
/// comma that would split mmdebstrap's `--include` included, is refused.
pub fn check_debian_name(name: &str) -> Result<(), BuildError> {
    let (package, qualifier) = match name.split_once(['=', '/', ':']) {
        Some((p, q)) => (p, Some(q)),
        None => (name, None),
    };
    let package_ok = package.len() >= 2
        && package.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && package
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    let qualifier_ok = qualifier.is_none_or(|q| {
        !q.is_empty()
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.~:_".contains(c))
    });
    if package_ok && qualifier_ok {
        Ok(())
    } else {
        Err(BuildError::BadPackageName(name.to_string()))
    }
}

/// `base` then the manifest's packages, every one a Debian name.
pub fn debian_packages(base: &[&str], manifest: &str) -> Result<Vec<String>, BuildError> {
    let packages: Vec<String> = base
        .iter()
        .map(|s| s.to_string())
        .chain(parse_packages(manifest))
        .collect();
    packages.iter().try_for_each(|p| check_debian_name(p))?;
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parsing_ignores_comments_and_blanks() {
        assert_eq!(parse_packages("# c\ncurl\n\n git # vcs\n"), ["curl", "git"]);
    }

    #[test]
    fn package_names_are_apt_names_never_options() {
        for ok in [
            "jq",
            "g++",
            "libc6",
            "docker.io",
            "curl=7.88.1-10",
            "tmux/bookworm-backports",
            "libc6:amd64",
        ] {
            assert!(check_debian_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "-oAPT::x=1",
            "--allow-unauthenticated",
            "Jq",
            "a b",
            "x",
            "curl=",
            "pkg;rm",
            "jq,--setup-hook=touch",
        ] {
            assert!(
                matches!(check_debian_name(bad), Err(BuildError::BadPackageName(n)) if n == bad),
                "{bad}"
            );
        }
        assert!(debian_packages(&["jq"], "curl\n--hook\n").is_err());
        assert_eq!(debian_packages(&["jq"], "curl\n").unwrap(), ["jq", "curl"]);
    }
}
