//! How build steps report progress: a stage name, a message, and the
//! fraction of the whole build done.

/// The reporting callback every step gets.
pub type Say<'a> = dyn Fn(&str, String, f32) + Send + Sync + 'a;
