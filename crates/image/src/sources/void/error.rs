//! What can go wrong building a Void image.

use std::path::PathBuf;

use super::{fetch, repo};

/// What can go wrong building a Void image.
#[derive(Debug, thiserror::Error)]
pub enum VoidError {
    /// The index is unsigned and packages are checked against it: it must
    /// not come over a channel anyone could change.
    #[error("the Void mirror {0} is plain HTTP: anyone on the way could change its index and with it every package")]
    PlainHttp(String),
    #[error("the Void mirror {mirror} must be reachable from this host")]
    Unreachable {
        mirror: String,
        #[source]
        source: crate::download::Unreachable,
    },
    /// A package the list names is not in the repository.
    #[error(transparent)]
    Index(repo::RepoError),
    #[error(transparent)]
    Fetch(fetch::FetchError),
    /// The default image lacks its kernel's modules.
    #[error("the default image {} has no {modules}", .rootfs.display())]
    NoModules { rootfs: PathBuf, modules: String },
}

impl VoidError {
    /// A mirror's failure, telling an unreachable mirror apart.
    pub(super) fn of_fetch(mirror: &str, error: fetch::FetchError) -> VoidError {
        match error {
            fetch::FetchError::Unreachable(source)
            | fetch::FetchError::Index(repo::RepoError::Unreachable(source)) => {
                VoidError::Unreachable {
                    mirror: mirror.to_string(),
                    source,
                }
            }
            other => VoidError::Fetch(other),
        }
    }

    pub(super) fn of_index(mirror: &str, error: repo::RepoError) -> VoidError {
        match error {
            repo::RepoError::Unreachable(source) => VoidError::Unreachable {
                mirror: mirror.to_string(),
                source,
            },
            other => VoidError::Index(other),
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            VoidError::PlainHttp(_) => "use an https:// mirror or a local mirror directory".into(),
            VoidError::Unreachable { .. } => {
                "pass --mirror URL (or a local mirror directory), or set void_mirror in config.toml"
                    .into()
            }
            VoidError::Index(repo::RepoError::Missing { .. }) => {
                "check the package list (packages.void)".into()
            }
            VoidError::NoModules { .. } => "rebuild the default image".into(),
            _ => return None,
        })
    }

    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            VoidError::PlainHttp(_) | VoidError::Index(repo::RepoError::Missing { .. })
        )
    }
}
