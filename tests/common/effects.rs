//! Counting effects, so that "exactly once" assertions can fail.
//!
//! A count of rows under a primary key (inbox rows by message id, referrals
//! by referral key) cannot exceed one whatever the bridge does, so it proves
//! nothing about duplicates. These helpers count what a duplicate would leave
//! behind instead: audit rows for an action (each applied command writes one),
//! and what the broker still holds. They read the store with plain SQL against
//! the schema rather than through the `Store` trait, so they work for a daemon
//! process as well as for the in-process harness.

use std::time::Duration;

/// Audit rows with this `action` (e.g. `referral.received`): one per applied
/// command, so a message applied twice leaves two.
pub async fn audit_count(store_url: &str, action: &str) -> i64 {
    count(
        store_url,
        "SELECT COUNT(*) FROM audit WHERE action = $1",
        action,
    )
    .await
}

/// Inbox rows recorded for a source; only for waiting until work is committed.
pub async fn inbox_count(store_url: &str, source: &str) -> i64 {
    count(
        store_url,
        "SELECT COUNT(*) FROM inbox WHERE source = $1",
        source,
    )
    .await
}

/// Outbox rows not yet delivered (pending or parked as failed).
pub async fn outbox_undelivered(store_url: &str) -> i64 {
    count(
        store_url,
        "SELECT COUNT(*) FROM outbox WHERE status <> $1",
        "done",
    )
    .await
}

async fn count(store_url: &str, sql: &'static str, arg: &str) -> i64 {
    use sqlx::Connection as _;
    if store_url.starts_with("sqlite:") {
        // A fresh connection per count: the daemon writes the same file, and a
        // long-lived reader would hold a snapshot.
        let mut c = sqlx::SqliteConnection::connect(store_url)
            .await
            .unwrap_or_else(|e| panic!("open the SQLite store: {e}"));
        let sql = sql.replace("$1", "?1");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(arg)
            .fetch_one(&mut c)
            .await
            .unwrap_or_else(|e| panic!("count in the SQLite store: {e}"));
        let _ = c.close().await;
        n
    } else {
        let mut c = sqlx::PgConnection::connect(store_url)
            .await
            .unwrap_or_else(|e| panic!("open the PostgreSQL store: {e}"));
        let n: i64 = sqlx::query_scalar(sql)
            .bind(arg)
            .fetch_one(&mut c)
            .await
            .unwrap_or_else(|e| panic!("count in the PostgreSQL store: {e}"));
        let _ = c.close().await;
        n
    }
}

/// The referrals the API lists in `status`.
pub async fn referrals(api: &super::Api, status: &str) -> Vec<serde_json::Value> {
    let (code, body) = api.get(&format!("/api/referrals?status={status}")).await;
    assert_eq!(code, 200, "{body}");
    body["referrals"].as_array().cloned().unwrap_or_default()
}

/// Decision Tasks for a referral in the FHIR server, found by the business
/// identifier the bridge gives them: two means a write was duplicated.
pub async fn tasks_for(sb: &super::Sandbox, referral_id: &str) -> Vec<serde_json::Value> {
    sb.search_all(&format!("Task?identifier=https://ips-bridge.nhs.example/Id/resource%7Creferral-decision-{referral_id}")).await
}

/// The vhost of an AMQP URL (`%2f` is the default vhost `/`).
pub fn vhost_of(amqp_url: &str) -> String {
    let u = url::Url::parse(amqp_url).unwrap_or_else(|e| panic!("AMQP URL: {e}"));
    let path = u.path().trim_start_matches('/');
    if path.is_empty() {
        return "/".into();
    }
    percent_decode(path)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `rabbitmqctl <args>` and fails the test if it fails.
pub fn rabbitmqctl(args: &[&str]) {
    ctl_output(args);
}

/// Runs `rabbitmqctl <args>`, fails the test if it fails; its standard output.
fn ctl_output(args: &[&str]) -> String {
    let out = std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl (tests/run.sh needs it on PATH)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `rabbitmqctl <args> -p <vhost>` quietly; one `Vec` of columns per row.
fn ctl_rows(amqp_url: &str, args: &[&str]) -> Vec<Vec<String>> {
    let vhost = vhost_of(amqp_url);
    let mut all = vec![args[0], "-q", "--no-table-headers", "-p", &vhost];
    all.extend_from_slice(&args[1..]);
    ctl_output(&all)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn num(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| panic!("rabbitmqctl count {s:?}"))
}

/// `(messages_ready, messages_unacknowledged)` of `queue` as `rabbitmqctl
/// list_queues` reports them. A passive declare only sees the ready count.
/// For quorum queues these figures are refreshed on the queue's tick, so they
/// can lag by seconds: [`settle_queue`] accounts for that.
pub fn queue_counts(amqp_url: &str, queue: &str) -> (u64, u64) {
    let rows = ctl_rows(
        amqp_url,
        &[
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ],
    );
    rows.iter()
        .find_map(|r| match &r[..] {
            [name, ready, unacked] if name == queue => Some((num(ready), num(unacked))),
            _ => None,
        })
        .unwrap_or_else(|| panic!("queue {queue} not listed: {rows:?}"))
}

/// Deliveries from `queue` that its consumers hold unacknowledged, from the
/// consumers' channels, which answer for themselves (no lag).
pub fn consumer_unacked(amqp_url: &str, queue: &str) -> u64 {
    let pids: Vec<String> = ctl_rows(amqp_url, &["list_consumers", "queue_name", "channel_pid"])
        .into_iter()
        .filter_map(|r| match &r[..] {
            [q, pid] if q == queue => Some(pid.clone()),
            _ => None,
        })
        .collect();
    ctl_rows(
        amqp_url,
        &["list_channels", "pid", "messages_unacknowledged"],
    )
    .iter()
    .filter_map(|r| match &r[..] {
        [pid, unacked] if pids.contains(pid) => Some(num(unacked)),
        _ => None,
    })
    .sum()
}

/// Waits until nothing from `queue` is ready or held unacknowledged: every
/// delivery was acked (none left in flight, none requeued). The queue's own
/// figures must read (0, 0) twice, a quorum tick (5 s) apart, and the
/// consumers' channels must hold nothing.
pub async fn settle_queue(amqp_url: &str, queue: &str, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut clear_since: Option<tokio::time::Instant> = None;
    loop {
        let counts = queue_counts(amqp_url, queue);
        let held = consumer_unacked(amqp_url, queue);
        let now = tokio::time::Instant::now();
        if counts == (0, 0) && held == 0 {
            let since = *clear_since.get_or_insert(now);
            if now - since >= Duration::from_millis(5_500) {
                return;
            }
        } else {
            clear_since = None;
        }
        assert!(
            now < deadline + Duration::from_secs(6),
            "{queue}: (ready, unacked) = {counts:?}, held by consumers {held}, want none"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
