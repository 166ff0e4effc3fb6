//! The container image's HEALTHCHECK: `GET /healthz` on the daemon's own
//! listener; exit 0 on HTTP 200, 1 on anything else (refused, timed out,
//! another status).
//!
//! Why a program of its own: the runtime image is distroless (no shell, no
//! curl, no wget) and `ips-bridge` has no probe subcommand. This file uses
//! the standard library only, so the Containerfile compiles it with a bare
//! `rustc` in the builder stage: no Cargo.toml, no crates, no lock file.
//! Kubernetes never runs it (its probes are `httpGet` in the Deployment);
//! Docker does, and Podman/Buildah when the image is built with
//! `--format docker` (the OCI image format has no HEALTHCHECK).
//!
//! Address: the first argument if given, else `IPS__HTTP__LISTEN` (the
//! image sets 0.0.0.0:8080), else 127.0.0.1:8080. An unspecified address
//! (0.0.0.0, [::]) is probed on loopback.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

fn target() -> Result<SocketAddr, String> {
    let given = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("IPS__HTTP__LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let mut addr: SocketAddr = given
        .parse()
        .map_err(|e| format!("{given:?} is not an IP address and port: {e}"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(addr)
}

fn probe(addr: SocketAddr) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send to {addr}: {e}"))?;
    // The status line is all that is needed: "HTTP/1.x 200 ...".
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
        if head[..len].contains(&b'\n') {
            break;
        }
    }
    let line = String::from_utf8_lossy(&head[..len]);
    let line = line.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(v), Some("200")) if v.starts_with("HTTP/1.") => Ok(()),
        _ => Err(format!("GET http://{addr}/healthz answered {line:?}")),
    }
}

fn main() -> ExitCode {
    match target().and_then(probe) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}
