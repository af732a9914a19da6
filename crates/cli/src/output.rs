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

pub fn json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("serialisable")
    );
}

/// Left-aligned columns, widths from the content.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let render = |cells: Vec<String>| {
        let line: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        println!("{}", line.join("  ").trim_end());
    };
    render(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        render(row.clone());
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
                    bar.set_position((f.clamp(0.0, 1.0) * 1000.0) as u64);
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
