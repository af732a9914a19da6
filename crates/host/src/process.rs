//! VMM processes: started so they outlive the daemon, identified by PID *and*
//! start time (a PID alone may be reused after a crash or reboot), and
//! watched through a pidfd, which works whether or not the daemon that
//! watches is the process's parent.

use std::fs::OpenOptions;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;

use crate::HostError;

/// A process we started, as recorded in the state journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub start_time: u64,
}

impl ProcessId {
    pub fn encode(&self) -> String {
        format!("{}:{}", self.pid, self.start_time)
    }

    pub fn decode(s: &str) -> Option<ProcessId> {
        let (pid, start) = s.split_once(':')?;
        Some(ProcessId {
            pid: pid.parse().ok()?,
            start_time: start.parse().ok()?,
        })
    }

    /// Whether this very process (not a later one with the same PID) still runs.
    pub fn is_alive(&self) -> bool {
        matches!(read_stat(self.pid), Some((state, start)) if start == self.start_time && state != 'Z' && state != 'X')
    }

    pub fn signal(&self, signal: Signal) -> Result<(), HostError> {
        if !self.is_alive() {
            return Ok(());
        }
        // Linux PIDs fit an i32 (pid_max is at most 2^22).
        let pid = Pid::from_raw(i32::try_from(self.pid).unwrap_or(i32::MAX));
        match kill(pid, signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(source) => Err(HostError::Signal {
                pid: self.pid,
                signal,
                source,
            }),
        }
    }

    /// Resolves when the process has exited.
    pub async fn wait_exit(&self) {
        if !self.is_alive() {
            return;
        }
        match pidfd_open(self.pid) {
            // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it
            // until it is dropped; nothing else refers to the descriptor.
            Some(fd) => match unsafe { AsyncFd::register(fd) } {
                Ok(afd) => {
                    let _ = afd.readable().await;
                }
                Err(_) => self.poll_exit().await,
            },
            None => self.poll_exit().await,
        }
    }

    /// Waits up to `timeout` for the process to exit; true when it did.
    pub async fn wait_exit_timeout(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.wait_exit())
            .await
            .is_ok()
            || !self.is_alive()
    }

    async fn poll_exit(&self) {
        while self.is_alive() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let pid = libc::c_int::try_from(pid).ok()?;
    // SAFETY: plain syscall with integer arguments; the returned fd is owned by us.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    // A descriptor is a small non-negative int; anything else is an error.
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: fd is a fresh descriptor returned by the kernel, owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// (state letter, start time) of a PID, from /proc.
fn read_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Identity of a running PID, if it exists.
pub fn identify(pid: u32) -> Option<ProcessId> {
    read_stat(pid).map(|(_, start_time)| ProcessId { pid, start_time })
}

/// Starts a program in its own session, detached from the daemon: no
/// controlling terminal, stdin from /dev/null, output appended to `log`. It
/// is not killed when the daemon exits or is signalled.
pub fn spawn_detached(
    program: &Path,
    args: &[String],
    log: &Path,
    cwd: &Path,
) -> Result<ProcessId, HostError> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| HostError::path_io("cannot open", log, e))?;
    let err = out
        .try_clone()
        .map_err(|e| HostError::io("cannot duplicate the log descriptor", e))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| HostError::io(format!("cannot start {}", program.display()), e))?;
    let pid = child.id();
    let id = identify(pid).ok_or_else(|| HostError::ExitedAtStart {
        program: program.to_path_buf(),
        log: log.to_path_buf(),
    })?;
    // Reap the child when it exits so it does not linger as a zombie while
    // this daemon lives; after a daemon restart init reaps it instead.
    std::thread::Builder::new()
        .name(format!("reap-{pid}"))
        .spawn(move || {
            let _ = child.wait();
        })
        .map_err(|e| HostError::io("cannot start the thread that reaps the process", e))?;
    Ok(id)
}

/// Asks a process to stop with SIGTERM, then SIGKILL after `grace`.
pub async fn terminate(process: ProcessId, grace: Duration) -> Result<(), HostError> {
    process.signal(Signal::SIGTERM)?;
    if process.wait_exit_timeout(grace).await {
        return Ok(());
    }
    process.signal(Signal::SIGKILL)?;
    if process.wait_exit_timeout(Duration::from_secs(5)).await {
        Ok(())
    } else {
        Err(HostError::Unkillable { pid: process.pid })
    }
}

/// Processes whose program name contains one of `programs` and whose
/// command line contains `needle` in an argument. Used to find a VMM by its
/// VM directory when its PID was never recorded.
pub fn find_by_arg(programs: &[&str], needle: &str) -> Vec<ProcessId> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let mut args = cmd.split(|b| *b == 0).map(String::from_utf8_lossy);
            let Some(argv0) = args.next() else {
                return false;
            };
            let name = argv0.rsplit('/').next().unwrap_or_default().to_string();
            programs.iter().any(|p| name.contains(p)) && args.any(|arg| arg.contains(needle))
        })
        .filter_map(identify)
        .collect()
}

/// CPU time (user + system) a process has used, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

/// Resident memory of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn detached_process_is_watched_and_terminated() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let id = spawn_detached(
            Path::new("/bin/sh"),
            &["-c".into(), "echo started; exec sleep 30".into()],
            &log,
            dir.path(),
        )
        .unwrap();
        assert!(id.is_alive());
        assert_eq!(ProcessId::decode(&id.encode()), Some(id));
        // Its output goes to the log (wait for it: it runs on its own).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("started")
        {
            assert!(std::time::Instant::now() < deadline, "no output in the log");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Its own session: it does not share the test's process group.
        let pid = Pid::from_raw(i32::try_from(id.pid).unwrap());
        assert_eq!(nix::unistd::getsid(Some(pid)).unwrap(), pid);
        terminate(id, Duration::from_secs(2)).await.unwrap();
        assert!(!id.is_alive());
    }

    #[test]
    fn reads_cpu_and_memory_of_a_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).unwrap() > 1 << 20);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(rss_bytes(u32::MAX).is_none());
    }

    #[tokio::test]
    async fn finds_an_unrecorded_process_by_its_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("{}", 3000 + std::process::id() % 1000);
        let id = spawn_detached(
            Path::new("/bin/sleep"),
            std::slice::from_ref(&marker),
            &dir.path().join("log"),
            dir.path(),
        )
        .unwrap();
        assert_eq!(find_by_arg(&["sleep"], &marker), vec![id]);
        assert!(
            find_by_arg(&["qemu-system"], &marker).is_empty(),
            "other programs are left alone"
        );
        terminate(id, Duration::from_secs(2)).await.unwrap();
    }

    #[tokio::test]
    async fn a_reused_pid_is_not_mistaken_for_the_recorded_process() {
        let me = identify(std::process::id()).unwrap();
        assert!(me.is_alive());
        let other = ProcessId {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(!other.is_alive());
        // Waiting on a process that is gone returns at once.
        tokio::time::timeout(Duration::from_secs(1), other.wait_exit())
            .await
            .unwrap();
    }
}
