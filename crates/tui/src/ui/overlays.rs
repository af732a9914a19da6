//! What opens over the screen: help, a confirmation, the create form.

use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::keys::HELP;
use crate::model::{Action, Mode, Model, FORM_FIELDS};

use super::style::{rows, Theme};

/// A box of `width`×`height` in the middle of the screen (clipped to it).
fn centered(frame: &Frame, width: u16, height: u16) -> Rect {
    let area = frame.area();
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub(super) fn draw_help(frame: &mut Frame) {
    let area = centered(frame, 44, rows(HELP.len()) + 4);
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(key, what)| Line::raw(format!(" {key:<9} {what}")))
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(" any key closes this help"));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        area,
    );
}

pub(super) fn draw_confirm(frame: &mut Frame, action: &Action) {
    let question = match action {
        Action::Delete(name) => format!("Delete VM {name}? Its disks and /root go with it."),
        Action::DeleteImage(name) => format!("Delete image {name}?"),
        other => format!("{}?", other.label()),
    };
    let area = centered(frame, 60, 5);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(vec![
            Line::raw(question),
            Line::raw(""),
            Line::raw("y = yes, any other key = no"),
        ])
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true })
        .block(Block::default().borders(Borders::ALL).title(" confirm ")),
        area,
    );
}

pub(super) fn draw_form(frame: &mut Frame, model: &Model, theme: &Theme) {
    let Mode::Create(form) = &model.mode else {
        return;
    };
    let area = centered(frame, 50, rows(FORM_FIELDS.len()) + 6);
    let placeholder = ["generated", "default", "1024", "2", "8G"];
    let mut lines = Vec::new();
    for (i, label) in FORM_FIELDS.iter().enumerate() {
        let focused = form.focus == i;
        let value = if form.values[i].is_empty() && !focused {
            format!("({})", placeholder[i])
        } else {
            format!("{}{}", form.values[i], if focused { "_" } else { "" })
        };
        let marker = if focused { ">" } else { " " };
        let style = if focused {
            theme.selected()
        } else {
            Style::default()
        };
        lines.push(Line::styled(format!("{marker} {label:<11} {value}"), style));
    }
    let nat_focused = form.focus == FORM_FIELDS.len();
    lines.push(Line::styled(
        format!(
            "{} {:<11} [{}] (Space toggles)",
            if nat_focused { ">" } else { " " },
            "NAT",
            if form.nat { "x" } else { " " }
        ),
        if nat_focused {
            theme.selected()
        } else {
            Style::default()
        },
    ));
    lines.push(Line::raw(""));
    if let Some(error) = &form.error {
        lines.push(Line::styled(error.clone(), theme.fg(Color::Red)));
    } else {
        lines.push(Line::raw("Enter creates; empty fields use the defaults"));
    }
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" create a VM "),
        ),
        area,
    );
}
