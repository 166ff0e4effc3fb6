//! Server-side sessions and sign-ins in progress.
//!
//! The browser holds only a random 256-bit token; everything else stays on
//! the server, so a session can be ended (sign-out, expiry) by deleting it
//! and a stolen cookie stops working at once. The store is keyed by the
//! SHA-256 of the token, not the token itself: a store that is read (a
//! database dump, later) yields no cookie anyone could present.

use super::role::Staff;
use async_trait::async_trait;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use time::OffsetDateTime;

/// A fresh random token: 256 bits from the OS's generator, base64url.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What a store keys a session or sign-in by: the hash of the cookie's token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey(String);

impl TokenKey {
    pub fn of(token: &str) -> TokenKey {
        TokenKey(hex::encode(Sha256::digest(token.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A signed-in session.
#[derive(Clone)]
pub struct Session {
    pub staff: Staff,
    pub expires_at: OffsetDateTime,
    /// The raw ID token, only to send back as `id_token_hint` when ending
    /// the session at the provider. Never logged.
    pub id_token: Option<String>,
}

/// A sign-in between the redirect to the provider and its callback.
#[derive(Clone)]
pub struct PendingLogin {
    /// The `state` sent to the provider; the callback must bring it back.
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
    /// Where to go once signed in: a local path, checked before it got here.
    pub return_to: String,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct SessionError(pub String);

/// Where sessions and pending sign-ins live. Async and fallible so that a
/// database-backed store (needed once several replicas serve the pages) can
/// replace [`MemorySessions`] without touching the handlers.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn insert(&self, key: TokenKey, session: Session) -> Result<(), SessionError>;
    /// The session, unless it has expired by `now` (an expired one is deleted).
    async fn get(
        &self,
        key: &TokenKey,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, SessionError>;
    async fn remove(&self, key: &TokenKey) -> Result<(), SessionError>;
    async fn put_login(&self, key: TokenKey, login: PendingLogin) -> Result<(), SessionError>;
    /// Removes and returns a pending sign-in: each can be completed once.
    async fn take_login(
        &self,
        key: &TokenKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingLogin>, SessionError>;
}

/// Most sign-ins in progress kept at once. Anyone can start a sign-in
/// without credentials, so the map is bounded; past the bound the oldest
/// go first (those people see "your sign-in expired" and start again).
const MAX_PENDING: usize = 10_000;

/// Sessions in this process's memory. They do not survive a restart (every
/// member of staff signs in again) and are not shared between replicas:
/// one replica serves the pages until a database-backed store exists.
#[derive(Default)]
pub struct MemorySessions {
    sessions: Mutex<HashMap<TokenKey, Session>>,
    logins: Mutex<HashMap<TokenKey, PendingLogin>>,
}

impl MemorySessions {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, Session>> {
        // A panic while holding the lock leaves the map consistent (every
        // change is one insert or remove), so a poisoned lock is still usable.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn logins(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, PendingLogin>> {
        self.logins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions held, expired or not (for tests and metrics).
    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn insert(&self, key: TokenKey, session: Session) -> Result<(), SessionError> {
        let now = OffsetDateTime::now_utc();
        let mut map = self.sessions();
        // Expired sessions are swept at each sign-in: bounded by the number
        // of people who signed in within one session lifetime.
        map.retain(|_, s| s.expires_at > now);
        map.insert(key, session);
        Ok(())
    }

    async fn get(
        &self,
        key: &TokenKey,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, SessionError> {
        let mut map = self.sessions();
        match map.get(key) {
            Some(s) if s.expires_at > now => Ok(Some(s.clone())),
            Some(_) => {
                map.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn remove(&self, key: &TokenKey) -> Result<(), SessionError> {
        self.sessions().remove(key);
        Ok(())
    }

    async fn put_login(&self, key: TokenKey, login: PendingLogin) -> Result<(), SessionError> {
        let now = OffsetDateTime::now_utc();
        let mut map = self.logins();
        map.retain(|_, l| l.expires_at > now);
        while map.len() >= MAX_PENDING {
            let oldest = map
                .iter()
                .min_by_key(|(_, l)| l.expires_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(key, login);
        Ok(())
    }

    async fn take_login(
        &self,
        key: &TokenKey,
        now: OffsetDateTime,
    ) -> Result<Option<PendingLogin>, SessionError> {
        Ok(self.logins().remove(key).filter(|l| l.expires_at > now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use time::Duration;

    fn session(expires_at: OffsetDateTime) -> Session {
        Session {
            staff: Staff {
                sub: "s".into(),
                name: "n".into(),
                roles: BTreeSet::new(),
                csrf: random_token(),
            },
            expires_at,
            id_token: None,
        }
    }

    #[tokio::test]
    async fn sessions_expire_and_are_removed() {
        let store = MemorySessions::default();
        let now = OffsetDateTime::now_utc();
        let token = random_token();
        let key = TokenKey::of(&token);
        store
            .insert(key.clone(), session(now + Duration::hours(1)))
            .await
            .ok();
        assert!(store.get(&key, now).await.ok().flatten().is_some());
        assert!(
            store
                .get(&TokenKey::of("other"), now)
                .await
                .ok()
                .flatten()
                .is_none()
        );
        let later = now + Duration::hours(2);
        assert!(store.get(&key, later).await.ok().flatten().is_none());
        assert!(store.is_empty(), "an expired session is deleted when seen");
    }

    #[tokio::test]
    async fn a_pending_sign_in_is_taken_once() {
        let store = MemorySessions::default();
        let now = OffsetDateTime::now_utc();
        let key = TokenKey::of("login");
        let login = PendingLogin {
            state: "st".into(),
            pkce_verifier: "v".into(),
            nonce: "n".into(),
            return_to: "/".into(),
            expires_at: now + Duration::minutes(10),
        };
        store.put_login(key.clone(), login).await.ok();
        assert!(store.take_login(&key, now).await.ok().flatten().is_some());
        assert!(store.take_login(&key, now).await.ok().flatten().is_none());
    }

    #[test]
    fn tokens_are_256_bits_and_keys_are_not_the_token() {
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert_ne!(random_token(), t);
        assert_ne!(TokenKey::of(&t).as_str(), t);
    }
}
