#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A required program is not installed.
    #[error("required tool `{tool}` was not found in PATH")]
    MissingTool {
        tool: String,
        package: Option<&'static str>,
    },
    /// An external command exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl HostError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> HostError {
        HostError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn path_io(what: &str, path: &std::path::Path, source: std::io::Error) -> HostError {
        HostError::io(format!("{what} {}", path.display()), source)
    }

    /// The fix a user should apply, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            HostError::MissingTool {
                tool,
                package: Some(pkg),
            } => Some(format!(
                "install it with `apt-get install {pkg}` (it provides {tool}), then retry"
            )),
            HostError::MissingTool {
                tool,
                package: None,
            } => Some(format!("install {tool} and make sure it is in PATH")),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, HostError>;
