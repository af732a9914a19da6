//! VM rows.

use std::path::PathBuf;

use banger_api::{Accel, Vm, VmState, VmmKind};
use rusqlite::{params, OptionalExtension, Row};

use crate::db::{constraint_detail, format_timestamp, timestamp, Result, Store, StoreError};

const COLUMNS: &str = "id, name, state, image, vmm, accel, vcpu, memory_mib, disk_size_bytes, \
    overlay_size_bytes, nat, ip, mac, tap, pid, created_at, started_at, stop_reason, dir, stopped_at, warm";

/// A row's columns as SQLite stores them; [`Raw::parse`] types them.
struct Raw {
    id: String,
    name: String,
    state: String,
    image: String,
    vmm: String,
    accel: String,
    vcpu: u32,
    memory_mib: u32,
    disk_size_bytes: i64,
    overlay_size_bytes: i64,
    nat: bool,
    ip: String,
    mac: String,
    tap: String,
    pid: Option<u32>,
    created_at: String,
    started_at: Option<String>,
    stop_reason: Option<String>,
    dir: String,
    stopped_at: Option<String>,
    warm: bool,
}

fn raw(row: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: row.get(0)?,
        name: row.get(1)?,
        state: row.get(2)?,
        image: row.get(3)?,
        vmm: row.get(4)?,
        accel: row.get(5)?,
        vcpu: row.get(6)?,
        memory_mib: row.get(7)?,
        disk_size_bytes: row.get(8)?,
        overlay_size_bytes: row.get(9)?,
        nat: row.get(10)?,
        ip: row.get(11)?,
        mac: row.get(12)?,
        tap: row.get(13)?,
        pid: row.get(14)?,
        created_at: row.get(15)?,
        started_at: row.get(16)?,
        stop_reason: row.get(17)?,
        dir: row.get(18)?,
        stopped_at: row.get(19)?,
        warm: row.get(20)?,
    })
}

/// SQLite stores integers signed; sizes are never negative.
fn bytes(value: i64, what: &str) -> std::result::Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value}")))
}

fn stored_bytes(value: u64) -> i64 {
    // Sizes are capped at 1 PiB when parsed, far below i64::MAX.
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Raw {
    fn parse(self) -> std::result::Result<Vm, StoreError> {
        let corrupt = |what: &str, value: &str| StoreError::Corrupt(format!("vm {what} {value:?}"));
        Ok(Vm {
            state: VmState::parse(&self.state).ok_or_else(|| corrupt("state", &self.state))?,
            vmm: VmmKind::parse(&self.vmm).ok_or_else(|| corrupt("vmm", &self.vmm))?,
            accel: Accel::parse(&self.accel).ok_or_else(|| corrupt("accel", &self.accel))?,
            ip: self.ip.parse().map_err(|_| corrupt("ip", &self.ip))?,
            mac: self.mac.parse().map_err(|_| corrupt("mac", &self.mac))?,
            disk_size_bytes: bytes(self.disk_size_bytes, "disk size")?,
            overlay_size_bytes: bytes(self.overlay_size_bytes, "overlay size")?,
            created_at: timestamp(&self.created_at)?,
            started_at: self.started_at.as_deref().map(timestamp).transpose()?,
            stopped_at: self.stopped_at.as_deref().map(timestamp).transpose()?,
            saved_state_bytes: None,
            warm: self.warm,
            id: self.id,
            name: self.name,
            image: self.image,
            vcpu: self.vcpu,
            memory_mib: self.memory_mib,
            nat: self.nat,
            tap: self.tap,
            pid: self.pid,
            stop_reason: self.stop_reason,
            dir: PathBuf::from(self.dir),
        })
    }
}

pub use crate::db::RefError;

impl Store {
    /// Inserts a new VM; a taken name, IP, MAC or TAP is a conflict.
    pub fn insert_vm(&self, vm: &Vm) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            &format!("INSERT INTO vms ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"),
            params![
                vm.id, vm.name, vm.state.as_str(), vm.image, vm.vmm.as_str(), vm.accel.as_str(), vm.vcpu,
                vm.memory_mib, stored_bytes(vm.disk_size_bytes), stored_bytes(vm.overlay_size_bytes), vm.nat,
                vm.ip.to_string(), vm.mac.to_string(), vm.tap, vm.pid, format_timestamp(&vm.created_at),
                vm.started_at.as_ref().map(format_timestamp), vm.stop_reason, vm.dir.to_string_lossy(),
                vm.stopped_at.as_ref().map(format_timestamp), vm.warm
            ],
        )
        .map_err(|e| match constraint_detail(&e) {
            Some(detail) if detail.contains("vms.name") => StoreError::NameTaken(vm.name.clone()),
            Some(detail) if detail.contains("vms.id") => StoreError::IdTaken(vm.id.clone()),
            Some(detail) => StoreError::Collision {
                name: vm.name.clone(),
                detail: detail.to_string(),
            },
            None => StoreError::Sqlite(e),
        })?;
        Ok(())
    }

    /// Writes every mutable field of a VM. When it stops is the store's to
    /// keep: set on the change to `stopped` (by whichever path stopped it),
    /// cleared when it runs again.
    pub fn update_vm(&self, vm: &Vm) -> Result<()> {
        self.conn().execute(
            "UPDATE vms SET vcpu = ?3, memory_mib = ?4, disk_size_bytes = ?5, nat = ?6, pid = ?7, \
             started_at = ?8, stop_reason = ?9, tap = ?10, warm = ?12, \
             stopped_at = CASE WHEN ?2 != 'stopped' THEN NULL \
                               WHEN state != 'stopped' OR stopped_at IS NULL THEN ?11 \
                               ELSE stopped_at END, \
             state = ?2 WHERE id = ?1",
            params![
                vm.id,
                vm.state.as_str(),
                vm.vcpu,
                vm.memory_mib,
                stored_bytes(vm.disk_size_bytes),
                vm.nat,
                vm.pid,
                vm.started_at.as_ref().map(format_timestamp),
                vm.stop_reason,
                vm.tap,
                format_timestamp(&time::OffsetDateTime::now_utc()),
                vm.warm
            ],
        )?;
        Ok(())
    }

    pub fn delete_vm(&self, id: &str) -> Result<()> {
        self.conn().execute("DELETE FROM vms WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn get_vm(&self, id: &str) -> Result<Option<Vm>> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM vms WHERE id = ?1"),
                [id],
                raw,
            )
            .optional()?;
        row.map(Raw::parse).transpose()
    }

    pub fn list_vms(&self) -> Result<Vec<Vm>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM vms ORDER BY created_at, name"
        ))?;
        let rows = stmt.query_map([], raw)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }

    /// Resolves a user's VM reference: an exact name, an exact id, or an
    /// unambiguous id prefix.
    pub fn resolve_vm(&self, reference: &str) -> std::result::Result<Vm, RefError> {
        let vms = self.list_vms()?;
        if let Some(vm) = vms
            .iter()
            .find(|vm| vm.name == reference || vm.id == reference)
        {
            return Ok(vm.clone());
        }
        let matches: Vec<&Vm> = vms
            .iter()
            .filter(|vm| !reference.is_empty() && vm.id.starts_with(reference))
            .collect();
        match matches.as_slice() {
            [vm] => Ok((*vm).clone()),
            [] => Err(RefError::NotFound(reference.to_string())),
            many => Err(RefError::Ambiguous {
                reference: reference.to_string(),
                matches: many
                    .iter()
                    .map(|vm| (vm.name.clone(), vm.id.clone()))
                    .collect(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(id: &str, name: &str, ip: &str) -> Vm {
        Vm {
            id: id.into(),
            name: name.into(),
            state: VmState::Creating,
            image: "default".into(),
            vmm: VmmKind::Qemu,
            accel: Accel::Tcg,
            vcpu: 2,
            memory_mib: 1024,
            disk_size_bytes: 8 << 30,
            overlay_size_bytes: 4 << 30,
            nat: false,
            ip: ip.parse().unwrap(),
            mac: format!(
                "52:54:00:00:{}:{}",
                &id[id.len() - 4..id.len() - 2],
                &id[id.len() - 2..]
            )
            .parse()
            .unwrap(),
            tap: format!("bgr-{id}"),
            pid: None,
            created_at: time::macros::datetime!(2026-01-01 00:00:00 UTC),
            started_at: None,
            stopped_at: None,
            saved_state_bytes: None,
            warm: false,
            stop_reason: None,
            dir: format!("/state/vms/{id}").into(),
        }
    }

    #[test]
    fn insert_get_update_delete() {
        let store = Store::open_in_memory().unwrap();
        let mut vm = sample("aa11", "calm-otter", "172.30.0.2");
        store.insert_vm(&vm).unwrap();
        assert_eq!(store.get_vm("aa11").unwrap().unwrap(), vm);
        vm.state = VmState::Running;
        vm.pid = Some(42);
        vm.started_at = Some(time::OffsetDateTime::now_utc());
        store.update_vm(&vm).unwrap();
        assert_eq!(store.get_vm("aa11").unwrap().unwrap(), vm);
        store.delete_vm("aa11").unwrap();
        assert!(store.get_vm("aa11").unwrap().is_none());
    }

    #[test]
    fn duplicate_names_are_a_conflict() {
        let store = Store::open_in_memory().unwrap();
        store
            .insert_vm(&sample("aa11", "calm-otter", "172.30.0.2"))
            .unwrap();
        let err = store
            .insert_vm(&sample("bb22", "calm-otter", "172.30.0.3"))
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NameTaken(ref name) if name == "calm-otter"),
            "{err:?}"
        );
    }

    #[test]
    fn refs_resolve_by_name_id_and_unambiguous_prefix() {
        let store = Store::open_in_memory().unwrap();
        store
            .insert_vm(&sample("ab12cd", "one", "172.30.0.2"))
            .unwrap();
        store
            .insert_vm(&sample("ab34ef", "two", "172.30.0.3"))
            .unwrap();
        assert_eq!(store.resolve_vm("one").unwrap().id, "ab12cd");
        assert_eq!(store.resolve_vm("ab34ef").unwrap().name, "two");
        assert_eq!(store.resolve_vm("ab1").unwrap().name, "one");
        match store.resolve_vm("ab") {
            Err(RefError::Ambiguous { matches, .. }) => assert_eq!(
                matches,
                [
                    ("one".into(), "ab12cd".into()),
                    ("two".into(), "ab34ef".into())
                ]
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(store.resolve_vm("zz"), Err(RefError::NotFound(r)) if r == "zz"));
    }

    #[test]
    fn the_store_keeps_when_a_vm_stopped() {
        let store = Store::open_in_memory().unwrap();
        let mut vm = sample("ab12cd", "one", "172.30.0.2");
        vm.state = VmState::Running;
        store.insert_vm(&vm).unwrap();
        assert_eq!(store.get_vm("ab12cd").unwrap().unwrap().stopped_at, None);
        vm.state = VmState::Stopped;
        store.update_vm(&vm).unwrap();
        let first = store.get_vm("ab12cd").unwrap().unwrap().stopped_at.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        // Another write while stopped (vm set) keeps the time it stopped.
        store.update_vm(&vm).unwrap();
        assert_eq!(
            store.get_vm("ab12cd").unwrap().unwrap().stopped_at,
            Some(first)
        );
        vm.state = VmState::Running;
        store.update_vm(&vm).unwrap();
        assert_eq!(store.get_vm("ab12cd").unwrap().unwrap().stopped_at, None);
    }
}
