//! `banger ssh-config`: every VM's Host block (the daemon keeps them in a
//! file of its own), and one `Include` line in `~/.ssh/config` so plain
//! `ssh NAME.vm`, scp, rsync and editors' remote SSH reach VMs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::autostart;

pub async fn run(install: bool, uninstall: bool) -> anyhow::Result<ExitCode> {
    let config = autostart::connect().await?.ssh_config().await?;
    let user_config = user_config()?;
    let line = include_line(&config.path);
    if install {
        match add_include(&user_config, &line)? {
            true => println!("added `{line}` to {}", user_config.display()),
            false => println!("{} already includes banger's hosts", user_config.display()),
        }
        println!("then: ssh NAME.vm (also scp, rsync, remote editors)");
    } else if uninstall {
        match remove_include(&user_config, &line)? {
            true => println!("removed `{line}` from {}", user_config.display()),
            false => println!("{} has no banger line", user_config.display()),
        }
    } else {
        print!("{}", config.text);
    }
    Ok(ExitCode::SUCCESS)
}

fn user_config() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(Path::new(&home).join(".ssh/config"))
}

pub fn include_line(path: &Path) -> String {
    format!("Include {}", path.display())
}

/// Puts `line` first in `config` (an Include inside a Host block would only
/// apply to that host), once. The file as it was before banger's first
/// edit is kept beside it as `config.banger-backup`. Returns whether it
/// changed anything.
pub fn add_include(config: &Path, line: &str) -> anyhow::Result<bool> {
    let existing = match std::fs::read_to_string(config) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", config.display())),
    };
    let text = existing.clone().unwrap_or_default();
    if text.lines().any(|l| l.trim() == line) {
        return Ok(false);
    }
    let dir = config.parent().expect("a file in ~/.ssh");
    create_private_dir(dir)?;
    let backup = config.with_file_name("config.banger-backup");
    if let (Some(original), false) = (&existing, backup.exists()) {
        std::fs::write(&backup, original)
            .with_context(|| format!("cannot back up {}", config.display()))?;
    }
    write_private(config, &format!("{line}\n{text}"))?;
    Ok(true)
}

/// Removes exactly the line [`add_include`] added (and the file, when
/// banger made it and nothing else is in it). Returns whether it was there.
pub fn remove_include(config: &Path, line: &str) -> anyhow::Result<bool> {
    let Ok(text) = std::fs::read_to_string(config) else {
        return Ok(false);
    };
    let Some(start) = find_line(&text, line) else {
        return Ok(false);
    };
    let end = text[start..]
        .find('\n')
        .map(|n| start + n + 1)
        .unwrap_or(text.len());
    let rest = format!("{}{}", &text[..start], &text[end..]);
    let backup = config.with_file_name("config.banger-backup");
    if rest.is_empty() && !backup.exists() {
        std::fs::remove_file(config)?;
    } else {
        write_private(config, &rest)?;
    }
    Ok(true)
}

/// Where a whole line equal to `line` starts.
fn find_line(text: &str, line: &str) -> Option<usize> {
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        if l.trim_end_matches('\n') == line {
            return Some(at);
        }
        at += l.len();
    }
    None
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

/// ssh refuses a config others can write: keep it 0600.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_twice_adds_one_line_and_uninstall_restores_the_file_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join(".ssh/config");
        let line = include_line(Path::new("/s/ssh/config"));
        // No file yet: made, then removed again.
        assert!(add_include(&config, &line).unwrap());
        assert!(!add_include(&config, &line).unwrap());
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            format!("{line}\n")
        );
        assert!(remove_include(&config, &line).unwrap());
        assert!(!config.exists());

        let original = "Host work\n    HostName 10.0.0.1\n# no newline at the end";
        std::fs::write(&config, original).unwrap();
        assert!(add_include(&config, &line).unwrap());
        assert!(!add_include(&config, &line).unwrap());
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(
            text.starts_with(&format!("{line}\n")),
            "first, before any Host"
        );
        assert_eq!(text.matches(&line).count(), 1);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".ssh/config.banger-backup")).unwrap(),
            original
        );
        assert!(remove_include(&config, &line).unwrap());
        assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
        assert!(!remove_include(&config, &line).unwrap());
    }
}
