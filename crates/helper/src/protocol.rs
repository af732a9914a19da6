//! The wire format: one JSON object per line each way. A connection may
//! carry many requests; each gets one answer before the next is read.

use banger_host::privileged::{Op, Outcome};
use serde::{Deserialize, Serialize};

/// The longest request line accepted; a longer one is refused unread.
pub const MAX_REQUEST: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Who am I to the helper: its version and the caller's network.
    Hello,
    /// One privileged operation.
    Perform { op: Op },
}

/// What the helper tells a caller about itself and the caller's network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub version: String,
    pub uid: u32,
    /// The caller's bridge and subnet (`172.30.0.0/24`).
    pub bridge: String,
    pub subnet: String,
    /// Every user this helper serves.
    #[serde(default)]
    pub owners: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    Welcome(Welcome),
    Done {
        outcome: Outcome,
    },
    /// Not allowed, or not understood: nothing ran.
    Refused {
        reason: String,
    },
    /// Allowed, but the host said no.
    Failed {
        error: String,
    },
}
