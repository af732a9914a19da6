//! Guest load, memory and disk use, from /proc and statvfs.

use banger_api::agent::{DiskUse, GuestStats};

pub fn stats() -> GuestStats {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut load = [0.0; 3];
    for (slot, value) in load.iter_mut().zip(loadavg.split_whitespace()) {
        *slot = value.parse().unwrap_or(0.0);
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let disks = ["/", "/root"]
        .iter()
        .filter_map(|path| disk_use(path))
        .collect();
    GuestStats {
        load,
        memory_total_bytes: kib("MemTotal"),
        memory_available_bytes: kib("MemAvailable"),
        disks,
    }
}

fn disk_use(path: &str) -> Option<DiskUse> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    let block = st.fragment_size();
    let total = st.blocks() * block;
    Some(DiskUse {
        path: path.into(),
        total_bytes: total,
        used_bytes: total.saturating_sub(st.blocks_free() * block),
    })
}
