//! MESH's `NHSMESH` authorisation header.
//!
//! `NHSMESH {mailbox}:{nonce}:{nonce_count}:{timestamp}:{hmac}` where the
//! timestamp is UTC `yyyyMMddHHmm` and the HMAC is hex HMAC-SHA256, keyed
//! with the environment's shared key, over
//! `{mailbox}:{nonce}:{nonce_count}:{password}:{timestamp}`. A fresh nonce
//! per request (count 0) means no nonce bookkeeping: MESH refuses a nonce
//! and count it has seen, and a process restart would otherwise reuse them.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

/// The header for one request made at `now` with `nonce`.
pub fn header(
    mailbox: &str,
    password: &str,
    shared_key: &str,
    nonce: &str,
    now: OffsetDateTime,
) -> String {
    let now = now.to_offset(time::UtcOffset::UTC);
    let ts = format!(
        "{:04}{:02}{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute()
    );
    let count = 0;
    let signed = format!("{mailbox}:{nonce}:{count}:{password}:{ts}");
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(shared_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(signed.as_bytes());
    let digest = hex::encode(mac.finalize().into_bytes());
    format!("NHSMESH {mailbox}:{nonce}:{count}:{ts}:{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn header_has_the_published_shape_and_signs_every_part() {
        let at = datetime!(2026-12-01 09:05:59 +01:00);
        let h = header("X26ABC1", "password", "TestKey", "n-1", at);
        let parts: Vec<&str> = h.trim_start_matches("NHSMESH ").split(':').collect();
        assert!(h.starts_with("NHSMESH "));
        assert_eq!(&parts[..4], &["X26ABC1", "n-1", "0", "202612010805"]);
        assert_eq!(parts[4].len(), 64);
        // The same inputs sign the same; any one changed signs differently.
        assert_eq!(h, header("X26ABC1", "password", "TestKey", "n-1", at));
        for other in [
            header("X26ABC2", "password", "TestKey", "n-1", at),
            header("X26ABC1", "passwore", "TestKey", "n-1", at),
            header("X26ABC1", "password", "TestKez", "n-1", at),
            header("X26ABC1", "password", "TestKey", "n-2", at),
        ] {
            assert_ne!(other.rsplit(':').next(), h.rsplit(':').next());
        }
    }

    #[test]
    fn hmac_matches_an_independent_computation() {
        // HMAC-SHA256("TestKey", "X26ABC1:n-1:0:password:202612010805"), by
        // Python's hmac module.
        let h = header(
            "X26ABC1",
            "password",
            "TestKey",
            "n-1",
            datetime!(2026-12-01 08:05 UTC),
        );
        assert_eq!(h.rsplit(':').next(), Some(EXPECTED));
    }

    const EXPECTED: &str = "bc328e5d75627f77dddc65081d56c441d8460c342a7170fa9a26653de811a61b";
}
