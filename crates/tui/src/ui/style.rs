//! Styles that follow `NO_COLOR`, and the short forms numbers take on screen.

use banger_api::VmState;
use ratatui::style::{Color, Modifier, Style};

/// Styles that disappear when colour is off (`NO_COLOR`).
pub(super) struct Theme {
    pub(super) color: bool,
}

impl Theme {
    pub(super) fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    pub(super) fn state(&self, state: VmState) -> Style {
        self.fg(match state {
            VmState::Running => Color::Green,
            VmState::Stopped => Color::DarkGray,
            VmState::Suspended => Color::Cyan,
            VmState::Creating
            | VmState::Starting
            | VmState::Stopping
            | VmState::Suspending
            | VmState::Resuming => Color::Yellow,
        })
    }

    pub(super) fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// `1.0G`, `512M`: sizes that fit a narrow column.
pub(super) fn short_size(bytes: u64) -> String {
    const G: f64 = (1u64 << 30) as f64;
    const M: f64 = (1u64 << 20) as f64;
    let b = bytes as f64;
    if b >= G {
        let g = b / G;
        if g >= 10.0 {
            format!("{g:.0}G")
        } else {
            format!("{g:.1}G")
        }
    } else if b >= M {
        format!("{:.0}M", b / M)
    } else {
        format!("{:.0}K", b / 1024.0)
    }
}

/// "2026-11-28".
pub(super) fn date(t: &time::OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// A count of lines as a terminal height (screens are far smaller than u16).
pub(super) fn rows(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}
