//! Drawing the model. Pure: everything shown comes from the [`Model`], so
//! the same state always renders the same screen (tests rely on it).
//! Readable without colour: state is a word, the selection has a marker.
//!
//! - [`vms`], [`images`] — the two tabs; [`overlays`] — help, confirm, form;
//!   [`style`] — colours and short number forms

mod images;
mod overlays;
mod style;
mod vms;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::model::{Connection, Mode, Model, Tab};

use style::Theme;

pub fn draw(frame: &mut Frame, model: &Model) {
    let theme = Theme { color: model.color };
    let [header, body, detail, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(10),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, model, &theme);
    match &model.connection {
        Connection::Unreachable(error) => {
            draw_unreachable(frame, body.union(detail), model, error, &theme)
        }
        _ => match model.tab {
            Tab::Vms => {
                vms::draw_vms(frame, body, model, &theme);
                vms::draw_vm_detail(frame, detail, model);
            }
            Tab::Images => {
                images::draw_images(frame, body, model, &theme);
                images::draw_image_detail(frame, detail, model);
            }
        },
    }
    draw_status(frame, status, model, &theme);
    draw_footer(frame, footer, model);
    match &model.mode {
        Mode::Help => overlays::draw_help(frame),
        Mode::Confirm(action) => overlays::draw_confirm(frame, action),
        Mode::Create(_) => overlays::draw_form(frame, model, &theme),
        Mode::Normal | Mode::Filter => {}
    }
}

fn draw_header(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let tab = |label: String, active: bool| {
        if active {
            Span::styled(
                format!("[{label}]"),
                theme.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            )
        } else {
            Span::raw(format!(" {label} "))
        }
    };
    let mut spans = vec![
        Span::styled("banger ", Style::default().add_modifier(Modifier::BOLD)),
        tab(
            format!("1:VMs ({})", model.vms.len()),
            model.tab == Tab::Vms,
        ),
        Span::raw(" "),
        tab(
            format!("2:Images ({})", model.images.len()),
            model.tab == Tab::Images,
        ),
    ];
    if !model.filter.is_empty() || model.mode == Mode::Filter {
        let cursor = if model.mode == Mode::Filter { "_" } else { "" };
        spans.push(Span::raw(format!("  filter: {}{cursor}", model.filter)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_unreachable(frame: &mut Frame, area: Rect, model: &Model, error: &str, theme: &Theme) {
    let text = vec![
        Line::styled(
            "bangerd is not reachable",
            theme.fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Line::raw(""),
        Line::raw(format!("socket: {}", model.socket)),
        Line::raw(format!("error:  {error}")),
        Line::raw(""),
        Line::raw("Retrying every 2 seconds. Start it with `banger daemon status`,"),
        Line::raw("or see its log (~/.local/state/banger/bangerd.log)."),
    ];
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" daemon ")),
        area,
    );
}

fn draw_status(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let line = if let Some(task) = model.tasks.last() {
        let mut text = format!("… {}", task.label);
        if let Some(p) = &task.progress {
            text.push_str(&format!(": {p}"));
        }
        if let Some(f) = task.fraction {
            text.push_str(&format!(" ({:.0}%)", f * 100.0));
        }
        if model.tasks.len() > 1 {
            text.push_str(&format!(" (+{} more)", model.tasks.len() - 1));
        }
        Line::styled(text, theme.fg(Color::Yellow))
    } else if let Some((text, error)) = &model.message {
        if *error {
            Line::styled(format!("error: {text}"), theme.fg(Color::Red))
        } else {
            Line::styled(text.clone(), theme.fg(Color::Green))
        }
    } else {
        Line::raw("")
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_footer(frame: &mut Frame, area: Rect, model: &Model) {
    let text = match (&model.mode, model.tab) {
        (Mode::Filter, _) => "type to filter  Enter keep  Esc clear",
        (Mode::Create(_), _) => "Tab/↑↓ field  Space NAT  Enter create  Esc cancel",
        (_, Tab::Vms) => "s start x stop r restart d delete ⏎ ssh c create / filter ? help q quit",
        (_, Tab::Images) => "d delete  Tab VMs  c create VM  ? help  q quit",
    };
    frame.render_widget(
        Paragraph::new(text).style(Style::default().add_modifier(Modifier::DIM)),
        area,
    );
}
