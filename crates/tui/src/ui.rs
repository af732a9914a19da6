//! Drawing the model. Pure: everything shown comes from the [`Model`], so
//! the same state always renders the same screen (tests rely on it).
//! Readable without colour: state is a word, the selection has a marker.

use banger_api::{format_size, VmState};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use crate::keys::HELP;
use crate::model::{Action, Connection, Mode, Model, Tab, FORM_FIELDS};

/// Styles that disappear when colour is off (`NO_COLOR`).
struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    fn state(&self, state: VmState) -> Style {
        self.fg(match state {
            VmState::Running => Color::Green,
            VmState::Stopped => Color::DarkGray,
            VmState::Creating | VmState::Starting | VmState::Stopping => Color::Yellow,
        })
    }

    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

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
                draw_vms(frame, body, model, &theme);
                draw_vm_detail(frame, detail, model);
            }
            Tab::Images => {
                draw_images(frame, body, model, &theme);
                draw_image_detail(frame, detail, model);
            }
        },
    }
    draw_status(frame, status, model, &theme);
    draw_footer(frame, footer, model);
    match &model.mode {
        Mode::Help => draw_help(frame),
        Mode::Confirm(action) => draw_confirm(frame, action),
        Mode::Create(_) => draw_form(frame, model, &theme),
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

fn draw_vms(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let vms = model.visible_vms();
    let block = Block::default().borders(Borders::ALL).title(" VMs ");
    if vms.is_empty() {
        let text = if model.connection == Connection::Connecting {
            "connecting to bangerd…".to_string()
        } else if model.vms.is_empty() {
            "No VMs yet. Press c to create one.".to_string()
        } else {
            format!("No VM matches {:?}. Esc clears the filter.", model.filter)
        };
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let wide = area.width >= 110;
    let rows = vms.iter().map(|vm| {
        let stats = model.stats_of(vm);
        let disk = match stats {
            Some(s) => format!(
                "{}/{}",
                short_size(s.work_used_bytes),
                short_size(vm.disk_size_bytes)
            ),
            None => short_size(vm.disk_size_bytes),
        };
        let address = if wide {
            format!("{} {}.vm", vm.ip, vm.name)
        } else {
            vm.ip.to_string()
        };
        Row::new(vec![
            Cell::from(vm.name.clone()),
            Cell::from(vm.state.as_str()).style(theme.state(vm.state)),
            Cell::from(vm.image.clone()),
            Cell::from(address),
            Cell::from(vm.vcpu.to_string()),
            Cell::from(short_size(u64::from(vm.memory_mib) << 20)),
            Cell::from(disk),
            Cell::from(if vm.nat { "on" } else { "-" }),
            Cell::from(model.uptime(vm).unwrap_or_else(|| "-".into())),
        ])
    });
    let widths = [
        Constraint::Min(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(if wide { 34 } else { 12 }),
        Constraint::Length(3),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(3),
        Constraint::Length(6),
    ];
    let header = Row::new([
        "NAME", "STATE", "IMAGE", "ADDRESS", "CPU", "MEM", "DISK", "NAT", "UP",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(model.selected_vm));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_vm_detail(frame: &mut Frame, area: Rect, model: &Model) {
    let Some(vm) = model.selected_vm() else {
        frame.render_widget(Block::default().borders(Borders::ALL), area);
        return;
    };
    let stats = model.stats_of(vm);
    let mut lines = vec![
        Line::raw(format!(
            "{} ({})  {} on {}/{}  image {}",
            vm.name, vm.id, vm.state, vm.vmm, vm.accel, vm.image
        )),
        Line::raw(format!(
            "ip {}  dns {}.vm  mac {}  tap {}  nat {}",
            vm.ip,
            vm.name,
            vm.mac,
            vm.tap,
            if vm.nat { "on" } else { "off" }
        )),
        Line::raw(format!(
            "{} vCPU  {}  /root {}  overlay {}{}",
            vm.vcpu,
            format_size(u64::from(vm.memory_mib) << 20),
            format_size(vm.disk_size_bytes),
            format_size(vm.overlay_size_bytes),
            match stats.and_then(|s| s.rss_bytes) {
                Some(rss) => format!("  VMM rss {}", format_size(rss)),
                None => String::new(),
            }
        )),
    ];
    if let Some(reason) = &vm.stop_reason {
        lines.push(Line::raw(format!("stopped because {reason}")));
    }
    if let Some(guest) = stats.and_then(|s| s.guest.as_ref()) {
        let mut line = format!(
            "guest: load {:.2}  memory {} of {}",
            guest.load[0],
            format_size(guest.memory_used_bytes()),
            format_size(guest.memory_total_bytes)
        );
        for disk in &guest.disks {
            line.push_str(&format!(
                "  {} {} of {}",
                disk.path,
                format_size(disk.used_bytes),
                format_size(disk.total_bytes)
            ));
        }
        lines.push(Line::raw(line));
    }
    match model.ports_of(vm) {
        Some([]) => lines.push(Line::raw("ports: nothing listens for the host")),
        Some(ports) => {
            let shown: Vec<String> = ports
                .iter()
                .map(|p| {
                    let at = p.url.clone().unwrap_or_else(|| p.endpoint.clone());
                    match &p.listener.process {
                        Some(process) => format!("{at} ({process})"),
                        None => at,
                    }
                })
                .collect();
            lines.push(Line::raw(format!("ports: {}", shown.join("  "))));
        }
        None if vm.state == VmState::Running => lines.push(Line::raw(
            "ports: unknown (the guest agent is not answering)",
        )),
        None => {}
    }
    lines.push(Line::styled(
        "console:",
        Style::default().add_modifier(Modifier::BOLD),
    ));
    let room = (area.height as usize).saturating_sub(2 + lines.len());
    if model.console.is_empty() {
        lines.push(Line::raw("  (no console output yet)"));
    }
    let skip = model.console.len().saturating_sub(room);
    lines.extend(
        model.console[skip..]
            .iter()
            .map(|l| Line::raw(format!("  {l}"))),
    );
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} ", vm.name)),
        ),
        area,
    );
}

fn draw_images(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
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
            Constraint::Length(10),
        ],
    )
    .header(
        Row::new(["NAME", "KIND", "KERNEL", "VMS", "CREATED"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(block)
    .row_highlight_style(theme.selected())
    .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(model.selected_image));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_image_detail(frame: &mut Frame, area: Rect, model: &Model) {
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
        (
            "created",
            image
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        ),
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

fn draw_help(frame: &mut Frame) {
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

fn draw_confirm(frame: &mut Frame, action: &Action) {
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

fn draw_form(frame: &mut Frame, model: &Model, theme: &Theme) {
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

/// `1.0G`, `512M`: sizes that fit a narrow column.
fn short_size(bytes: u64) -> String {
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
fn date(t: &time::OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// A count of lines as a terminal height (screens are far smaller than u16).
fn rows(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}
