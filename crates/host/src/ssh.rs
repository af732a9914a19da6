//! SSH keys: one client key pair per installation, one host key per VM.

use std::path::Path;

use crate::runner::{Cmd, Runner};
use crate::HostError;

/// Generates an ed25519 key pair at `path` (and `path.pub`) unless present.
pub async fn ensure_keypair(
    runner: &dyn Runner,
    path: &Path,
    comment: &str,
) -> Result<(), HostError> {
    let public = path.with_extension("pub");
    if path.exists() {
        if !public.exists() {
            // Every VM trusts this key: never replace it; rebuild the public half.
            let out = runner
                .run(Cmd::new("ssh-keygen").args(["-y", "-f"]).arg(path))
                .await?;
            std::fs::write(&public, out.stdout)
                .map_err(|e| HostError::path_io("cannot write", &public, e))?;
        }
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| HostError::path_io("cannot create", dir, e))?;
    }
    let _ = std::fs::remove_file(&public);
    runner
        .run(
            Cmd::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(path),
        )
        .await?;
    Ok(())
}

/// The public half of a key pair, one line.
pub fn public_key(private: &Path) -> Result<String, HostError> {
    let pub_path = private.with_extension("pub");
    let text = std::fs::read_to_string(&pub_path)
        .map_err(|e| HostError::path_io("cannot read", &pub_path, e))?;
    Ok(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::SystemRunner;

    #[tokio::test]
    async fn generates_once_and_keeps_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("ssh/id_ed25519");
        ensure_keypair(&SystemRunner, &key, "banger").await.unwrap();
        let first = public_key(&key).unwrap();
        assert!(first.starts_with("ssh-ed25519 "));
        ensure_keypair(&SystemRunner, &key, "banger").await.unwrap();
        assert_eq!(public_key(&key).unwrap(), first);
        // A lost public half is rebuilt from the private key, never replaced.
        let private = std::fs::read(&key).unwrap();
        std::fs::remove_file(key.with_extension("pub")).unwrap();
        ensure_keypair(&SystemRunner, &key, "banger").await.unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), private);
        let key_material = |k: &str| k.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(
            key_material(&public_key(&key).unwrap()),
            key_material(&first)
        );
    }
}
