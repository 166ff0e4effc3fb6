//! `TCP_NODELAY` on the PostgreSQL connections sqlx opens.
//!
//! sqlx 0.9.0 connects over TCP without `TCP_NODELAY` (sqlx issue 4335; fixed
//! upstream after that release, and 0.9.0 is the newest on crates.io). With
//! Nagle's algorithm on, a statement written in more than one segment waits
//! for the server's delayed ACK: about 40 ms per large statement, which made
//! PostgreSQL over TCP 14 times slower than over its Unix socket. sqlx gives
//! no hook on the socket itself, so right after each connection is made
//! (`after_connect`) we find this process's TCP sockets to the server's port
//! and switch Nagle off on those that still have it.
//!
//! Remove this module when a sqlx release sets the option itself (the
//! `postgres_tcp` test then still holds, and says so if it ever stops).

use std::net::SocketAddr;

/// Sets `TCP_NODELAY` on every TCP socket of this process whose peer is
/// `port` (on any of `hosts`, or any host when `hosts` is empty) and that
/// does not have it yet. Returns how many it changed. Best effort: a socket
/// closed meanwhile, or a platform without `/proc/self/fd`, changes nothing.
#[cfg(target_os = "linux")]
pub(super) fn set_on_sockets_to(port: u16, hosts: &[std::net::IpAddr]) -> usize {
    use std::os::fd::{BorrowedFd, RawFd};
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let mut changed = 0;
    for entry in dir.flatten() {
        let Some(raw) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only borrowed for the two socket calls
        // below and never closed here. If another thread closes it (or the
        // number is reused) in between, the calls fail with EBADF/ENOTSOCK
        // or touch a socket whose peer we check first: no memory is involved.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        let sock = socket2::SockRef::from(&fd);
        let Some(peer) = sock.peer_addr().ok().and_then(|a| a.as_socket()) else {
            continue;
        };
        if !is_server(peer, port, hosts) {
            continue;
        }
        if matches!(sock.tcp_nodelay(), Ok(false)) && sock.set_tcp_nodelay(true).is_ok() {
            changed += 1;
        }
    }
    changed
}

#[cfg(not(target_os = "linux"))]
pub(super) fn set_on_sockets_to(_port: u16, _hosts: &[std::net::IpAddr]) -> usize {
    0
}

fn is_server(peer: SocketAddr, port: u16, hosts: &[std::net::IpAddr]) -> bool {
    peer.port() == port && (hosts.is_empty() || hosts.contains(&peer.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_the_server_by_port_and_by_address_when_known() {
        let a: SocketAddr = "10.0.0.5:5432".parse().unwrap();
        assert!(is_server(a, 5432, &[]));
        assert!(is_server(a, 5432, &["10.0.0.5".parse().unwrap()]));
        assert!(!is_server(a, 5432, &["10.0.0.6".parse().unwrap()]));
        assert!(!is_server(a, 5433, &[]));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn nagle_is_switched_off_on_a_socket_to_the_port_and_left_alone_elsewhere() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let to_server = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let to_other = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        assert!(!to_server.nodelay().unwrap(), "Nagle is on by default");
        let changed = set_on_sockets_to(port, &["127.0.0.1".parse().unwrap()]);
        assert!(changed >= 1, "changed {changed}");
        assert!(to_server.nodelay().unwrap());
        assert!(
            !to_other.nodelay().unwrap(),
            "a socket to another port is untouched"
        );
    }
}
