//! A Void Linux package repository, read the way `xbps-install` reads it:
//! `<mirror>/current/x86_64-repodata` is a (zstd- or gzip-compressed) tar
//! holding `index.plist`, a dictionary of package name → properties. Here it
//! answers which packages a build needs (dependencies and virtual packages
//! resolved) and what each file must hash to, before anything is installed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;

use serde::Deserialize;

use super::archive::decompress;
use crate::download::Unreachable;

/// The only architecture the builder supports (glibc, not musl).
pub const ARCH: &str = "x86_64";
/// Where the static XBPS tools come from: Void builds them for musl only.
pub const STATIC_ARCH: &str = "x86_64-musl";

/// One package as the index describes it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Package {
    /// `name-version_revision`, e.g. `bash-5.2.21_1`.
    pub pkgver: String,
    /// `x86_64` or `noarch`: part of the file name.
    pub architecture: String,
    #[serde(rename = "filename-sha256")]
    pub sha256: String,
    #[serde(rename = "filename-size", default)]
    pub size: u64,
    #[serde(rename = "run_depends", default)]
    pub depends: Vec<String>,
    /// Virtual packages this one stands for (`awk-0_1`).
    #[serde(default)]
    pub provides: Vec<String>,
}

impl Package {
    /// The package file's name in the repository.
    pub fn file_name(&self) -> String {
        format!("{}.{}.xbps", self.pkgver, self.architecture)
    }
}

/// A repository index: the real packages and the virtual names they provide.
#[derive(Debug, Clone)]
pub struct Index {
    pub packages: BTreeMap<String, Package>,
    /// Virtual name → the real packages providing it.
    provided_by: HashMap<String, Vec<String>>,
    /// The compressed repodata as fetched (the local repository gets a copy).
    pub repodata: Vec<u8>,
}

/// `<mirror>/current`, where the main repository lives.
pub fn repo_url(mirror: &str) -> String {
    format!("{}/current", mirror.trim_end_matches('/'))
}

/// `<mirror>/current/musl`, the musl repository (the static XBPS tools).
pub fn musl_repo_url(mirror: &str) -> String {
    format!("{}/musl", repo_url(mirror))
}

/// The repodata file's name for an architecture.
pub fn repodata_name(arch: &str) -> String {
    format!("{arch}-repodata")
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    #[error("{0} is not a Void repository index: {1}")]
    Malformed(String, String),
    #[error("the Void repository at {repo} has no package {missing} (needed by {wanted_by})")]
    Missing {
        repo: String,
        missing: String,
        wanted_by: String,
    },
}

/// Downloads and reads a repository's index (`repo` is its URL or
/// directory, `arch` the repodata's architecture).
pub fn fetch_index(repo: &str, arch: &str) -> Result<Index, RepoError> {
    let url = format!("{}/{}", repo.trim_end_matches('/'), repodata_name(arch));
    let repodata = crate::download::get(&url, 256 << 20)?;
    parse_index(&url, repodata)
}

/// Index entries become file names and xbps arguments: only what Void's
/// own packages look like is accepted (no `/`, no leading `-` or `.`, the
/// name matching its key, a real sha256, a known architecture).
fn check_entry(key: &str, package: &Package) -> Result<(), String> {
    let safe = |s: &str| {
        !s.is_empty()
            && !s.starts_with(['-', '.'])
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
    };
    if !safe(key) || !safe(&package.pkgver) || pkgname(&package.pkgver) != key {
        return Err(format!("{key:?} with pkgver {:?}", package.pkgver));
    }
    if !["x86_64", "x86_64-musl", "noarch"].contains(&package.architecture.as_str()) {
        return Err(format!("{key} for architecture {:?}", package.architecture));
    }
    if package.sha256.len() != 64 || !package.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{key} with sha256 {:?}", package.sha256));
    }
    Ok(())
}

/// Reads a repodata archive (`what` names it in errors).
pub fn parse_index(what: &str, repodata: Vec<u8>) -> Result<Index, RepoError> {
    let malformed = |e: String| RepoError::Malformed(what.to_string(), e);
    let tar = decompress(&repodata).map_err(|e| malformed(e.to_string()))?;
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut plist = None;
    for entry in archive.entries().map_err(|e| malformed(e.to_string()))? {
        let mut entry = entry.map_err(|e| malformed(e.to_string()))?;
        let path = entry.path().map_err(|e| malformed(e.to_string()))?;
        if path.to_string_lossy().trim_start_matches("./") == "index.plist" {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| malformed(e.to_string()))?;
            plist = Some(bytes);
        }
    }
    let plist = plist.ok_or_else(|| malformed("no index.plist inside".into()))?;
    let mut packages: BTreeMap<String, Package> =
        plist::from_bytes(&plist).map_err(|e| malformed(format!("index.plist: {e}")))?;
    // An odd entry makes only itself unusable: a build that needs it then
    // fails naming it as missing.
    packages.retain(|key, package| match check_entry(key, package) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(index = what, entry = %e, "ignoring a package entry banger refuses");
            false
        }
    });
    let mut provided_by: HashMap<String, Vec<String>> = HashMap::new();
    for (name, package) in &packages {
        for virtual_pkgver in &package.provides {
            provided_by
                .entry(pkgname(virtual_pkgver).to_string())
                .or_default()
                .push(name.clone());
        }
    }
    Ok(Index {
        packages,
        provided_by,
        repodata,
    })
}

/// The package name in a dependency pattern or pkgver: `glibc>=2.39_1`,
/// `bash-5.2.21_1`, `sh<2` and plain `curl` all name their package.
pub fn pkgname(pattern: &str) -> &str {
    if let Some(at) = pattern.find(['<', '>', '=']) {
        return &pattern[..at];
    }
    // `name-version_revision`: the version after the last `-` has a `_N`.
    if let Some((name, version)) = pattern.rsplit_once('-') {
        let revision = version.rsplit_once('_').map(|(_, r)| r).unwrap_or("");
        if !name.is_empty() && !revision.is_empty() && revision.bytes().all(|b| b.is_ascii_digit())
        {
            return name;
        }
    }
    pattern
}

impl Index {
    /// The real package for a name or virtual name (the first provider, in
    /// name order, as a stable choice).
    fn real(&self, name: &str) -> Option<&str> {
        if let Some((real, _)) = self.packages.get_key_value(name) {
            return Some(real);
        }
        let providers = self.provided_by.get(name)?;
        providers.iter().min().map(String::as_str)
    }

    /// `wanted` and everything they depend on, by name. A name the
    /// repository lacks is an error naming what wanted it.
    pub fn resolve(&self, repo: &str, wanted: &[String]) -> Result<Vec<Package>, RepoError> {
        let mut chosen: BTreeSet<String> = BTreeSet::new();
        let mut queue: Vec<(String, String)> = wanted
            .iter()
            .map(|w| (w.clone(), "the package list".to_string()))
            .collect();
        while let Some((pattern, wanted_by)) = queue.pop() {
            let name = pkgname(&pattern);
            let real = self.real(name).ok_or_else(|| RepoError::Missing {
                repo: repo.to_string(),
                missing: name.to_string(),
                wanted_by: wanted_by.clone(),
            })?;
            if !chosen.insert(real.to_string()) {
                continue;
            }
            let package = &self.packages[real];
            for dep in &package.depends {
                queue.push((dep.clone(), package.pkgver.clone()));
            }
        }
        Ok(chosen
            .into_iter()
            .map(|name| self.packages[&name].clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_come_out_of_patterns_and_pkgvers() {
        assert_eq!(pkgname("glibc>=2.39_1"), "glibc");
        assert_eq!(pkgname("bash-5.2.21_1"), "bash");
        assert_eq!(pkgname("xbps-triggers-0.128_1"), "xbps-triggers");
        assert_eq!(pkgname("sh<2"), "sh");
        assert_eq!(pkgname("docker-compose"), "docker-compose");
        assert_eq!(pkgname("base-minimal"), "base-minimal");
        assert_eq!(pkgname("awk-0_1"), "awk");
    }

    fn index() -> Index {
        let package = |pkgver: &str, depends: &[&str], provides: &[&str]| Package {
            pkgver: pkgver.into(),
            architecture: "x86_64".into(),
            sha256: "00".into(),
            size: 1,
            depends: depends.iter().map(|s| s.to_string()).collect(),
            provides: provides.iter().map(|s| s.to_string()).collect(),
        };
        let packages: BTreeMap<String, Package> = [
            package("bash-5.2_1", &["glibc>=2.39_1", "readline>=8_1"], &[]),
            package("readline-8.2_1", &["glibc>=2.39_1"], &[]),
            package("glibc-2.39_1", &[], &[]),
            package("gawk-5.3_1", &["glibc>=0"], &["awk-0_1"]),
            package("broken-1_1", &["nothere>=1_1"], &[]),
        ]
        .into_iter()
        .map(|p| (pkgname(&p.pkgver).to_string(), p))
        .collect();
        let mut provided_by: HashMap<String, Vec<String>> = HashMap::new();
        provided_by.insert("awk".into(), vec!["gawk".into()]);
        Index {
            packages,
            provided_by,
            repodata: Vec::new(),
        }
    }

    #[test]
    fn entries_that_could_escape_a_directory_or_pose_as_options_are_refused() {
        let good = Package {
            pkgver: "bash-5.2_1".into(),
            architecture: "x86_64".into(),
            sha256: "a".repeat(64),
            size: 1,
            depends: vec![],
            provides: vec![],
        };
        assert!(check_entry("bash", &good).is_ok());
        let with = |pkgver: &str, arch: &str, sha: &str| Package {
            pkgver: pkgver.into(),
            architecture: arch.into(),
            sha256: sha.into(),
            ..good.clone()
        };
        let sha = "a".repeat(64);
        for (key, bad) in [
            ("bash", with("../../etc/bash-5.2_1", "x86_64", &sha)),
            ("bash", with("bash-5.2_1", "../x", &sha)),
            ("bash", with("bash-5.2_1", "x86_64/../..", &sha)),
            ("-oops", with("-oops-1_1", "x86_64", &sha)),
            ("bash", with("zsh-5.9_1", "x86_64", &sha)),
            ("bash", with("bash-5.2_1", "x86_64", "not-a-sha")),
        ] {
            assert!(check_entry(key, &bad).is_err(), "{key} {bad:?}");
        }
    }

    #[test]
    fn a_refused_entry_is_left_out_of_the_index_not_fatal() {
        let entry = |pkgver: &str| {
            format!(
                "<key>{}</key><dict><key>pkgver</key><string>{pkgver}</string><key>architecture</key><string>x86_64</string><key>filename-sha256</key><string>{}</string></dict>",
                pkgname(pkgver),
                "a".repeat(64)
            )
        };
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict>{}{}</dict></plist>",
            entry("bash-5.2_1"),
            entry("-evil-1_1")
        );
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(xml.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "index.plist", xml.as_bytes())
            .unwrap();
        let index = parse_index("test", builder.into_inner().unwrap()).unwrap();
        assert_eq!(index.packages.keys().collect::<Vec<_>>(), ["bash"]);
        let err = index.resolve("repo", &["-evil".into()]).unwrap_err();
        assert!(err.to_string().contains("no package -evil"), "{err}");
    }

    #[test]
    fn dependencies_and_virtual_packages_resolve_once() {
        let got = index()
            .resolve("repo", &["bash".into(), "awk".into(), "glibc".into()])
            .unwrap();
        let names: Vec<&str> = got.iter().map(|p| p.pkgver.as_str()).collect();
        assert_eq!(
            names,
            ["bash-5.2_1", "gawk-5.3_1", "glibc-2.39_1", "readline-8.2_1"]
        );
    }

    #[test]
    fn a_missing_dependency_names_who_wanted_it() {
        let err = index().resolve("repo", &["broken".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the Void repository at repo has no package nothere (needed by broken-1_1)"
        );
        let err = index().resolve("repo", &["vim".into()]).unwrap_err();
        assert!(err
            .to_string()
            .contains("no package vim (needed by the package list)"));
    }
}
