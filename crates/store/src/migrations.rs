//! Schema migrations, applied in order and tracked in `PRAGMA user_version`.
//! Never edit a shipped migration: append a new one.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE images (
        name TEXT PRIMARY KEY,
        managed INTEGER NOT NULL,
        rootfs TEXT NOT NULL,
        kernel TEXT NOT NULL,
        initrd TEXT NOT NULL,
        kernel_version TEXT NOT NULL,
        work_seed TEXT NOT NULL,
        packages_sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE vms (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        image TEXT NOT NULL,
        vmm TEXT NOT NULL,
        accel TEXT NOT NULL,
        vcpu INTEGER NOT NULL,
        memory_mib INTEGER NOT NULL,
        disk_size_bytes INTEGER NOT NULL,
        overlay_size_bytes INTEGER NOT NULL,
        nat INTEGER NOT NULL,
        ip TEXT NOT NULL UNIQUE,
        mac TEXT NOT NULL UNIQUE,
        tap TEXT NOT NULL UNIQUE,
        pid INTEGER,
        created_at TEXT NOT NULL,
        started_at TEXT,
        stop_reason TEXT,
        dir TEXT NOT NULL
    );
    CREATE TABLE resources (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        vm_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL
    );
    CREATE INDEX resources_by_vm ON resources(vm_id);",
    // 2: whether an image carries the guest agent.
    "ALTER TABLE images ADD COLUMN agent INTEGER NOT NULL DEFAULT 0;",
    // 3: timestamps are typed now; the runtime bundle's image was recorded
    // without one.
    "UPDATE images SET created_at = '1970-01-01T00:00:00Z' WHERE created_at = '';",
    // 4: which kernels (by content) have booted to readiness under which VMM
    // on this host, first time only.
    "CREATE TABLE kernel_boots (
        kernel_sha256 TEXT NOT NULL,
        vmm TEXT NOT NULL,
        first_ready_at TEXT NOT NULL,
        PRIMARY KEY (kernel_sha256, vmm)
    );",
    // 5: when a VM last stopped (`vm prune`).
    "ALTER TABLE vms ADD COLUMN stopped_at TEXT;",
    // 6: port forwards, re-established at every daemon start.
    "CREATE TABLE forwards (
        vm_id TEXT NOT NULL,
        proto TEXT NOT NULL,
        host_address TEXT NOT NULL,
        host_port INTEGER NOT NULL,
        guest_port INTEGER NOT NULL,
        PRIMARY KEY (proto, host_port)
    );",
    // 7: whether an image's agent speaks the serial channel too.
    "ALTER TABLE images ADD COLUMN agent_serial INTEGER NOT NULL DEFAULT 0;",
    // 8: whether a VM was made from its image's warm snapshot.
    "ALTER TABLE vms ADD COLUMN warm INTEGER NOT NULL DEFAULT 0;",
];

pub(crate) fn apply(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_are_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        apply(&mut conn).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }

    #[test]
    fn an_image_recorded_without_a_timestamp_is_readable_after_upgrade() {
        let conn = Connection::open_in_memory().unwrap();
        // The schema as version 2 left it, with a row written then.
        for sql in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO images (name, managed, rootfs, kernel, initrd, kernel_version, work_seed, \
             packages_sha256, created_at, agent) VALUES ('default', 0, '/b/rootfs.ext4', '/b/vmlinux', \
             '/b/initrd.img', '6.1', '/b/work-seed', 'x', '', 1)",
            [],
        )
        .unwrap();
        let store = crate::Store::with_connection(conn).unwrap();
        let image = store.get_image("default").unwrap().unwrap();
        assert_eq!(image.created_at, time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(store.list_images().unwrap().len(), 1);
    }
}
