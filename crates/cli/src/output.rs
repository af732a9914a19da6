//! Printing: errors, tables, JSON and progress.

use std::io::IsTerminal;

use banger_api::Progress;
use banger_client::ClientError;
use indicatif::{ProgressBar, ProgressStyle};

pub fn print_error(err: &anyhow::Error) {
    if let Some(api) = err.downcast_ref::<ClientError>().and_then(ClientError::api) {
        eprintln!("error: {}", api.message);
        if let Some(hint) = &api.hint {
            eprintln!("hint: {hint}");
        }
        return;
    }
    eprintln!("error: {err:#}");
}

/// A failure that did not come from the daemon: its whole cause chain,
/// then the fix.
pub fn print_failure(err: &(dyn std::error::Error + 'static), hint: Option<&str>) {
    eprintln!("error: {}", banger_api::error::chain(err));
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

pub fn json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("serialisable")
    );
}

/// Width of the terminal on stdout, if it is one.
fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut size = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize struct we pass.
    let ok =
        unsafe { nix::libc::ioctl(nix::libc::STDOUT_FILENO, nix::libc::TIOCGWINSZ, &mut size) }
            == 0;
    (ok && size.ws_col > 0).then_some(size.ws_col as usize)
}

/// Column widths that fit in `total`, narrowing the widest columns first
/// (never below 4).
pub fn fit_widths(mut widths: Vec<usize>, total: Option<usize>) -> Vec<usize> {
    let Some(total) = total else { return widths };
    let gaps = 2 * widths.len().saturating_sub(1);
    while widths.iter().sum::<usize>() + gaps > total {
        let Some((i, w)) = widths.iter().copied().enumerate().max_by_key(|(_, w)| *w) else {
            break;
        };
        if w <= 4 {
            break;
        }
        widths[i] = w - 1;
    }
    widths
}

fn truncate(cell: &str, width: usize) -> String {
    // Cells may hold what guests wrote: no terminal escapes get through.
    let cell: String = cell
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if cell.chars().count() <= width {
        return cell;
    }
    let mut out: String = cell.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Left-aligned columns, widths from the content, narrowed to fit the terminal.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    linked_table(headers, rows, &[]);
}

/// A table whose first cell in row `i` links to `links[i]` (an OSC 8
/// terminal hyperlink, only when stdout is a terminal).
pub fn linked_table(headers: &[&str], rows: &[Vec<String>], links: &[Option<String>]) {
    let hyperlinks = std::io::stdout().is_terminal();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let widths = fit_widths(widths, terminal_width());
    let render = |cells: Vec<String>, link: Option<&String>| {
        let line: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let text = truncate(c, widths[i]);
                let pad = " ".repeat(widths[i] - text.chars().count());
                match link {
                    Some(url) if i == 0 && hyperlinks => {
                        format!("\x1b]8;;{url}\x1b\\{text}\x1b]8;;\x1b\\{pad}")
                    }
                    _ => format!("{text}{pad}"),
                }
            })
            .collect();
        println!("{}", line.join("  ").trim_end());
    };
    render(headers.iter().map(|h| h.to_string()).collect(), None);
    for (i, row) in rows.iter().enumerate() {
        render(row.clone(), links.get(i).and_then(Option::as_ref));
    }
}

/// Shows progress events: a bar on a terminal, plain lines otherwise.
pub struct ProgressView {
    bar: Option<ProgressBar>,
}

impl ProgressView {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(1000);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        ProgressView { bar }
    }

    pub fn update(&mut self, progress: &Progress) {
        match &self.bar {
            Some(bar) => {
                if let Some(f) = progress.fraction {
                    bar.set_position(permille(f));
                }
                bar.set_message(progress.message.clone());
            }
            None => eprintln!("[{}] {}", progress.stage, progress.message),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A fraction as thousandths, for the progress bar.
// Clamped to 0.0..=1.0 first, so the result is 0..=1000: nothing to lose.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn permille(fraction: f32) -> u64 {
    (fraction.clamp(0.0, 1.0) * 1000.0).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_narrow_the_widest_columns_to_fit() {
        assert_eq!(fit_widths(vec![10, 30, 5], None), vec![10, 30, 5]);
        let fitted = fit_widths(vec![10, 30, 5], Some(40));
        assert!(fitted.iter().sum::<usize>() + 4 <= 40, "{fitted:?}");
        assert_eq!(fitted[2], 5, "narrow columns are kept");
        assert_eq!(truncate("2026-11-28T16:42:47Z", 10), "2026-11-2…");
        assert_eq!(truncate("short", 10), "short");
    }
}
