//! One Firecracker process, real or the fake, answering on its own socket in
//! a directory of its own: the parity test asks both the same requests.

use std::path::Path;
use std::time::Duration;

/// One running Firecracker (real or fake) answering on its socket.
pub struct Instance {
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Instance {
    pub fn start(binary: &Path) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(binary)
            .args(["--api-sock", "api.sock", "--id", "parity"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let socket = dir.path().join("api.sock");
        for _ in 0..200 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for file in ["initrd.img", "rootfs.ext4", "junk-kernel", "taken.sock"] {
            std::fs::write(dir.path().join(file), b"junk").unwrap();
        }
        Instance { dir, child }
    }

    /// The status and, for an error, the fault message of one request.
    pub async fn ask(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let body = body.replace("$DIR", &self.dir.path().display().to_string());
        let (status, bytes) = banger_client::uds::request(
            &self.dir.path().join("api.sock"),
            method.parse().unwrap(),
            path,
            (!body.is_empty()).then(|| body.into_bytes()),
        )
        .await
        .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let text = match answer.get("fault_message") {
            Some(fault) => fault.as_str().unwrap_or_default().to_string(),
            // What banger reads of a successful answer.
            None => ["state", "vmm_version"]
                .iter()
                .map(|k| answer[k].to_string())
                .chain([answer["machine-config"]["vcpu_count"].to_string()])
                .collect::<Vec<_>>()
                .join(" "),
        };
        let dir = self.dir.path().display().to_string();
        (status.as_u16(), text.replace(&dir, "$DIR"))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
