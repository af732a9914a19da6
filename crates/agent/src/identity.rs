//! `POST /v1/identity`: a guest restored from another's memory (a running
//! clone, a warm create) becomes its own VM before the host lets it on the
//! network. Done here rather than by a shell script: every process an
//! emulated guest starts costs ~0.1 s, and the kernel's RNG can only be
//! credited and forced to reseed through ioctls. One process is still
//! started (`ip`, for the interface); a grown disk's filesystem is grown
//! by the kernel's online resize.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use banger_api::agent::{Grow, Identity, IdentityDone, Readdress};
use base64::Engine;

/// The most seed the host may send (the kernel's pool is 256 bits; more
/// only costs time).
const SEED_MAX: usize = 512;
/// How long a grown disk may take to show its new size in the guest (the
/// host's resize reaches the guest's driver as an interrupt).
const GROW_WAIT: Duration = Duration::from_secs(10);

/// The body is JSON whatever its content type says (the host's client
/// sends none).
pub async fn identity(body: axum::body::Bytes) -> Response {
    let identity: Identity = match serde_json::from_slice(&body) {
        Ok(identity) => identity,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad identity: {e}")).into_response(),
    };
    match tokio::task::spawn_blocking(move || apply(&identity)).await {
        Ok(Ok(done)) => Json(done).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the identity step failed: {e}"),
        )
            .into_response(),
    }
}

/// Timings of the steps, for the host's log.
struct Steps {
    done: Vec<(String, u64)>,
    last: Instant,
}

impl Steps {
    fn mark(&mut self, step: &str) {
        let now = Instant::now();
        let ms = u64::try_from(now.duration_since(self.last).as_millis()).unwrap_or(u64::MAX);
        self.done.push((step.to_string(), ms));
        self.last = now;
    }
}

fn apply(identity: &Identity) -> Result<IdentityDone, String> {
    let seed = check(identity)?;
    // An agent run on a host (tests, debugging) must never take a guest's
    // identity for that host: only a guest banger's initramfs assembled
    // has its overlay disk mounted here.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !is_banger_guest(&mountinfo) {
        return Err(format!(
            "this is not a banger guest (nothing is mounted at {GUEST_MARK}): nothing was changed"
        ));
    }
    let mut steps = Steps {
        done: Vec::new(),
        last: Instant::now(),
    };
    let now = nix::sys::time::TimeSpec::new(identity.now_secs, i64::from(identity.now_nanos));
    nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, now)
        .map_err(|e| format!("cannot set the clock: {e}"))?;
    steps.mark("clock");
    reseed(&seed)?;
    steps.mark("rng");
    for file in &identity.files {
        replace(Path::new(&file.path), file.mode, file.contents.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", file.path))?;
    }
    forget_old_secrets()?;
    write_in_place(
        Path::new("/etc/machine-id"),
        format!("{}\n", identity.machine_id).as_bytes(),
    )
    .map_err(|e| format!("cannot write /etc/machine-id: {e}"))?;
    steps.mark("files");
    nix::unistd::sethostname(&identity.hostname)
        .map_err(|e| format!("cannot set the hostname: {e}"))?;
    readdress(&identity.network)?;
    steps.mark("network");
    for grow in &identity.grow {
        grow_fs(grow)?;
    }
    if !identity.grow.is_empty() {
        steps.mark("grow");
    }
    reload_sshd();
    steps.mark("sshd");
    Ok(IdentityDone { steps: steps.done })
}

/// Where banger's initramfs leaves a guest's overlay disk mounted.
const GUEST_MARK: &str = "/run/banger/rw";

fn is_banger_guest(mountinfo: &str) -> bool {
    mounts(mountinfo).any(|(_, at)| at == GUEST_MARK)
}

/// Refuses what no banger host sends, before anything is changed; the
/// seed's bytes.
fn check(identity: &Identity) -> Result<Vec<u8>, String> {
    let name = &identity.hostname;
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(format!("{name:?} is not a hostname"));
    }
    let id = &identity.machine_id;
    if id.len() != 32 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "{id:?} is not a machine-id (32 lowercase hex digits)"
        ));
    }
    let seed = seed(identity)?;
    if identity.network.prefix > 32 {
        return Err(format!(
            "/{} is not an IPv4 prefix",
            identity.network.prefix
        ));
    }
    for file in &identity.files {
        let path = Path::new(&file.path);
        if !path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!("{:?} is not an absolute path", file.path));
        }
    }
    Ok(seed)
}

/// The seed's bytes, 32 to [`SEED_MAX`] of them.
fn seed(identity: &Identity) -> Result<Vec<u8>, String> {
    let seed = base64::engine::general_purpose::STANDARD
        .decode(&identity.seed)
        .map_err(|e| format!("the seed is not base64: {e}"))?;
    if seed.len() < 32 || seed.len() > SEED_MAX {
        return Err(format!("a seed of {} bytes (32 to {SEED_MAX})", seed.len()));
    }
    Ok(seed)
}

/// `struct rand_pool_info` of `<linux/random.h>` with room for the seed.
#[repr(C)]
struct PoolInfo {
    entropy_count: libc::c_int,
    buf_size: libc::c_int,
    buf: [u8; SEED_MAX],
}

// The request codes name the header's fixed part (two ints) as their size.
nix::ioctl_write_ptr_bad!(
    rnd_add_entropy,
    nix::request_code_write!(b'R', 0x03, 2 * std::mem::size_of::<libc::c_int>()),
    PoolInfo
);
nix::ioctl_none!(rnd_reseed_crng, b'R', 0x07);

/// Mixes `seed` into the kernel's pool, credited as entropy, and makes the
/// CRNG reseed from it now: a clone must not produce its source's numbers,
/// and writing to `/dev/urandom` alone neither credits nor reseeds.
fn reseed(seed: &[u8]) -> Result<(), String> {
    let mut info = PoolInfo {
        entropy_count: libc::c_int::try_from(seed.len() * 8).expect("bounded above"),
        buf_size: libc::c_int::try_from(seed.len()).expect("bounded above"),
        buf: [0; SEED_MAX],
    };
    info.buf[..seed.len()].copy_from_slice(seed);
    let random = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/urandom")
        .map_err(|e| format!("cannot open /dev/urandom: {e}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: the fd is open for the call, and `info` is a valid
    // rand_pool_info whose buffer holds buf_size bytes.
    unsafe { rnd_add_entropy(random.as_raw_fd(), &info) }
        .map_err(|e| format!("cannot add entropy to the kernel's pool: {e}"))?;
    // SAFETY: an ioctl without an argument on an open fd.
    unsafe { rnd_reseed_crng(random.as_raw_fd()) }
        .map_err(|e| format!("cannot make the kernel's RNG reseed: {e}"))?;
    Ok(())
}

/// Replaces `path` whole (a new file renamed over it), owned by root.
fn replace(path: &Path, mode: u32, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let new = path.with_extension("banger-new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&new)?;
    file.write_all(contents)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&new, path)
}

/// Writes into the existing file: `/etc/machine-id` may be a mount point.
fn write_in_place(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o444)
        .open(path)?
        .write_all(contents)
}

/// What the source guest made for itself and must not be shared: systemd's
/// saved seed, host keys other than the one banger gives, D-Bus's own copy
/// of the machine-id (where it is not a link to `/etc/machine-id`).
fn forget_old_secrets() -> Result<(), String> {
    let mut stale = vec![
        "/var/lib/systemd/random-seed",
        "/etc/ssh/ssh_host_rsa_key",
        "/etc/ssh/ssh_host_rsa_key.pub",
        "/etc/ssh/ssh_host_ecdsa_key",
        "/etc/ssh/ssh_host_ecdsa_key.pub",
    ];
    let dbus = "/var/lib/dbus/machine-id";
    if std::fs::symlink_metadata(dbus).is_ok_and(|m| !m.file_type().is_symlink()) {
        stale.push(dbus);
    }
    for path in stale {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {path}: {e}")),
        }
    }
    Ok(())
}

/// Gives the interface with the old MAC the new MAC and address, in one
/// `ip -batch`.
fn readdress(network: &Readdress) -> Result<(), String> {
    let from = network.from_mac.to_string();
    let dev = std::fs::read_dir("/sys/class/net")
        .map_err(|e| format!("cannot list /sys/class/net: {e}"))?
        .flatten()
        .find(|entry| {
            std::fs::read_to_string(entry.path().join("address"))
                .is_ok_and(|a| a.trim().eq_ignore_ascii_case(&from))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .ok_or_else(|| format!("no interface has MAC {from}"))?;
    // The old address goes after the new one is added: without this, the
    // kernel would drop the new one with it (same subnet: a secondary).
    std::fs::write(
        format!("/proc/sys/net/ipv4/conf/{dev}/promote_secondaries"),
        "1",
    )
    .map_err(|e| format!("cannot set promote_secondaries on {dev}: {e}"))?;
    let mut child = Command::new("ip")
        .args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(ip_batch(&dev, network).as_bytes())
        .map_err(|e| format!("cannot talk to ip: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip could not readdress {dev}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn ip_batch(dev: &str, n: &Readdress) -> String {
    let mut batch = format!(
        "link set dev {dev} down\nlink set dev {dev} address {}\nlink set dev {dev} up\n",
        n.mac
    );
    if n.from_address != n.address {
        batch.push_str(&format!(
            "address add {}/{p} dev {dev}\naddress del {}/{p} dev {dev}\n",
            n.address,
            n.from_address,
            p = n.prefix
        ));
    }
    // The link going down took the default route with it.
    batch.push_str(&format!(
        "route replace default via {} dev {dev}\nneighbour flush dev {dev}\n",
        n.gateway
    ));
    batch
}

// EXT4_IOC_RESIZE_FS of <linux/ext4.h>: what `resize2fs` does online.
nix::ioctl_write_ptr!(ext4_resize_fs, b'f', 16, u64);

/// Grows the mounted ext4 filesystem labelled `grow.label` to its disk's
/// new size, once the guest's kernel sees that size: the kernel's online
/// resize, asked directly (images need not carry e2fsprogs).
fn grow_fs(grow: &Grow) -> Result<(), String> {
    let disk = disk_labelled(&grow.label)
        .ok_or_else(|| format!("no disk has an ext4 filesystem labelled {}", grow.label))?;
    let deadline = Instant::now() + GROW_WAIT;
    while disk_bytes(&disk) < grow.bytes {
        if Instant::now() >= deadline {
            return Err(format!(
                "/dev/{disk} did not grow to {} bytes within {GROW_WAIT:?} (it has {})",
                grow.bytes,
                disk_bytes(&disk)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mount = mount_point(&disk).ok_or_else(|| format!("/dev/{disk} is not mounted"))?;
    let dir = std::fs::File::open(&mount).map_err(|e| format!("cannot open {mount}: {e}"))?;
    let block = nix::sys::statfs::fstatfs(&dir)
        .map_err(|e| format!("cannot statfs {mount}: {e}"))?
        .block_size();
    let blocks = disk_bytes(&disk) / u64::try_from(block.max(1)).unwrap_or(4096);
    use std::os::fd::AsRawFd;
    // SAFETY: the fd is open for the call and `blocks` outlives it.
    unsafe { ext4_resize_fs(dir.as_raw_fd(), &blocks) }
        .map_err(|e| format!("the kernel could not grow {mount} (/dev/{disk}): {e}"))?;
    Ok(())
}

/// Where the disk is mounted, by its device number in mountinfo.
fn mount_point(disk: &str) -> Option<String> {
    let dev = std::fs::read_to_string(format!("/sys/block/{disk}/dev")).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mount_of(&mountinfo, dev.trim())
}

/// The mount point of the first mount of device `major:minor`.
fn mount_of(mountinfo: &str, dev: &str) -> Option<String> {
    mounts(mountinfo).find_map(|(d, at)| (d == dev).then_some(at))
}

/// Each mount of mountinfo as (device `major:minor`, field 3; mount point,
/// field 5, its spaces unescaped).
fn mounts(mountinfo: &str) -> impl Iterator<Item = (&str, String)> {
    mountinfo.lines().filter_map(|line| {
        let mut fields = line.split(' ');
        let dev = fields.nth(2)?;
        let at = fields.nth(1)?;
        Some((dev, at.replace("\\040", " ")))
    })
}

/// The whole disk (`vdb`, ...) whose ext4 filesystem has this label.
fn disk_labelled(label: &str) -> Option<String> {
    std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| {
            let mut superblock = [0u8; 1024];
            std::fs::File::open(format!("/dev/{name}"))
                .and_then(|mut f| {
                    std::io::copy(&mut (&mut f).take(1024), &mut std::io::sink())?;
                    f.read_exact(&mut superblock)
                })
                .is_ok_and(|()| ext4_label(&superblock).as_deref() == Some(label))
        })
}

/// The volume label of an ext2/3/4 superblock (the 1 KiB at offset 1024).
fn ext4_label(superblock: &[u8; 1024]) -> Option<String> {
    if u16::from_le_bytes([superblock[0x38], superblock[0x39]]) != 0xEF53 {
        return None;
    }
    let name = &superblock[0x78..0x88];
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    Some(String::from_utf8_lossy(&name[..end]).into_owned())
}

/// The disk's size as the guest's kernel sees it now.
fn disk_bytes(disk: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/block/{disk}/size"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(0, |sectors| sectors * 512)
}

/// OpenSSH before 9.8 re-executes for each connection and reads the new
/// host key then: nothing to do. Later ones (their per-connection half is
/// `sshd-session`) hold the keys in the listener: a HUP makes it start
/// again with the new one.
fn reload_sshd() {
    let split = [
        "/usr/lib/openssh/sshd-session",
        "/usr/libexec/sshd-session",
        "/usr/libexec/openssh/sshd-session",
    ];
    if !split.iter().any(|p| Path::new(p).exists()) {
        return;
    }
    let pid = std::fs::read_to_string("/run/sshd.pid")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    match pid {
        Some(pid) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGHUP,
            );
        }
        None => {
            let _ = Command::new("systemctl")
                .args(["--no-block", "try-restart", "ssh.service", "sshd.service"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            now_secs: 0,
            now_nanos: 0,
            seed: "A".repeat(44),
            files: Vec::new(),
            machine_id: "0123456789abcdef0123456789abcdef".into(),
            hostname: "calm-otter".into(),
            network: Readdress {
                from_mac: "52:54:00:00:00:01".parse().unwrap(),
                from_address: "172.30.0.2".parse().unwrap(),
                mac: "52:54:00:00:00:02".parse().unwrap(),
                address: "172.30.0.3".parse().unwrap(),
                prefix: 24,
                gateway: "172.30.0.1".parse().unwrap(),
            },
            grow: Vec::new(),
        }
    }

    #[test]
    fn refuses_what_no_host_sends_before_changing_anything() {
        assert!(check(&identity()).is_ok());
        let bad = |f: fn(&mut Identity)| {
            let mut i = identity();
            f(&mut i);
            check(&i).unwrap_err()
        };
        assert!(bad(|i| i.hostname = "a b".into()).contains("not a hostname"));
        assert!(bad(|i| i.machine_id = "XYZ".into()).contains("machine-id"));
        assert!(bad(|i| i.network.prefix = 33).contains("prefix"));
        assert!(bad(|i| i.seed = "c2VlZA==".into()).contains("a seed of 4 bytes"));
        assert!(bad(|i| i.seed = "not base64!".into()).contains("not base64"));
        assert!(bad(|i| i.files.push(banger_api::agent::IdentityFile {
            path: "/etc/../../x".into(),
            mode: 0o644,
            contents: String::new()
        }))
        .contains("not an absolute path"));
    }

    #[test]
    fn the_batch_moves_mac_and_address_and_restores_the_route() {
        let batch = ip_batch("eth0", &identity().network);
        assert_eq!(
            batch,
            "link set dev eth0 down\nlink set dev eth0 address 52:54:00:00:00:02\n\
             link set dev eth0 up\naddress add 172.30.0.3/24 dev eth0\n\
             address del 172.30.0.2/24 dev eth0\n\
             route replace default via 172.30.0.1 dev eth0\nneighbour flush dev eth0\n"
        );
        let mut same = identity().network;
        same.address = same.from_address;
        assert!(!ip_batch("eth0", &same).contains("address add"));
    }

    #[test]
    fn only_a_banger_guest_takes_an_identity() {
        let guest = "30 22 254:16 / /run/banger/rw rw,noatime - ext4 /dev/vdb rw\n";
        assert!(is_banger_guest(guest));
        let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!is_banger_guest(&host), "this test host is not a guest");
        assert!(apply(&identity())
            .unwrap_err()
            .contains("not a banger guest"));
    }

    #[test]
    fn finds_where_a_disk_is_mounted() {
        let mountinfo = "22 1 0:21 / / rw - overlay overlay rw\n\
                         30 22 254:32 / /root rw,noatime - ext4 /dev/vdc rw\n";
        assert_eq!(mount_of(mountinfo, "254:32").as_deref(), Some("/root"));
        assert_eq!(mount_of(mountinfo, "254:16"), None);
    }

    #[test]
    fn reads_the_label_of_a_real_ext4_image() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.ext4");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let status = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "banger-work"])
            .arg(&image)
            .status()
            .expect("mkfs.ext4 (e2fsprogs) runs");
        assert!(status.success());
        let bytes = std::fs::read(&image).unwrap();
        let superblock: &[u8; 1024] = bytes[1024..2048].try_into().unwrap();
        assert_eq!(ext4_label(superblock).as_deref(), Some("banger-work"));
        assert_eq!(ext4_label(&[0; 1024]), None);
    }
}
