//! `vm ports`' web detection against real servers on loopback: Python's
//! http.server as is and behind TLS with a self-signed certificate (made
//! by openssl), a server that speaks first (like sshd) and one that never
//! answers.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use banger_host::probe::web_protocol;

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;
const TIMEOUT: Duration = Duration::from_millis(800);

const SERVER: &str = r#"
import http.server, ssl, sys
server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
if len(sys.argv) > 1:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A Python web server (TLS when given a certificate); killed on drop.
struct Web(Child, u16);

impl Web {
    fn start(tls: &[&std::path::Path]) -> Web {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SERVER)
            .args(tls)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server's port");
        Web(child, port)
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn plain_and_self_signed_web_servers_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=guest.vm", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(out.status.success(), "{out:?}");

    let plain = Web::start(&[]);
    assert_eq!(web_protocol(LOCAL, plain.1, TIMEOUT).await, Some("http"));
    let tls = Web::start(&[&cert, &key]);
    assert_eq!(
        web_protocol(LOCAL, tls.1, TIMEOUT).await,
        Some("https"),
        "a self-signed certificate is fine for detection"
    );
}

#[tokio::test]
async fn a_redirect_is_an_answer_and_is_not_followed() {
    // Where the redirect points: it must never be asked.
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    let elsewhere_port = elsewhere.local_addr().unwrap().port();
    elsewhere.set_nonblocking(true).unwrap();
    let redirect = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = redirect.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in redirect.incoming().flatten() {
            let mut stream = stream;
            let mut request = [0u8; 1024];
            let _ = std::io::Read::read(&mut stream, &mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:{elsewhere_port}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    assert_eq!(web_protocol(LOCAL, port, TIMEOUT).await, Some("http"));
    assert!(
        elsewhere.accept().is_err(),
        "the probe followed the redirect"
    );
}

#[tokio::test]
async fn servers_that_are_not_web_servers_are_not_links() {
    // Speaks first, like sshd, and closes on garbage.
    let ssh = TcpListener::bind("127.0.0.1:0").unwrap();
    let ssh_port = ssh.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in ssh.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
        }
    });
    assert_eq!(web_protocol(LOCAL, ssh_port, TIMEOUT).await, None);

    // Accepts and never says anything: bounded by the timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = std::time::Instant::now();
    assert_eq!(web_protocol(LOCAL, silent_port, TIMEOUT).await, None);
    assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
}
