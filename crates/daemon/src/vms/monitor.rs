//! Noticing when a VMM process ends: the watcher waits on the process (a
//! pidfd, so it works for processes this daemon did not start) and then
//! runs what it was given. It knows nothing of VMs.

use std::future::Future;

use banger_host::process::ProcessId;

/// Runs `on_exit` once `process` has exited.
pub fn watch(process: ProcessId, on_exit: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(async move {
        process.wait_exit().await;
        on_exit.await;
    });
}
