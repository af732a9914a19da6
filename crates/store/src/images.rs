//! Image rows.

use banger_api::Image;
use rusqlite::{params, OptionalExtension, Row};

use crate::{Result, Store};

const COLUMNS: &str =
    "name, managed, rootfs, kernel, initrd, kernel_version, work_seed, packages_sha256, created_at, agent";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Image> {
    Ok(Image {
        name: row.get(0)?,
        managed: row.get(1)?,
        rootfs: row.get(2)?,
        kernel: row.get(3)?,
        initrd: row.get(4)?,
        kernel_version: row.get(5)?,
        work_seed: row.get(6)?,
        packages_sha256: row.get(7)?,
        created_at: row.get(8)?,
        agent: row.get(9)?,
    })
}

impl Store {
    /// Inserts or replaces an image record.
    pub fn put_image(&self, image: &Image) -> Result<()> {
        self.conn().execute(
            &format!("INSERT OR REPLACE INTO images ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            params![
                image.name, image.managed, image.rootfs, image.kernel, image.initrd, image.kernel_version,
                image.work_seed, image.packages_sha256, image.created_at, image.agent
            ],
        )?;
        Ok(())
    }

    pub fn get_image(&self, name: &str) -> Result<Option<Image>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM images WHERE name = ?1"),
                [name],
                from_row,
            )
            .optional()?)
    }

    pub fn list_images(&self) -> Result<Vec<Image>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM images ORDER BY name"))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn delete_image(&self, name: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM images WHERE name = ?1", [name])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_round_trip_and_replace() {
        let store = Store::open_in_memory().unwrap();
        let mut image = Image {
            name: "default".into(),
            managed: true,
            rootfs: "/i/rootfs.ext4".into(),
            kernel: "/i/vmlinux".into(),
            initrd: "/i/initrd.img".into(),
            kernel_version: "6.1.0".into(),
            work_seed: "/i/work-seed".into(),
            packages_sha256: "abc".into(),
            agent: false,
            created_at: "t".into(),
        };
        store.put_image(&image).unwrap();
        image.packages_sha256 = "def".into();
        store.put_image(&image).unwrap();
        assert_eq!(store.list_images().unwrap(), vec![image.clone()]);
        assert_eq!(store.get_image("default").unwrap(), Some(image));
        store.delete_image("default").unwrap();
        assert!(store.get_image("default").unwrap().is_none());
    }
}
