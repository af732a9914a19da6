//! Kernels that have booted a guest to readiness on this host, per VMM:
//! what doctor consults before it vouches for a kernel under Firecracker.

use banger_api::VmmKind;
use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;

use crate::db::{format_timestamp, timestamp, Result, Store};

impl Store {
    /// Records that the kernel with this content booted a guest to
    /// readiness under `vmm`; the first time is kept. Returns whether this
    /// was the first.
    pub fn record_kernel_boot(&self, kernel_sha256: &str, vmm: VmmKind) -> Result<bool> {
        let added = self.conn().execute(
            "INSERT OR IGNORE INTO kernel_boots (kernel_sha256, vmm, first_ready_at) VALUES (?1, ?2, ?3)",
            params![kernel_sha256, vmm.to_string(), format_timestamp(&OffsetDateTime::now_utc())],
        )?;
        Ok(added == 1)
    }

    /// When the kernel first booted a guest to readiness under `vmm`.
    pub fn kernel_first_ready(
        &self,
        kernel_sha256: &str,
        vmm: VmmKind,
    ) -> Result<Option<OffsetDateTime>> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT first_ready_at FROM kernel_boots WHERE kernel_sha256 = ?1 AND vmm = ?2",
                params![kernel_sha256, vmm.to_string()],
                |row| row.get(0),
            )
            .optional()?;
        text.as_deref().map(timestamp).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_boot_of_a_kernel_is_kept_per_vmm() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        assert_eq!(
            store
                .kernel_first_ready("k1", VmmKind::Firecracker)
                .unwrap(),
            None
        );
        assert!(store
            .record_kernel_boot("k1", VmmKind::Firecracker)
            .unwrap());
        let first = store
            .kernel_first_ready("k1", VmmKind::Firecracker)
            .unwrap()
            .unwrap();
        assert!(!store
            .record_kernel_boot("k1", VmmKind::Firecracker)
            .unwrap());
        assert_eq!(
            store
                .kernel_first_ready("k1", VmmKind::Firecracker)
                .unwrap(),
            Some(first)
        );
        // Another VMM, another kernel: not vouched for by this one.
        assert_eq!(store.kernel_first_ready("k1", VmmKind::Qemu).unwrap(), None);
        assert_eq!(
            store
                .kernel_first_ready("k2", VmmKind::Firecracker)
                .unwrap(),
            None
        );
    }
}
