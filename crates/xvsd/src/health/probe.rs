//! One health check, run to completion on the calling thread within its timeout: TCP connect,
//! HTTP/HTTPS GET (status, MD5 digest or substring of the body), UDP request/response, or an
//! external command. Check traffic goes through the host stack from the director.

use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xvs_control::check::{CheckConfig, CheckKind};

/// Most bytes of an HTTP answer read.
const MAX_BODY: usize = 1 << 20;

/// Runs `check` against the real server `addr:port`; a short description of the result, as
/// `Ok` when healthy and `Err` when not.
pub fn run(check: &CheckConfig, addr: IpAddr, port: u16) -> Result<String, String> {
    let port = check.port.unwrap_or(port);
    let timeout = Duration::from_secs_f64(check.timeout);
    let deadline = Instant::now() + timeout;
    if port == 0 && check.kind != CheckKind::Misc {
        return Err("no port to check (a firewall-mark real server needs check.port)".into());
    }
    let target = SocketAddr::new(addr, port);
    match check.kind {
        CheckKind::Tcp => TcpStream::connect_timeout(&target, timeout)
            .map(|_| "connected".to_string())
            .map_err(|e| describe(&e)),
        CheckKind::Http => {
            let mut s = TcpStream::connect_timeout(&target, timeout).map_err(|e| describe(&e))?;
            remaining(&s, deadline)?;
            http(&mut s, check, addr, deadline)
        }
        CheckKind::Https => {
            let mut tcp = TcpStream::connect_timeout(&target, timeout).map_err(|e| describe(&e))?;
            let name = match &check.host {
                Some(h) => rustls::pki_types::ServerName::try_from(h.clone())
                    .map_err(|e| format!("bad host name {h}: {e}"))?,
                None => rustls::pki_types::ServerName::IpAddress(addr.into()),
            };
            let mut conn = rustls::ClientConnection::new(tls_config()?, name)
                .map_err(|e| format!("TLS: {e}"))?;
            remaining(&tcp, deadline)?;
            let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
            http(&mut tls, check, addr, deadline)
        }
        CheckKind::Udp => udp(check, target, deadline),
        CheckKind::Misc => misc(check, addr, port, deadline),
    }
}

fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out".into(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        std::io::ErrorKind::HostUnreachable => "no route to host".into(),
        std::io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => e.to_string(),
    }
}

/// Sets the socket timeouts to what is left before `deadline`.
fn remaining(s: &TcpStream, deadline: Instant) -> Result<(), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("timed out".into());
    }
    s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(left)).map_err(|e| e.to_string())
}

fn http(
    s: &mut (impl Read + Write + ?Sized),
    check: &CheckConfig,
    addr: IpAddr,
    deadline: Instant,
) -> Result<String, String> {
    let host = match (&check.host, addr) {
        (Some(h), _) => h.clone(),
        (None, IpAddr::V4(a)) => a.to_string(),
        (None, IpAddr::V6(a)) => format!("[{a}]"),
    };
    let path = check.path.as_deref().unwrap_or("/");
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: xvs-healthcheck\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| describe(&e))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if Instant::now() >= deadline {
            return Err("timed out reading the answer".into());
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_BODY {
                    break;
                }
            }
            // A TLS peer that closes without close_notify: what came is the answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(describe(&e)),
        }
    }
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP answer")?;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let body = &buf[head_end + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP status line: {}",
                head.lines().next().unwrap_or("")
            )
        })?;
    if !check.statuses().contains(&status) {
        return Err(format!("HTTP status {status}"));
    }
    if let Some(want) = &check.digest {
        let got: String = Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !got.eq_ignore_ascii_case(want) {
            return Err(format!("HTTP {status}, body digest {got}"));
        }
    }
    if let Some(want) = &check.expect {
        if !contains(body, want.as_bytes()) {
            return Err(format!("HTTP {status}, body lacks '{want}'"));
        }
    }
    Ok(format!("HTTP {status}"))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn udp(check: &CheckConfig, target: SocketAddr, deadline: Instant) -> Result<String, String> {
    let local: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| "address")?
    } else {
        "[::]:0".parse().map_err(|_| "address")?
    };
    let s = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    s.connect(target).map_err(|e| describe(&e))?;
    let payload = check.send.as_deref().unwrap_or("xvs-healthcheck");
    s.send(payload.as_bytes()).map_err(|e| describe(&e))?;
    let left = deadline.saturating_duration_since(Instant::now());
    s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 2048];
    let n = s.recv(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "port unreachable".to_string(),
        _ => describe(&e),
    })?;
    match &check.expect {
        Some(want) if !contains(&buf[..n], want.as_bytes()) => {
            Err(format!("answer lacks '{want}'"))
        }
        _ => Ok(format!("{n}-byte answer")),
    }
}

fn misc(check: &CheckConfig, addr: IpAddr, port: u16, deadline: Instant) -> Result<String, String> {
    let cmd = check.command.as_deref().unwrap_or("false");
    // In a process group of its own: a command that hangs is killed with everything it
    // started (a shell's children would otherwise outlive it, one more each interval).
    let mut child = Command::new("sh")
        .process_group(0)
        .args(["-c", cmd])
        .env("XVS_REAL_ADDR", addr.to_string())
        .env("XVS_REAL_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok("exit 0".into()),
            Ok(Some(st)) => {
                return Err(match st.code() {
                    Some(c) => format!("exit {c}"),
                    None => "killed by a signal".into(),
                });
            }
            Ok(None) if Instant::now() >= deadline => {
                if let Err(e) = xvs_io::sched::kill_group(child.id()) {
                    tracing::warn!(command = cmd, error = %e, "cannot kill a check that timed out");
                    let _ = child.kill();
                }
                let _ = child.wait();
                return Err("timed out (killed)".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Accepts any server certificate (keepalived's SSL_GET does not verify either), but still
/// checks the handshake's signatures with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .map(|b| {
                    Arc::new(
                        b.dangerous()
                            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                            .with_no_client_auth(),
                    )
                })
                .map_err(|e| format!("TLS: {e}"))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn check(y: &str) -> CheckConfig {
        serde_yaml_ng::from_str(y).unwrap()
    }

    /// A one-shot HTTP server on 127.0.0.1 answering `answer`.
    fn http_server(answer: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b);
                let _ = s.write_all(answer.as_bytes());
            }
        });
        port
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn http_status_digest_and_substring() {
        let ok = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let p = http_server(ok);
        assert_eq!(
            run(&check("{ type: http, path: / }"), LOCAL, p),
            Ok("HTTP 200".into())
        );
        let p = http_server(ok);
        // md5("ok") = 444bcb3a3fcf8389296c49467f27e1d6
        let c = check("{ type: http, path: /, digest: 444bcb3a3fcf8389296c49467f27e1d6 }");
        assert_eq!(run(&c, LOCAL, p), Ok("HTTP 200".into()));
        let p = http_server(ok);
        let c = check("{ type: http, path: /, digest: 00000000000000000000000000000000 }");
        assert!(run(&c, LOCAL, p).unwrap_err().contains("digest 444bcb3a"));
        let p = http_server(ok);
        let c = check("{ type: http, path: /, expect: nope }");
        assert_eq!(run(&c, LOCAL, p), Err("HTTP 200, body lacks 'nope'".into()));
        let p = http_server("HTTP/1.1 503 Unavailable\r\n\r\n");
        assert_eq!(
            run(&check("{ type: http, path: / }"), LOCAL, p),
            Err("HTTP status 503".into())
        );
        let p = http_server("HTTP/1.1 503 Unavailable\r\n\r\n");
        assert!(run(&check("{ type: http, path: /, status: [503] }"), LOCAL, p).is_ok());
    }

    #[test]
    fn tcp_refused_and_timeouts() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        assert_eq!(
            run(&check("{ type: tcp }"), LOCAL, p),
            Ok("connected".into())
        );
        drop(l);
        assert_eq!(
            run(&check("{ type: tcp }"), LOCAL, p),
            Err("connection refused".into())
        );
        // A server that accepts and never answers: the HTTP check times out on time.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        let t = Instant::now();
        let r = run(&check("{ type: http, path: /, timeout: 0.3 }"), LOCAL, p);
        assert!(r.unwrap_err().contains("timed out"));
        assert!(t.elapsed() < Duration::from_secs(2));
        drop(l);
    }

    #[test]
    fn udp_answer_and_unreachable() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut b = [0u8; 64];
            if let Ok((n, a)) = s.recv_from(&mut b) {
                let mut out = b"pong:".to_vec();
                out.extend_from_slice(&b[..n]);
                let _ = s.send_to(&out, a);
            }
        });
        let c = check("{ type: udp, send: ping, expect: 'pong:ping' }");
        assert_eq!(run(&c, LOCAL, p), Ok("9-byte answer".into()));
        let free = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(
            run(&check("{ type: udp }"), LOCAL, free),
            Err("port unreachable".into())
        );
    }

    #[test]
    fn misc_exit_status_and_timeout() {
        assert_eq!(
            run(
                &check("{ type: misc, command: 'test $XVS_REAL_PORT = 80' }"),
                LOCAL,
                80
            ),
            Ok("exit 0".into())
        );
        assert_eq!(
            run(&check("{ type: misc, command: 'exit 3' }"), LOCAL, 80),
            Err("exit 3".into())
        );
        let t = Instant::now();
        assert_eq!(
            run(
                &check("{ type: misc, command: 'sleep 5', timeout: 0.2 }"),
                LOCAL,
                80
            ),
            Err("timed out (killed)".into())
        );
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_hanging_check_is_killed_with_what_it_started() {
        // The shell forks `sleep` (a second command follows it), so killing the shell alone
        // would leave the sleep running after every timed-out check.
        let marker = format!("sleep 3{}.5", std::process::id() % 1000);
        let cmd = format!("{{ type: misc, command: '{marker}; true', timeout: 0.3 }}");
        assert_eq!(
            run(&check(&cmd), LOCAL, 80),
            Err("timed out (killed)".into())
        );
        std::thread::sleep(Duration::from_millis(100));
        let left = Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .expect("pgrep");
        assert!(
            left.stdout.is_empty(),
            "left running: {}",
            String::from_utf8_lossy(&left.stdout)
        );
    }
}
