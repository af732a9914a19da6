//! Handing the terminal to a child program (`vm ssh`, and the TUI's
//! Enter-to-SSH): the child gets Ctrl-C and Ctrl-\\, this process waits.

use std::os::unix::process::CommandExt;

/// Runs a terminal program in the foreground and returns its exit code.
/// While it runs, Ctrl-C and Ctrl-\ are its business, not this process's.
pub fn run_foreground(mut command: std::process::Command) -> std::io::Result<u8> {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: only dispositions change; no handler code runs. The child
    // gets ours back before exec (ignored signals would be inherited), and
    // we get them back after.
    let (int, quit) = unsafe {
        (
            signal(Signal::SIGINT, SigHandler::SigIgn)?,
            signal(Signal::SIGQUIT, SigHandler::SigIgn)?,
        )
    };
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls signal(2), which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            signal(Signal::SIGINT, int).map_err(std::io::Error::from)?;
            signal(Signal::SIGQUIT, quit).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let status = command.status();
    // SAFETY: as above.
    unsafe {
        signal(Signal::SIGINT, int)?;
        signal(Signal::SIGQUIT, quit)?;
    }
    Ok(status?
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(255))
}
