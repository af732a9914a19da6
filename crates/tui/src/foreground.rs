//! Handing the terminal to a child program (`vm ssh`, and the TUI's
//! Enter-to-SSH): the child gets Ctrl-C and Ctrl-\\, this process waits.

use std::os::unix::process::CommandExt;

/// Runs a terminal program in the foreground and returns its exit code.
/// While it runs, Ctrl-C and Ctrl-\ are its business, not this process's.
pub fn run_foreground(mut command: std::process::Command) -> std::io::Result<u8> {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // Only dispositions change: no handler code ever runs. The child gets
    // ours back before exec (ignored signals would be inherited), and we
    // get them back after.
    let set = |sig, handler| {
        // SAFETY: setting a disposition to ignore or to a previous value
        // installs no handler of ours.
        unsafe { signal(sig, handler) }
    };
    let int = set(Signal::SIGINT, SigHandler::SigIgn)?;
    let quit = set(Signal::SIGQUIT, SigHandler::SigIgn)?;
    let restore = move || -> nix::Result<()> {
        set(Signal::SIGINT, int)?;
        set(Signal::SIGQUIT, quit)?;
        Ok(())
    };
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls signal(2), which is async-signal-safe.
    unsafe {
        command.pre_exec(move || restore().map_err(std::io::Error::from));
    }
    let status = command.status();
    restore()?;
    Ok(status?
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(255))
}
