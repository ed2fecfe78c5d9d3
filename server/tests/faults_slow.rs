//! Slow and hostile clients against the real `simtrack server` binary:
//! slowloris (1,100 half-sent requests with the open-file limit of a small
//! service), an idle kept-alive connection, stalled request bodies (JSON and
//! an artifact upload), and SIGTERM while connections are stalled (a request
//! in flight is still answered, the server exits within its deadline and a
//! new one starts on the same data).
//!
//! Timeouts are set through the `SIMTRACK_*` environment variables, which a
//! server without them ignores: run against such a server, each test fails
//! on the behaviour (a hang, a starved client), not on a flag it does not
//! know.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Api, Server, token};

/// Starts the server with extra environment, optionally under
/// `ulimit -n NOFILE` (soft and hard), on a free loopback port.
fn start(data: &Path, env: &[(&str, &str)], nofile: Option<u32>) -> Server {
    use std::io::BufRead;
    let t0 = Instant::now();
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(common::bin());
            c
        }
        None => Command::new(common::bin()),
    };
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("start simtrack server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the announcement");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    Server {
        child,
        url,
        data: data.to_path_buf(),
        startup: t0.elapsed(),
    }
}

/// Opens a connection and sends `bytes` (then nothing more).
fn half_send(addr: &str, bytes: &[u8]) -> TcpStream {
    let sa: std::net::SocketAddr = addr.parse().expect("address");
    let mut s = TcpStream::connect_timeout(&sa, Duration::from_secs(5)).unwrap_or_else(|e| {
        panic!("cannot connect within 5 s (the server stopped accepting): {e}")
    });
    s.write_all(bytes).expect("send");
    s
}

/// Whether the server closed `s` (EOF or reset), waiting at most `wait`.
/// Any response bytes read on the way are returned.
fn closed_within(s: &mut TcpStream, wait: Duration) -> (bool, String) {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (false, String::from_utf8_lossy(&got).into_owned());
        }
        s.set_read_timeout(Some(left.min(Duration::from_millis(500))))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => return (true, String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (true, String::from_utf8_lossy(&got).into_owned()),
        }
    }
}

/// Whether the server has closed `s` (EOF or reset), without waiting.
fn closed_now(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 4096];
    let mut r = s;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// A client that opens a new connection per request.
fn fresh_client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

#[test]
fn slowloris_half_sent_requests_neither_starve_clients_nor_stay_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    // The open-file limit of a small service: 1,100 connections exceed it.
    let server = start(&data, &[("SIMTRACK_HEADER_TIMEOUT_SECS", "3")], Some(512));
    let addr = server.addr();
    let url = format!("{}/api/version", server.url);

    // A normal client keeps asking while the attack runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, url, tok) = (stop.clone(), url.clone(), tok.clone());
        std::thread::spawn(move || {
            let http = fresh_client(Duration::from_secs(10));
            let mut worst = Duration::ZERO;
            let mut answered = 0;
            let mut failures = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                match http.get(&url).bearer_auth(&tok).send() {
                    Ok(r) if r.status() == 200 => answered += 1,
                    Ok(r) => failures.push(format!("status {}", r.status())),
                    Err(e) => failures.push(format!("{e}")),
                }
                worst = worst.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(100));
            }
            (answered, worst, failures)
        })
    };

    let t0 = Instant::now();
    let attackers: Vec<TcpStream> = (0..1_100)
        .map(|i| {
            half_send(
                &addr,
                format!("GET /api/version?{i} HTTP/1.1\r\nHost: x\r\nX-Slow: ").as_bytes(),
            )
        })
        .collect();
    let opened = t0.elapsed();
    // Every half-sent request is dropped, at the latest by the header timeout.
    std::thread::sleep(Duration::from_secs(5));
    let open = attackers.iter().filter(|s| !closed_now(s)).count();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (answered, worst, failures) = watcher.join().expect("watcher");
    eprintln!(
        "slowloris: 1100 half-sent requests opened in {opened:?}; still open after the header timeout: {open}; \
         normal client: {answered} answered, worst latency {worst:?}, failures {failures:?}"
    );
    assert!(
        failures.is_empty(),
        "the normal client was refused: {failures:?}"
    );
    assert!(
        answered >= 20,
        "the normal client got only {answered} answers"
    );
    assert!(
        worst < Duration::from_secs(3),
        "a normal request took {worst:?}"
    );
    assert_eq!(
        open, 0,
        "half-sent requests still open after the header timeout"
    );
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = start(&data, &[("SIMTRACK_IDLE_TIMEOUT_SECS", "1")], None);
    let mut s = half_send(&server.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let t = Instant::now();
    let (closed, got) = closed_within(&mut s, Duration::from_secs(6));
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(closed, "an idle kept-alive connection stayed open for 6 s");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        t.elapsed()
    );
}

#[test]
fn stalled_request_bodies_are_cut_with_408() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = start(&data, &[("SIMTRACK_BODY_TIMEOUT_SECS", "2")], None);
    let api = Api::new(&server, &tok);
    // A JSON body that stops half-way.
    let mut s = half_send(
        &server.addr(),
        format!(
            "POST /api/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\": \"sta"
        )
        .as_bytes(),
    );
    // An artifact upload that stops half-way.
    let body = vec![b'x'; 100_000];
    let sum = {
        use sha2::Digest;
        simtrack_server::util::hex(&sha2::Sha256::digest(&body))
    };
    let reg = api.json(
        "POST",
        "/api/artifacts",
        &serde_json::json!({"name": "big.bin", "size": body.len(), "checksum": sum, "mime_type": "application/octet-stream"}),
    );
    assert_eq!(reg.status, 200, "{}", reg.text);
    let up = reg.json()["url"].as_str().expect("upload url").to_owned();
    let path = up.splitn(4, '/').nth(3).expect("path");
    let mut u = half_send(
        &server.addr(),
        format!(
            "PUT /{path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    u.write_all(&body[..40_000]).expect("first part");
    let t = Instant::now();
    for (what, sock) in [("json body", &mut s), ("upload", &mut u)] {
        let (closed, got) = closed_within(sock, Duration::from_secs(8));
        assert!(
            got.starts_with("HTTP/1.1 408"),
            "{what}: expected 408 within 8 s, got {got:?}"
        );
        assert!(closed, "{what}: connection left open after the 408");
    }
    assert!(
        t.elapsed() < Duration::from_secs(7),
        "took {:?}",
        t.elapsed()
    );
    // Nothing of either was stored; the server still answers.
    assert_eq!(api.ok("/api/runs")["count"], 0);
    let art = api.ok("/api/artifacts");
    assert_eq!(art["data"][0]["uploaded"], false, "{art}");
    let tmp: Vec<_> = std::fs::read_dir(data.join("blobs/tmp"))
        .expect("blobs/tmp")
        .collect();
    assert!(tmp.is_empty(), "partial upload left in blobs/tmp");
}

#[test]
fn sigterm_with_stalled_connections_exits_within_deadline_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let mut server = start(
        &data,
        &[
            ("SIMTRACK_SHUTDOWN_TIMEOUT_SECS", "2"),
            ("SIMTRACK_BODY_TIMEOUT_SECS", "60"),
            ("SIMTRACK_HEADER_TIMEOUT_SECS", "60"),
        ],
        None,
    );
    let api = Api::new(&server, &tok);
    let run = api.create_run(serde_json::json!({"name": "before-sigterm", "folder": "/"}));
    let addr = server.addr();
    let mut stalled = Vec::new();
    for i in 0..20 {
        // Half a header, and a body that never comes.
        stalled.push(half_send(
            &addr,
            format!("GET /api/runs?{i} HTTP/1.1\r\nHost: x\r\n").as_bytes(),
        ));
        stalled.push(half_send(
            &addr,
            format!(
                "POST /api/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\
                 Content-Length: 50\r\n\r\n{{"
            )
            .as_bytes(),
        ));
    }
    // A request in flight when SIGTERM arrives: its body completes 500 ms
    // later, within the deadline, and it is answered and stored.
    let body = r#"{"name": "in-flight", "folder": "/"}"#;
    let (first, rest) = body.split_at(10);
    let mut in_flight = half_send(
        &addr,
        format!(
            "POST /api/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
            body.len()
        )
        .as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let pid = server.child.id().to_string();
    let t = Instant::now();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    std::thread::sleep(Duration::from_millis(500));
    in_flight
        .write_all(rest.as_bytes())
        .expect("rest of the body");
    let (_, answer) = closed_within(&mut in_flight, Duration::from_secs(3));
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "in-flight request: {answer:?}"
    );
    let status = loop {
        if let Ok(Some(s)) = server.child.try_wait() {
            break Some(s);
        }
        if t.elapsed() > Duration::from_secs(15) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = t.elapsed();
    eprintln!("SIGTERM with 40 stalled connections: exited after {took:?} ({status:?})");
    let status = status.expect("the server did not exit within 15 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(5),
        "exit took {took:?} (deadline 2 s)"
    );
    drop(stalled);
    // A new server starts on the same data and has what the first stored.
    let server2 = start(&data, &[], None);
    let api2 = Api::new(&server2, &tok);
    assert_eq!(
        api2.ok(&format!("/api/runs/{run}"))["name"],
        "before-sigterm"
    );
}

#[test]
fn at_the_connection_cap_a_new_client_displaces_the_oldest_half_sent_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = start(&data, &[("SIMTRACK_MAX_CONNECTIONS", "4")], None);
    let addr = server.addr();
    let mut held: Vec<TcpStream> = (0..4)
        .map(|i| {
            let s = half_send(
                &addr,
                format!("GET /?{i} HTTP/1.1\r\nHost: x\r\n").as_bytes(),
            );
            std::thread::sleep(Duration::from_millis(50));
            s
        })
        .collect();
    let t = Instant::now();
    let r = fresh_client(Duration::from_secs(5))
        .get(format!("{}/api/version", server.url))
        .bearer_auth(&tok)
        .send()
        .expect("a new client is served at the cap");
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    // The oldest half-sent request made room, long before its header timeout.
    let (closed, _) = closed_within(&mut held[0], Duration::from_secs(2));
    assert!(closed, "the oldest half-sent request is still open");
    assert!(
        !closed_now(&held[3]),
        "the newest half-sent request was dropped"
    );
}

#[test]
fn a_download_the_client_stops_reading_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let tok = token(&data);
    let server = start(&data, &[("SIMTRACK_BODY_TIMEOUT_SECS", "2")], None);
    let api = Api::new(&server, &tok);
    // Larger than the loopback socket buffers can absorb.
    let body: Vec<u8> = (0..48u32 << 20).map(|i| (i % 251) as u8).collect();
    let sum = {
        use sha2::Digest;
        simtrack_server::util::hex(&sha2::Sha256::digest(&body))
    };
    let reg = api.json(
        "POST",
        "/api/artifacts",
        &serde_json::json!({"name": "big.bin", "size": body.len(), "checksum": sum}),
    );
    assert_eq!(reg.status, 200, "{}", reg.text);
    let v = reg.json();
    let up = api.send(
        "PUT",
        v["url"].as_str().expect("url"),
        &[],
        Some((body, "application/octet-stream")),
    );
    assert_eq!(up.status, 200, "{}", up.text);
    let id = v["id"].as_str().expect("id");
    let url = api.ok(&format!("/api/artifacts/{id}"))["url"]
        .as_str()
        .expect("download url")
        .to_owned();
    let path = url.splitn(4, '/').nth(3).expect("path");
    let mut s = half_send(
        &server.addr(),
        format!("GET /{path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    );
    // Read the first bytes, then stop reading.
    let mut first = [0u8; 1024];
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let n = s.read(&mut first).expect("response starts");
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    std::thread::sleep(Duration::from_secs(6));
    // The server gave up on the stalled response: draining what the socket
    // buffers hold ends in EOF or a reset, not in 48 MiB.
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let ended = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(k) => got += k,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false;
            }
            Err(_) => break true,
        }
    };
    assert!(ended, "the stalled download is still open");
    assert!(
        got < 40 << 20,
        "the whole file arrived ({got} bytes): nothing stalled"
    );
}
