//! Image rows.

use std::path::PathBuf;

use banger_api::Image;
use rusqlite::{params, OptionalExtension, Row};

use crate::db::{format_timestamp, timestamp, Result, Store};

const COLUMNS: &str =
    "name, managed, rootfs, kernel, initrd, kernel_version, work_seed, packages_sha256, created_at, agent, agent_serial";

/// A row as stored, and the created_at text still to parse.
fn from_row(row: &Row<'_>) -> rusqlite::Result<(Image, String)> {
    let path = |i| row.get::<_, String>(i).map(PathBuf::from);
    let work_seed: String = row.get(6)?;
    Ok((
        Image {
            name: row.get(0)?,
            managed: row.get(1)?,
            rootfs: path(2)?,
            kernel: path(3)?,
            initrd: path(4)?,
            kernel_version: row.get(5)?,
            work_seed: (!work_seed.is_empty()).then(|| PathBuf::from(work_seed)),
            packages_sha256: row.get(7)?,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            agent: row.get(9)?,
            agent_serial: row.get(10)?,
            warm: false,
        },
        row.get(8)?,
    ))
}

fn parse((mut image, created_at): (Image, String)) -> Result<Image> {
    image.created_at = timestamp(&created_at)?;
    Ok(image)
}

impl Store {
    /// Inserts or replaces an image record.
    pub fn put_image(&self, image: &Image) -> Result<()> {
        self.conn().execute(
            &format!("INSERT OR REPLACE INTO images ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                image.name, image.managed, image.rootfs.to_string_lossy(), image.kernel.to_string_lossy(),
                image.initrd.to_string_lossy(), image.kernel_version,
                image.work_seed.as_ref().map(|p| p.to_string_lossy()).unwrap_or_default(),
                image.packages_sha256, format_timestamp(&image.created_at), image.agent,
                image.agent_serial
            ],
        )?;
        Ok(())
    }

    pub fn get_image(&self, name: &str) -> Result<Option<Image>> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM images WHERE name = ?1"),
                [name],
                from_row,
            )
            .optional()?;
        row.map(parse).transpose()
    }

    pub fn list_images(&self) -> Result<Vec<Image>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM images ORDER BY name"))?;
        let rows = stmt.query_map([], from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(parse(row?)?);
        }
        Ok(out)
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
            work_seed: Some("/i/work-seed".into()),
            packages_sha256: "abc".into(),
            agent: false,
            agent_serial: false,
            warm: false,
            created_at: time::macros::datetime!(2026-11-28 16:42:47.5 UTC),
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
