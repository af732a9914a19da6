//! Timestamps as the API writes them: RFC 3339, UTC.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `2026-11-28T16:42:47.46Z`.
pub fn format(t: &OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .expect("an OffsetDateTime formats as RFC 3339")
}

pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}
