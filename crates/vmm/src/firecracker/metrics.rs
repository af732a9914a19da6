//! Firecracker's metrics file: one JSON object per flush (every 60 s, on
//! `FlushMetrics`, and when it exits), each holding the counts since the
//! flush before it. Totals since start are the sum of every line, which is
//! why the file is removed before each launch.

use std::path::Path;

use banger_api::VmmMetrics;
use serde::Deserialize;

/// The groups of one flush that banger reads; Firecracker writes many more.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Flush {
    vcpu: Vcpu,
    /// All block devices together (`block_<id>` holds each one).
    block: Block,
    net: Net,
    uart: Uart,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Vcpu {
    exit_io_in: u64,
    exit_io_out: u64,
    exit_mmio_read: u64,
    exit_mmio_write: u64,
    failures: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Block {
    read_bytes: u64,
    write_bytes: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Net {
    rx_bytes_count: u64,
    tx_bytes_count: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Uart {
    /// Bytes the guest wrote to the serial port.
    write_count: u64,
}

/// The totals of every flush in `text`. A line that does not parse (a
/// flush cut short by a crash) is skipped: the others still count.
pub fn totals(text: &str) -> VmmMetrics {
    let mut sum = VmmMetrics::default();
    for flush in text
        .lines()
        .filter_map(|line| serde_json::from_str::<Flush>(line).ok())
    {
        let v = &flush.vcpu;
        sum.vcpu_exits += v.exit_io_in + v.exit_io_out + v.exit_mmio_read + v.exit_mmio_write;
        sum.vcpu_failures += v.failures;
        sum.block_read_bytes += flush.block.read_bytes;
        sum.block_write_bytes += flush.block.write_bytes;
        sum.net_rx_bytes += flush.net.rx_bytes_count;
        sum.net_tx_bytes += flush.net.tx_bytes_count;
        sum.console_bytes += flush.uart.write_count;
    }
    sum
}

/// The totals of a metrics file; `None` when Firecracker has not written it.
pub fn read(path: &Path) -> Option<VmmMetrics> {
    std::fs::read_to_string(path).ok().map(|t| totals(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_add_up_and_a_cut_line_is_skipped() {
        // Shaped as Firecracker v1.16.1 writes them (groups trimmed).
        let text = concat!(
            r#"{"utc_timestamp_ms":1,"vcpu":{"exit_io_in":1,"exit_io_out":2,"exit_mmio_read":3,"exit_mmio_write":4,"failures":0,"exit_io_in_agg":{"min_us":0}},"block":{"read_bytes":4096,"write_bytes":512},"block_rootfs":{"read_bytes":4096},"net":{"rx_bytes_count":60,"tx_bytes_count":42},"uart":{"write_count":10},"vsock":{}}"#,
            "\n",
            r#"{"utc_timestamp_ms":2,"vcpu":{"exit_io_in":1,"failures":1},"block":{"read_bytes":4096},"uart":{"write_count":5}}"#,
            "\n",
            r#"{"utc_timestamp_ms":3,"vcpu":{"exit_io"#,
        );
        assert_eq!(
            totals(text),
            VmmMetrics {
                vcpu_exits: 11,
                vcpu_failures: 1,
                block_read_bytes: 8192,
                block_write_bytes: 512,
                net_rx_bytes: 60,
                net_tx_bytes: 42,
                console_bytes: 15,
            }
        );
    }
}
