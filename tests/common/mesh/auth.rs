//! The `NHSMESH` authorisation header, computed the way the sandbox checks it
//! (written here from the sandbox's behaviour, not with the bridge's code).

use super::*;

/// `NHSMESH {mailbox}:{nonce}:{count}:{timestamp}:{hmac}` with a fresh nonce, count 1
/// and the current UTC time as `yyyyMMddHHmm`. See [`auth_header_with`].
pub fn auth_header(mailbox: &str, password: &str, shared_key: &str) -> String {
    let ts = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day][hour][minute]"
        ))
        .expect("format the MESH timestamp");
    let nonce = uuid::Uuid::new_v4().to_string();
    auth_header_with(mailbox, password, shared_key, &nonce, 1, &ts)
}

/// The header with every part given, for comparing with the bridge's own.
///
/// `hmac` is lower-case hex of HMAC-SHA256 keyed with the shared key over
/// `{mailbox}:{nonce}:{count}:{password}:{timestamp}` — the order the sandbox's
/// `generate_cipher_text` uses (password between count and timestamp, unlike the
/// header). With `AUTH_MODE=full` the sandbox checks only that: five `:` parts, a
/// numeric count, the mailbox equal to the one in the path (case-sensitive in the
/// header), and the HMAC (hex compared case-insensitively). Neither the timestamp's
/// age nor nonce reuse is checked, and there is no client certificate; real MESH
/// checks more.
pub fn auth_header_with(
    mailbox: &str,
    password: &str,
    shared_key: &str,
    nonce: &str,
    count: u32,
    timestamp: &str,
) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(shared_key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{mailbox}:{nonce}:{count}:{password}:{timestamp}").as_bytes());
    let digest = hex::encode(mac.finalize().into_bytes());
    format!("NHSMESH {mailbox}:{nonce}:{count}:{timestamp}:{digest}")
}
