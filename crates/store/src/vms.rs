//! VM rows.

use banger_api::{ApiError, Vm, VmState, VmmKind};
use rusqlite::{params, OptionalExtension, Row};

use crate::{conflict_or, Result, Store, StoreError};

const COLUMNS: &str = "id, name, state, image, vmm, accel, vcpu, memory_mib, disk_size_bytes, \
    overlay_size_bytes, nat, ip, mac, tap, pid, created_at, started_at, stop_reason, dir";

fn from_row(row: &Row<'_>) -> rusqlite::Result<std::result::Result<Vm, StoreError>> {
    let state: String = row.get(2)?;
    let vmm: String = row.get(4)?;
    let Some(state) = VmState::parse(&state) else {
        return Ok(Err(StoreError::Corrupt(format!("vm state {state:?}"))));
    };
    let Some(vmm) = VmmKind::parse(&vmm) else {
        return Ok(Err(StoreError::Corrupt(format!("vmm {vmm:?}"))));
    };
    Ok(Ok(Vm {
        id: row.get(0)?,
        name: row.get(1)?,
        state,
        image: row.get(3)?,
        vmm,
        accel: row.get(5)?,
        vcpu: row.get(6)?,
        memory_mib: row.get(7)?,
        disk_size_bytes: row.get::<_, i64>(8)? as u64,
        overlay_size_bytes: row.get::<_, i64>(9)? as u64,
        nat: row.get(10)?,
        ip: row.get(11)?,
        mac: row.get(12)?,
        tap: row.get(13)?,
        pid: row.get(14)?,
        created_at: row.get(15)?,
        started_at: row.get(16)?,
        stop_reason: row.get(17)?,
        dir: row.get(18)?,
    }))
}

/// Why a VM reference did not resolve to exactly one VM.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(ApiError),
}

impl Store {
    /// Inserts a new VM; a taken name, IP, MAC or TAP is a conflict.
    pub fn insert_vm(&self, vm: &Vm) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            &format!("INSERT INTO vms ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"),
            params![
                vm.id, vm.name, vm.state.as_str(), vm.image, vm.vmm.as_str(), vm.accel, vm.vcpu, vm.memory_mib,
                vm.disk_size_bytes as i64, vm.overlay_size_bytes as i64, vm.nat, vm.ip, vm.mac, vm.tap, vm.pid,
                vm.created_at, vm.started_at, vm.stop_reason, vm.dir
            ],
        )
        .map_err(|e| {
            conflict_or(e, |detail| {
                if detail.contains("vms.name") {
                    format!("a VM named {:?} already exists", vm.name)
                } else if detail.contains("vms.id") {
                    format!("a VM with id {} already exists", vm.id)
                } else {
                    format!("VM {:?} collides with an existing VM: {detail}", vm.name)
                }
            })
        })?;
        Ok(())
    }

    /// Writes every mutable field of a VM.
    pub fn update_vm(&self, vm: &Vm) -> Result<()> {
        self.conn().execute(
            "UPDATE vms SET state = ?2, vcpu = ?3, memory_mib = ?4, disk_size_bytes = ?5, nat = ?6, pid = ?7, \
             started_at = ?8, stop_reason = ?9, tap = ?10 WHERE id = ?1",
            params![
                vm.id, vm.state.as_str(), vm.vcpu, vm.memory_mib, vm.disk_size_bytes as i64, vm.nat, vm.pid,
                vm.started_at, vm.stop_reason, vm.tap
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
                from_row,
            )
            .optional()?;
        row.transpose()
    }

    pub fn list_vms(&self) -> Result<Vec<Vm>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM vms ORDER BY created_at, name"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// IP addresses held by VMs (allocated for the VM's whole life).
    pub fn used_ips(&self) -> Result<Vec<String>> {
        Ok(self.list_vms()?.into_iter().map(|vm| vm.ip).collect())
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
            [] => Err(RefError::Api(
                ApiError::not_found(format!("no VM named or with id {reference:?}"))
                    .with_hint("`banger vm list` shows the VMs that exist"),
            )),
            many => Err(RefError::Api(
                ApiError::new(
                    banger_api::ErrorCode::Ambiguous,
                    format!(
                        "{reference:?} is ambiguous: it is a prefix of the ids of {}",
                        many.iter()
                            .map(|vm| format!("{} ({})", vm.name, vm.id))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with_hint("use the VM's name or a longer id prefix"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_api::ErrorCode;

    pub(crate) fn sample(id: &str, name: &str, ip: &str) -> Vm {
        Vm {
            id: id.into(),
            name: name.into(),
            state: VmState::Creating,
            image: "default".into(),
            vmm: VmmKind::Qemu,
            accel: "tcg".into(),
            vcpu: 2,
            memory_mib: 1024,
            disk_size_bytes: 8 << 30,
            overlay_size_bytes: 4 << 30,
            nat: false,
            ip: ip.into(),
            mac: format!("52:54:00:00:{}", &id[id.len() - 4..]),
            tap: format!("bgr-{id}"),
            pid: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            started_at: None,
            stop_reason: None,
            dir: format!("/state/vms/{id}"),
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
        vm.started_at = Some("now".into());
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
            matches!(err, StoreError::Conflict(ref m) if m.contains("calm-otter")),
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
            Err(RefError::Api(e)) => {
                assert_eq!(e.code, ErrorCode::Ambiguous);
                assert!(e.message.contains("one") && e.message.contains("two"));
            }
            other => panic!("{other:?}"),
        }
        match store.resolve_vm("zz") {
            Err(RefError::Api(e)) => assert_eq!(e.code, ErrorCode::NotFound),
            other => panic!("{other:?}"),
        }
    }
}
