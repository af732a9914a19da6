//! Crash injection for tests: when `BANGER_TEST_CRASH_AT` names a point the
//! daemon reaches, it dies at once with SIGKILL, exactly as if killed there
//! (no destructors, no cleanup). Tests then start a new daemon and check
//! that reconcile leaves every VM in a true state and nothing leaked.
//!
//! Only with the `crash-points` feature, which the test suite turns on:
//! without it every point compiles to nothing.

/// Dies here if the test asked for it.
#[cfg(feature = "crash-points")]
pub fn point(name: &str) {
    if std::env::var("BANGER_TEST_CRASH_AT").is_ok_and(|at| at == name) {
        tracing::warn!(point = name, "crash injected");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_name: &str) {}
