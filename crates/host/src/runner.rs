//! Running external commands. All shelling out goes through [`Runner`], so
//! tests can make any command fail. Arguments are passed as a vector, never
//! through a shell.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::{tools, HostError};

/// One command to run.
#[derive(Debug, Clone, Default)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    pub stdin: Option<Vec<u8>>,
    /// Append stdout and stderr to this file instead of capturing them.
    pub log: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// Exit codes besides 0 that mean success (e2fsck exits 1 after fixing).
    pub ok_codes: Vec<i32>,
}

impl Cmd {
    pub fn new(program: &str) -> Cmd {
        Cmd {
            program: program.to_string(),
            ..Cmd::default()
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }

    pub fn stdin(mut self, input: Vec<u8>) -> Cmd {
        self.stdin = Some(input);
        self
    }

    pub fn log_to(mut self, file: impl Into<PathBuf>) -> Cmd {
        self.log = Some(file.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Cmd {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn ok_codes(mut self, codes: &[i32]) -> Cmd {
        self.ok_codes.extend_from_slice(codes);
        self
    }

    /// The command line, for messages.
    pub fn display(&self) -> String {
        let mut s = self.program.clone();
        for arg in &self.args {
            s.push(' ');
            s.push_str(&arg.to_string_lossy());
        }
        s
    }
}

#[derive(Debug, Clone, Default)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The exit code (0, or one of the command's `ok_codes`).
    pub code: i32,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

#[async_trait]
pub trait Runner: Send + Sync {
    /// Runs the command to completion; a non-zero exit is an error.
    async fn run(&self, cmd: Cmd) -> Result<Output, HostError>;
}

/// Runs commands on this host.
#[derive(Debug, Default, Clone)]
pub struct SystemRunner;

#[async_trait]
impl Runner for SystemRunner {
    async fn run(&self, cmd: Cmd) -> Result<Output, HostError> {
        let program = tools::require(&cmd.program)?;
        let mut command = tokio::process::Command::new(program);
        command.args(&cmd.args).stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        command.kill_on_drop(true);
        for (k, v) in &cmd.env {
            command.env(k, v);
        }
        if let Some(dir) = &cmd.cwd {
            command.current_dir(dir);
        }
        if let Some(log) = &cmd.log {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| HostError::path_io("cannot open log", log, e))?;
            let clone = file
                .try_clone()
                .map_err(|e| HostError::io("cannot duplicate the log descriptor", e))?;
            command.stdout(file).stderr(clone);
        } else {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        tracing::debug!(command = %cmd.display(), "running");
        let mut child = command
            .spawn()
            .map_err(|e| HostError::io(format!("cannot run {}", cmd.program), e))?;
        if let Some(input) = &cmd.stdin {
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(input)
                    .await
                    .map_err(|e| HostError::io("cannot write the command's input", e))?;
            }
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| HostError::io(format!("cannot wait for {}", cmd.program), e))?;
        let allowed = out.status.code().is_some_and(|c| cmd.ok_codes.contains(&c));
        if !out.status.success() && !allowed {
            let stderr = if cmd.log.is_some() {
                format!(
                    "see {}",
                    cmd.log
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )
            } else {
                tail(&out.stderr)
            };
            return Err(HostError::CommandFailed {
                command: cmd.display(),
                status: out.status.to_string(),
                stderr,
            });
        }
        Ok(Output {
            stdout: out.stdout,
            stderr: out.stderr,
            code: out.status.code().unwrap_or(0),
        })
    }
}

/// The last few lines of a command's stderr, enough to explain a failure.
fn tail(bytes: &[u8]) -> String {
    banger_api::files::tail_lines(&String::from_utf8_lossy(bytes), 5).join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_commands_and_reports_failures_with_stderr() {
        let out = SystemRunner
            .run(Cmd::new("sh").args(["-c", "echo hi"]))
            .await
            .unwrap();
        assert_eq!(out.stdout_str(), "hi\n");
        let err = SystemRunner
            .run(Cmd::new("sh").args(["-c", "echo boom >&2; exit 3"]))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("boom") && msg.contains('3'), "{msg}");
        let err = SystemRunner
            .run(Cmd::new("no-such-tool-abc"))
            .await
            .unwrap_err();
        assert!(matches!(err, HostError::MissingTool { .. }));
    }

    #[tokio::test]
    async fn arguments_are_never_interpreted_by_a_shell() {
        let out = SystemRunner
            .run(Cmd::new("echo").arg("$(id); rm -rf /"))
            .await
            .unwrap();
        assert_eq!(out.stdout_str(), "$(id); rm -rf /\n");
    }
}
