//! The VMs tab: the table and the selected VM's detail (with its console).

use banger_api::{format_size, VmState};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::model::{Connection, Model};

use super::style::{short_size, Theme};

pub(super) fn draw_vms(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
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

pub(super) fn draw_vm_detail(frame: &mut Frame, area: Rect, model: &Model) {
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
    if let Some(bytes) = vm.saved_state_bytes {
        lines.push(Line::raw(format!(
            "suspended: {} of memory and device state saved (z resumes)",
            format_size(bytes)
        )));
    }
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
