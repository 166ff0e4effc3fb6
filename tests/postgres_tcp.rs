//! PostgreSQL over TCP: the store's connections have Nagle's algorithm off.
//!
//! sqlx 0.9.0 leaves `TCP_NODELAY` unset, which cost ~40 ms per large
//! statement (a delayed ACK) and made TCP 14× slower than the Unix socket.
//! The store sets it after each connect; this checks the sockets themselves.

mod common;

use common::*;
use ips_bridge::store;
use std::os::fd::{BorrowedFd, RawFd};

/// (sockets to 127.0.0.1:5432, of which with TCP_NODELAY) in this process.
fn sockets_to_postgres() -> (usize, usize) {
    let (mut all, mut nodelay) = (0, 0);
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(raw) = e.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        // SAFETY: borrowed for two getsockopt-style calls only; a closed fd fails them.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        let s = socket2::SockRef::from(&fd);
        let Some(peer) = s.peer_addr().ok().and_then(|a| a.as_socket()) else {
            continue;
        };
        if peer.port() == 5432 {
            all += 1;
            if s.tcp_nodelay().unwrap_or(false) {
                nodelay += 1;
            }
        }
    }
    (all, nodelay)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_connection_over_tcp_has_nagle_switched_off() {
    let url = fresh_pg_database().await;
    // The admin connection that made the database is closed by now.
    let s = settings(&url, "http://127.0.0.1:1/fhir", &Names::new(), &[]);
    assert!(s.store.url.contains("127.0.0.1:5432"), "over TCP");
    let st = store::connect(&s.store).await.unwrap();
    st.migrate().await.unwrap();
    // Several connections at once, so the pool opens more than one.
    let reads: Vec<_> = (0..4)
        .map(|_| {
            let st = st.clone();
            tokio::spawn(async move { st.outbox_counts().await })
        })
        .collect();
    for r in reads {
        r.await.unwrap().unwrap();
    }
    let (all, nodelay) = sockets_to_postgres();
    assert!(
        all >= 1,
        "the store holds connections to PostgreSQL over TCP"
    );
    assert_eq!(nodelay, all, "{nodelay} of {all} sockets have TCP_NODELAY");
}
