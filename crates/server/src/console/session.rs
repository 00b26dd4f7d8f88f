//! The console's sessions: an admin token exchanged once for a random session id, kept in
//! an `HttpOnly` cookie, so the token itself never sits in the browser's JavaScript.
//!
//! Invariants:
//! - only a digest of the session id is kept: the table leaks nothing a cookie could be
//!   rebuilt from;
//! - a session is bound to the digest of the token that opened it, and is valid only while
//!   that token still has that role: removing or rotating a token on reload ends its
//!   sessions at once;
//! - the table is bounded ([`MAX_SESSIONS`]); past it the oldest session goes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::admin::{Role, Tokens};

/// How long a session lasts from its login, whatever its use.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once.
pub(crate) const MAX_SESSIONS: usize = 10_000;
/// Failed logins an address may make per [`LOGIN_WINDOW`].
pub(crate) const MAX_FAILED_LOGINS: u32 = 10;
/// The window failed logins are counted in.
pub(crate) const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose failed logins are remembered at once.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// An open session, as a request sees it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) role: Role,
    /// The token state-changing requests must echo in `X-Hookgate-CSRF`.
    pub(crate) csrf: String,
}

#[derive(Debug)]
struct Entry {
    role: Role,
    token: [u8; 32],
    csrf: String,
    opened: Instant,
}

/// Every open session, and the failed logins per address.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<[u8; 32], Entry>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Why a login was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LoginRefused {
    /// Not a configured token.
    WrongToken,
    /// Too many failures from this address lately; retry after this long.
    Throttled(Duration),
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Sessions {
    /// Exchanges `presented` for a new session id, if it is a configured token and `peer`
    /// has not failed too often lately.
    pub(crate) fn login(
        &self,
        tokens: &Tokens,
        presented: &str,
        peer: Option<IpAddr>,
    ) -> Result<(String, Session), LoginRefused> {
        let now = Instant::now();
        if let Some(peer) = peer {
            let failures = self.failures.lock().expect("login failures lock");
            if let Some((since, count)) = failures.get(&peer) {
                let elapsed = now.duration_since(*since);
                if elapsed < LOGIN_WINDOW && *count >= MAX_FAILED_LOGINS {
                    return Err(LoginRefused::Throttled(LOGIN_WINDOW - elapsed));
                }
            }
        }
        let Some(role) = tokens.role_of(presented) else {
            if let Some(peer) = peer {
                self.failed(peer, now);
            }
            return Err(LoginRefused::WrongToken);
        };
        let id = random_token();
        let session = Session {
            role,
            csrf: random_token(),
        };
        let mut open = self.open.lock().expect("sessions lock");
        if open.len() >= MAX_SESSIONS {
            open.retain(|_, e| now.duration_since(e.opened) < LIFETIME);
        }
        if open.len() >= MAX_SESSIONS {
            if let Some(oldest) = open.iter().min_by_key(|(_, e)| e.opened).map(|(k, _)| *k) {
                open.remove(&oldest);
            }
        }
        open.insert(
            digest(&id),
            Entry {
                role,
                token: digest(presented),
                csrf: session.csrf.clone(),
                opened: now,
            },
        );
        Ok((id, session))
    }

    fn failed(&self, peer: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().expect("login failures lock");
        if failures.len() >= MAX_TRACKED_ADDRESSES {
            failures.retain(|_, (since, _)| now.duration_since(*since) < LOGIN_WINDOW);
        }
        if failures.len() >= MAX_TRACKED_ADDRESSES {
            // Flooded from that many addresses at once: forget the oldest window rather
            // than grow without bound.
            if let Some(oldest) = failures
                .iter()
                .min_by_key(|(_, (s, _))| *s)
                .map(|(k, _)| *k)
            {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(peer).or_insert((now, 0));
        if now.duration_since(entry.0) >= LOGIN_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// The session `id` names, while it lasts and its token still has its role.
    pub(crate) fn find(&self, tokens: &Tokens, id: &str) -> Option<Session> {
        let key = digest(id);
        let mut open = self.open.lock().expect("sessions lock");
        let entry = open.get(&key)?;
        let valid = Instant::now().duration_since(entry.opened) < LIFETIME
            && tokens.role_of_digest(&entry.token) == Some(entry.role);
        if !valid {
            open.remove(&key);
            return None;
        }
        Some(Session {
            role: entry.role,
            csrf: entry.csrf.clone(),
        })
    }

    /// Ends the session `id` (nothing if there is none).
    pub(crate) fn logout(&self, id: &str) {
        self.open.lock().expect("sessions lock").remove(&digest(id));
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub(crate) fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(digest(presented).ct_eq(&digest(&self.csrf)))
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(Some("operator-token"), Some("reader-token"))
    }

    #[test]
    fn a_token_opens_a_session_with_its_role() {
        let sessions = Sessions::default();
        let (id, session) = sessions.login(&tokens(), "reader-token", None).unwrap();
        assert_eq!(session.role, Role::Reader);
        let found = sessions.find(&tokens(), &id).unwrap();
        assert_eq!(found.role, Role::Reader);
        assert!(found.csrf_matches(&session.csrf));
        assert!(!found.csrf_matches("something else"));
        assert_ne!(id, session.csrf);
        let (other, _) = sessions.login(&tokens(), "operator-token", None).unwrap();
        assert_ne!(id, other);
        assert_eq!(
            sessions.find(&tokens(), &other).unwrap().role,
            Role::Operator
        );
    }

    #[test]
    fn a_wrong_token_opens_nothing() {
        let sessions = Sessions::default();
        assert_eq!(
            sessions.login(&tokens(), "guess", None).unwrap_err(),
            LoginRefused::WrongToken
        );
        assert!(sessions.find(&tokens(), "guess").is_none());
    }

    #[test]
    fn rotating_the_token_ends_its_sessions() {
        let sessions = Sessions::default();
        let (id, _) = sessions.login(&tokens(), "operator-token", None).unwrap();
        let rotated = Tokens::new(Some("new-operator-token"), Some("reader-token"));
        assert!(sessions.find(&rotated, &id).is_none());
        // Gone for good, even if the old token came back.
        assert!(sessions.find(&tokens(), &id).is_none());
        // A token that changed role does not keep the old one.
        let (id, _) = sessions.login(&tokens(), "reader-token", None).unwrap();
        let swapped = Tokens::new(Some("reader-token"), None);
        assert!(sessions.find(&swapped, &id).is_none());
    }

    #[test]
    fn logout_ends_the_session() {
        let sessions = Sessions::default();
        let (id, _) = sessions.login(&tokens(), "operator-token", None).unwrap();
        sessions.logout(&id);
        assert!(sessions.find(&tokens(), &id).is_none());
    }

    #[test]
    fn failed_logins_are_throttled_per_address() {
        let sessions = Sessions::default();
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let neighbour: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..MAX_FAILED_LOGINS {
            assert_eq!(
                sessions
                    .login(&tokens(), "guess", Some(attacker))
                    .unwrap_err(),
                LoginRefused::WrongToken
            );
        }
        // Even the right token waits now: guessing on cannot tell right from wrong.
        assert!(matches!(
            sessions.login(&tokens(), "operator-token", Some(attacker)),
            Err(LoginRefused::Throttled(wait)) if wait <= LOGIN_WINDOW
        ));
        assert!(sessions
            .login(&tokens(), "operator-token", Some(neighbour))
            .is_ok());
    }

    #[test]
    fn the_session_table_is_bounded() {
        let sessions = Sessions::default();
        let (first, _) = sessions.login(&tokens(), "reader-token", None).unwrap();
        for _ in 0..MAX_SESSIONS {
            sessions.login(&tokens(), "reader-token", None).unwrap();
        }
        assert_eq!(sessions.open.lock().unwrap().len(), MAX_SESSIONS);
        assert!(sessions.find(&tokens(), &first).is_none());
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = http::HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            "a=1; hookgate_session_x=2".parse().unwrap(),
        );
        headers.append(
            http::header::COOKIE,
            "hookgate_session=abc".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, "hookgate_session"), Some("abc"));
        assert_eq!(cookie(&headers, "a"), Some("1"));
        assert_eq!(cookie(&headers, "b"), None);
    }
}
