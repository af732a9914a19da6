//! Port forwards, per VM. A host port serves one forward per protocol,
//! whichever VM has it (the table's key says so).

use banger_api::{Forward, Proto};
use rusqlite::params;

use crate::db::{constraint_detail, Result, Store, StoreError};

impl Store {
    /// Records a forward; a host port already forwarded is a conflict.
    pub fn add_forward(&self, vm_id: &str, forward: &Forward) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO forwards (vm_id, proto, host_address, host_port, guest_port) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    vm_id,
                    forward.proto.as_str(),
                    forward.host_address.to_string(),
                    forward.host_port,
                    forward.guest_port
                ],
            )
            .map_err(|e| match constraint_detail(&e) {
                Some(_) => StoreError::Collision {
                    name: format!("{} port {}", forward.proto, forward.host_port),
                    detail: "already forwarded".into(),
                },
                None => StoreError::Sqlite(e),
            })?;
        Ok(())
    }

    /// Forgets one forward of a VM; whether it had it.
    pub fn remove_forward(&self, vm_id: &str, proto: Proto, host_port: u16) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM forwards WHERE vm_id = ?1 AND proto = ?2 AND host_port = ?3",
            params![vm_id, proto.as_str(), host_port],
        )?;
        Ok(n > 0)
    }

    pub fn remove_forwards_of(&self, vm_id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM forwards WHERE vm_id = ?1", [vm_id])?;
        Ok(())
    }

    pub fn forwards_of(&self, vm_id: &str) -> Result<Vec<Forward>> {
        Ok(self
            .all_forwards()?
            .into_iter()
            .filter(|(id, _)| id == vm_id)
            .map(|(_, f)| f)
            .collect())
    }

    /// Every forward, with its VM's id.
    pub fn all_forwards(&self) -> Result<Vec<(String, Forward)>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT vm_id, proto, host_address, host_port, guest_port FROM forwards ORDER BY proto, host_port",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, u16>(3)?,
                row.get::<_, u16>(4)?,
            ))
        })?;
        let mut forwards = Vec::new();
        for row in rows {
            let (vm_id, proto, address, host_port, guest_port) = row?;
            let corrupt =
                |what: &str, v: &str| StoreError::Corrupt(format!("forward {what} {v:?}"));
            forwards.push((
                vm_id,
                Forward {
                    proto: Proto::parse(&proto).ok_or_else(|| corrupt("proto", &proto))?,
                    host_address: address.parse().map_err(|_| corrupt("address", &address))?,
                    host_port,
                    guest_port,
                },
            ));
        }
        Ok(forwards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_port_is_forwarded_once_per_protocol() {
        let store = Store::open_in_memory().unwrap();
        let tcp = Forward {
            proto: Proto::Tcp,
            host_address: "127.0.0.1".parse().unwrap(),
            host_port: 8080,
            guest_port: 80,
        };
        store.add_forward("vm1", &tcp).unwrap();
        assert!(store.add_forward("vm2", &tcp).is_err(), "taken by vm1");
        let udp = Forward {
            proto: Proto::Udp,
            ..tcp.clone()
        };
        store.add_forward("vm2", &udp).unwrap();
        assert_eq!(
            store.forwards_of("vm1").unwrap(),
            std::slice::from_ref(&tcp)
        );
        assert!(
            !store.remove_forward("vm2", Proto::Tcp, 8080).unwrap(),
            "not vm2's"
        );
        assert!(store.remove_forward("vm1", Proto::Tcp, 8080).unwrap());
        store.remove_forwards_of("vm2").unwrap();
        assert!(store.all_forwards().unwrap().is_empty());
    }
}
