//! The real `banger-agent` binary on a Unix socket, asked over HTTP the way
//! the host asks it over vsock: health, listening ports with their owner,
//! stats, and exec with stdin, stdout, stderr, exit codes and errors.

mod common;

use std::path::Path;

use banger_api::agent::{ExecFrame, ExecRequest, GuestStats, Health, Listener, EXEC_HEADER};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

use common::Agent;

async fn call(
    socket: &Path,
    method: &str,
    path: &str,
    header: Option<String>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "agent");
    if let Some(h) = header {
        request = request.header(EXEC_HEADER, h);
    }
    let response = sender
        .send_request(
            request
                .body(Full::new(Bytes::copy_from_slice(body)))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

async fn get<T: serde::de::DeserializeOwned>(agent: &Agent, path: &str) -> T {
    let (status, body) = call(&agent.socket, "GET", path, None, b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Runs a command through the agent: (stdout, stderr, errors, exit code).
async fn exec(
    agent: &Agent,
    request: ExecRequest,
    stdin: &[u8],
) -> (String, String, Vec<String>, i32) {
    let header = serde_json::to_string(&request).unwrap();
    let (status, body) = call(&agent.socket, "POST", "/v1/exec", Some(header), stdin).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (mut out, mut err, mut errors, mut code) = (Vec::new(), Vec::new(), Vec::new(), None);
    let b64 = base64::engine::general_purpose::STANDARD;
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        assert!(code.is_none(), "nothing may follow the exit frame");
        match serde_json::from_slice::<ExecFrame>(line).unwrap() {
            ExecFrame::Stdout { data } => out.extend(b64.decode(data).unwrap()),
            ExecFrame::Stderr { data } => err.extend(b64.decode(data).unwrap()),
            ExecFrame::Error { message } => errors.push(message),
            ExecFrame::Exit { code: c } => code = Some(c),
        }
    }
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
        errors,
        code.expect("an exit frame ends every answer"),
    )
}

fn argv(args: &[&str]) -> ExecRequest {
    ExecRequest {
        argv: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn health_ports_and_stats() {
    let agent = Agent::start();
    let health: Health = get(&agent, "/v1/health").await;
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
    assert!(health.uptime_secs > 0.0);
    assert_eq!(health.boot_id.len(), 36, "{}", health.boot_id);

    // A TCP listener and a bound UDP socket of this test process.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ports: Vec<Listener> = get(&agent, "/v1/ports").await;
    let me = std::process::id();
    let tcp_port = tcp.local_addr().unwrap().port();
    let found = ports
        .iter()
        .find(|l| l.port == tcp_port && l.protocol == "tcp")
        .unwrap_or_else(|| panic!("{tcp_port} missing from {ports:?}"));
    assert_eq!(found.address, "127.0.0.1");
    assert_eq!(found.pid, Some(me));
    assert!(
        found.command.as_deref().unwrap().contains("agent"),
        "{found:?}"
    );
    let udp_port = udp.local_addr().unwrap().port();
    assert!(ports
        .iter()
        .any(|l| l.port == udp_port && l.protocol == "udp" && l.pid == Some(me)));

    let stats: GuestStats = get(&agent, "/v1/stats").await;
    assert!(stats.memory_total_bytes > stats.memory_available_bytes);
    let root = stats.disks.iter().find(|d| d.path == "/").unwrap();
    assert!(root.total_bytes >= root.used_bytes && root.used_bytes > 0);
}

#[tokio::test]
async fn exec_streams_output_and_returns_the_exit_code() {
    let agent = Agent::start();
    let (out, err, errors, code) = exec(
        &agent,
        argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
        b"",
    )
    .await;
    assert_eq!((out.as_str(), err.as_str(), code), ("out\n", "err\n", 3));
    assert!(errors.is_empty());

    // stdin goes through, byte for byte.
    let (out, _, _, code) = exec(&agent, argv(&["cat"]), b"line one\nline two\n").await;
    assert_eq!((out.as_str(), code), ("line one\nline two\n", 0));

    // Arguments are passed as they are: no shell in between.
    let (out, _, _, _) = exec(&agent, argv(&["printf", "%s|", "a b", "$HOME", "*"]), b"").await;
    assert_eq!(out, "a b|$HOME|*|");

    let mut request = argv(&["sh", "-c", "echo $GREETING; pwd"]);
    request.env = vec![("GREETING".into(), "hello".into())];
    request.cwd = Some("/tmp".into());
    let (out, _, _, _) = exec(&agent, request, b"").await;
    assert_eq!(out, "hello\n/tmp\n");

    // Killed by a signal: 128 + signal, like a shell reports it.
    let (_, _, _, code) = exec(&agent, argv(&["sh", "-c", "kill -KILL $$"]), b"").await;
    assert_eq!(code, 137);

    // Output larger than one pipe buffer arrives whole.
    let (out, _, _, code) = exec(&agent, argv(&["head", "-c", "300000", "/dev/zero"]), b"").await;
    assert_eq!((out.len(), code), (300_000, 0));
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let agent = Agent::start();
    let (_, _, errors, code) = exec(&agent, argv(&["no-such-program-xyz"]), b"").await;
    assert_eq!(code, 127);
    assert!(errors[0].contains("no-such-program-xyz"), "{errors:?}");
    let mut request = argv(&["pwd"]);
    request.cwd = Some("/no/such/dir".into());
    let (_, _, errors, code) = exec(&agent, request, b"").await;
    assert_ne!(code, 0);
    assert!(!errors.is_empty());

    for (header, expected) in [
        (None, "missing"),
        (Some("{not json".to_string()), "bad x-banger-exec"),
        (Some(r#"{"argv":[]}"#.to_string()), "argv is empty"),
    ] {
        let (status, body) = call(&agent.socket, "POST", "/v1/exec", header, b"").await;
        assert_eq!(status, 400);
        assert!(
            String::from_utf8_lossy(&body).contains(expected),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, _) = call(&agent.socket, "GET", "/v2/health", None, b"").await;
    assert_eq!(status, 404, "unknown versions are not answered");
}

/// Starts an exec whose answer the test reads (or not) itself.
async fn start_exec(
    agent: &Agent,
    args: &[&str],
) -> (
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
    hyper::Response<hyper::body::Incoming>,
) {
    let header = serde_json::to_string(&argv(args)).unwrap();
    let stream = tokio::net::UnixStream::connect(&agent.socket)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(conn);
    let response = sender
        .send_request(
            Request::builder()
                .method("POST")
                .uri("/v1/exec")
                .header("host", "agent")
                .header(EXEC_HEADER, header)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    (sender, connection, response)
}

/// Whether a process whose command line contains `needle` runs.
fn running(needle: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(needle)
            })
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn a_command_dies_when_the_host_goes_away_even_if_it_is_silent() {
    let agent = Agent::start();
    let marker = "31.4159";
    let (sender, connection, response) = start_exec(&agent, &["sleep", marker]).await;
    assert_eq!(response.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !running(&format!("sleep {marker}")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The host goes away (Ctrl-C on `vm exec`): the connection closes.
    drop(response);
    drop(sender);
    connection.abort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while running(&format!("sleep {marker}")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the command outlived the connection"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_host_can_end_a_command_and_what_it_started() {
    let agent = Agent::start();
    let (_sender, _connection, response) =
        start_exec(&agent, &["sh", "-c", "sleep 27.1828 & yes"]).await;
    let group: u32 = response.headers()[banger_api::agent::EXEC_PID_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The output is never read (as when the host's reader is blocked).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !running("sleep 27.1828") {
        assert!(std::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, _) = call(
        &agent.socket,
        "POST",
        &format!("/v1/exec/{group}/kill"),
        None,
        b"",
    )
    .await;
    assert_eq!(status, 204);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while running("sleep 27.1828") {
        assert!(
            std::time::Instant::now() < deadline,
            "the group outlived the kill"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The answer ends (its task is not left stuck on unread output).
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        response.into_body().collect(),
    )
    .await
    .expect("the answer ended after the kill")
    .unwrap();
    // Only the agent's own commands can be killed.
    let (status, body) = call(&agent.socket, "POST", "/v1/exec/1/kill", None, b"").await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
}
