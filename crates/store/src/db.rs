//! The database handle, its errors, and the conversions rows share.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

use crate::migrations;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state database failed")]
    Sqlite(#[from] rusqlite::Error),
    /// Another VM has this name.
    #[error("a VM named {0:?} already exists")]
    NameTaken(String),
    /// Another VM has this id.
    #[error("a VM with id {0} already exists")]
    IdTaken(String),
    /// Another VM holds one of this VM's unique resources (IP, MAC, TAP).
    #[error("VM {name:?} collides with an existing VM ({detail})")]
    Collision { name: String, detail: String },
    /// A row holds a value this version cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Why a VM reference did not resolve to exactly one VM.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no VM named or with id {0:?}")]
    NotFound(String),
    /// The reference is a prefix of several ids: `(name, id)` of each.
    #[error("{reference:?} is ambiguous: it is a prefix of the ids of {}", .matches.iter().map(|(n, i)| format!("{n} ({i})")).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        reference: String,
        matches: Vec<(String, String)>,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The database. Cheap to share behind an `Arc`; every call is a short
/// transaction, so a plain mutex is the right lock.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::with_connection(conn)
    }

    pub fn open_in_memory() -> Result<Store> {
        Self::with_connection(Connection::open_in_memory()?)
    }

    pub(crate) fn with_connection(mut conn: Connection) -> Result<Store> {
        migrations::apply(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (each call
        // is its own transaction), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether SQLite refused a write for a unique constraint; its detail names
/// the column (`vms.name`).
pub(crate) fn constraint_detail(err: &rusqlite::Error) -> Option<&str> {
    match err {
        rusqlite::Error::SqliteFailure(e, detail)
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Some(detail.as_deref().unwrap_or(""))
        }
        _ => None,
    }
}

/// An RFC 3339 timestamp as stored.
pub(crate) fn timestamp(text: &str) -> std::result::Result<time::OffsetDateTime, StoreError> {
    banger_api::stamp::parse(text).ok_or_else(|| StoreError::Corrupt(format!("timestamp {text:?}")))
}

pub(crate) fn format_timestamp(t: &time::OffsetDateTime) -> String {
    banger_api::stamp::format(t)
}
