//! The journal of host resources owned by VMs (see the crate docs).

use rusqlite::params;

use crate::db::{Result, Store, StoreError};
use crate::resource::{Resource, ResourceKind};

impl Store {
    /// Records a resource about to be created; returns its journal id.
    pub fn record_resource(&self, vm_id: &str, kind: ResourceKind, value: &str) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO resources (vm_id, kind, value) VALUES (?1, ?2, ?3)",
            params![vm_id, kind.as_str(), value],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Replaces the value of a recorded resource (e.g. the PID once known).
    pub fn update_resource(&self, id: i64, value: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE resources SET value = ?2 WHERE id = ?1",
            params![id, value],
        )?;
        Ok(())
    }

    /// Hands a resource to another owner (a pool TAP to the VM taking it).
    pub fn reassign_resource(&self, id: i64, vm_id: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE resources SET vm_id = ?2 WHERE id = ?1",
            params![id, vm_id],
        )?;
        Ok(())
    }

    /// Forgets a resource that no longer exists on the host.
    pub fn forget_resource(&self, id: i64) -> Result<()> {
        self.conn()
            .execute("DELETE FROM resources WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// The resources of one VM, oldest first (undo them in reverse).
    pub fn resources_of(&self, vm_id: &str) -> Result<Vec<Resource>> {
        self.query_resources(
            "SELECT id, vm_id, kind, value FROM resources WHERE vm_id = ?1 ORDER BY id",
            [vm_id],
        )
    }

    pub fn all_resources(&self) -> Result<Vec<Resource>> {
        self.query_resources(
            "SELECT id, vm_id, kind, value FROM resources ORDER BY id",
            [],
        )
    }

    fn query_resources<P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<Vec<Resource>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map(params, |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, vm_id, kind, value) = row?;
            let kind = ResourceKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("resource kind {kind:?}")))?;
            out.push(Resource {
                id,
                vm_id,
                kind,
                value,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_keeps_order_and_forgets() {
        let store = Store::open_in_memory().unwrap();
        let a = store
            .record_resource("vm1", ResourceKind::Dir, "/d")
            .unwrap();
        let b = store
            .record_resource("vm1", ResourceKind::Tap, "tap0")
            .unwrap();
        store
            .record_resource("vm2", ResourceKind::File, "/f")
            .unwrap();
        store.update_resource(b, "tap1").unwrap();
        let mine = store.resources_of("vm1").unwrap();
        assert_eq!(
            mine.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(),
            ["/d", "tap1"]
        );
        store.forget_resource(a).unwrap();
        assert_eq!(store.resources_of("vm1").unwrap().len(), 1);
        assert_eq!(store.all_resources().unwrap().len(), 2);
    }
}
