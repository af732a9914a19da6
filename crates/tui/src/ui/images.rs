//! The images tab: the table and the selected image's detail.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use crate::model::Model;

use super::style::{date, Theme};

pub(super) fn draw_images(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(" Images ");
    if model.images.is_empty() {
        let text = "No images yet. `banger image build --name default` builds one (the first create does too).";
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: false }).block(block),
            area,
        );
        return;
    }
    let rows = model.images.iter().map(|image| {
        let users = model.users_of(&image.name);
        Row::new(vec![
            image.name.clone(),
            if image.managed {
                "managed"
            } else {
                "registered"
            }
            .to_string(),
            image.kernel_version.clone(),
            if image.warm { "yes" } else { "no" }.to_string(),
            users.len().to_string(),
            date(&image.created_at),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(10),
            Constraint::Length(10),
            Constraint::Length(22),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(10),
        ],
    )
    .header(
        Row::new(["NAME", "KIND", "KERNEL", "WARM", "VMS", "CREATED"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(block)
    .row_highlight_style(theme.selected())
    .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(model.selected_image));
    frame.render_stateful_widget(table, area, &mut state);
}

pub(super) fn draw_image_detail(frame: &mut Frame, area: Rect, model: &Model) {
    let Some(image) = model.selected_image() else {
        frame.render_widget(Block::default().borders(Borders::ALL), area);
        return;
    };
    let users = model.users_of(&image.name);
    let lines: Vec<Line> = [
        ("rootfs", image.rootfs.display().to_string()),
        (
            "kernel",
            format!("{} ({})", image.kernel.display(), image.kernel_version),
        ),
        ("initrd", image.initrd.display().to_string()),
        (
            "work seed",
            image.work_seed.as_ref().map_or_else(
                || "none (/root starts empty)".into(),
                |p| p.display().to_string(),
            ),
        ),
        ("packages", image.packages_sha256.chars().take(16).collect()),
        ("agent", if image.agent { "yes" } else { "no" }.to_string()),
        ("created", banger_api::stamp::format(&image.created_at)),
        (
            "used by",
            if users.is_empty() {
                "no VM".to_string()
            } else {
                users.join(", ")
            },
        ),
    ]
    .into_iter()
    .map(|(k, v)| Line::raw(format!("{k:<10} {v}")))
    .collect();
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} ", image.name)),
        ),
        area,
    );
}
