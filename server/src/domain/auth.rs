//! API tokens and signed artifact URLs.
//!
//! A token is JWT-shaped (`header.payload.signature`, HS256 with the server
//! secret) because the Simvue client decodes it and reads `exp`. The server
//! never trusts the payload: it stores only the SHA-256 of each token it
//! issued and authenticates by looking that hash up (and checking `exp`).
//! Artifact upload/download URLs carry no bearer token (the client sends
//! none), so they carry an HMAC over (purpose, artifact id, expiry) instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{Error, read, write};
use crate::storage::{StateStore, TokenRow};
use crate::util::hex;
use crate::util::{new_id, now_us};

type HmacSha256 = Hmac<Sha256>;

/// Who a request comes from.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token's id (idempotency keys are scoped by it).
    pub token_id: String,
    /// The token's name, shown as the runs' `user`.
    pub user: String,
    exp: i64,
}

impl Identity {
    /// When the caller's token expires (seconds since the epoch).
    pub fn exp(&self) -> i64 {
        self.exp
    }
}

/// Longest lifetime of a token minted over the API (`POST /api/ui/tokens`).
pub const MAX_MINTED_DAYS: u32 = 90;
/// Lifetime of a minted token when none is asked for.
pub const DEFAULT_MINTED_DAYS: u32 = 30;
/// Most unexpired tokens one identity may hold before minting is refused.
pub const MAX_LIVE_TOKENS_PER_NAME: u64 = 100;
/// How long a verified token is trusted without looking at the store again:
/// a token revoked elsewhere (the CLI, another replica) stops working within
/// this time; one revoked through this server stops at once.
pub const DEFAULT_CACHE_TTL: Duration = crate::config::DEFAULT_TOKEN_CACHE;
/// Most tokens the verification cache holds (it is emptied when full).
const MAX_CACHED: usize = 10_000;

/// Token verification with a short-lived cache of tokens already seen.
#[derive(Debug)]
pub struct Auth {
    secret: Vec<u8>,
    cache: Mutex<HashMap<String, (Identity, Instant)>>,
    ttl: Duration,
}

fn sign(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Issues a new token named `name`, valid for `days`, and stores its hash
/// (the administrator's path: `simtrack token create`).
pub fn create_token(store: &dyn StateStore, name: &str, days: u32) -> Result<String, Error> {
    let now = now_us() / 1_000_000;
    issue(store, name, now + i64::from(days) * 86_400, None).map(|(t, _)| t)
}

/// A token minted by an authenticated caller: always under the caller's
/// own name (a token cannot mint one for someone else), for at most
/// [`MAX_MINTED_DAYS`] and never past the caller's own expiry (so minting
/// cannot extend access), and refused ([`Error::too_many`]) while the
/// caller's name holds [`MAX_LIVE_TOKENS_PER_NAME`] unexpired tokens.
/// Returns the token and its stored row.
pub fn mint(
    store: &dyn StateStore,
    caller: &Identity,
    days: u32,
) -> Result<(String, TokenRow), Error> {
    if !(1..=MAX_MINTED_DAYS).contains(&days) {
        return Err(Error::invalid(format!(
            "'days' must be an integer from 1 to {MAX_MINTED_DAYS}"
        )));
    }
    let now = now_us() / 1_000_000;
    let exp = (now + i64::from(days) * 86_400).min(caller.exp);
    issue(store, &caller.user, exp, Some(MAX_LIVE_TOKENS_PER_NAME))
}

/// The tokens named `name` (all, when `None`), oldest first.
pub fn list_tokens(store: &dyn StateStore, name: Option<&str>) -> Result<Vec<TokenRow>, Error> {
    read(store, |tx| Ok(tx.tokens(name)?))
}

/// Deletes token `id` (only if it is named `owner`, when given); whether a
/// token was deleted. Servers stop accepting it within [`DEFAULT_CACHE_TTL`]
/// (this process at once, through [`Auth::forget`]).
pub fn revoke_token(store: &dyn StateStore, id: &str, owner: Option<&str>) -> Result<bool, Error> {
    write(store, |tx| {
        if let Some(owner) = owner
            && !tx.tokens(Some(owner))?.iter().any(|t| t.id == id)
        {
            return Ok(false);
        }
        Ok(tx.token_delete(id)?)
    })
}

fn issue(
    store: &dyn StateStore,
    name: &str,
    exp: i64,
    max_live: Option<u64>,
) -> Result<(String, TokenRow), Error> {
    let secret = secret(store)?;
    let id = new_id();
    let now = now_us() / 1_000_000;
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload =
        B64.encode(serde_json::json!({"sub": name, "jti": id, "iat": now, "exp": exp}).to_string());
    let signing_input = format!("{header}.{payload}");
    let token = format!(
        "{signing_input}.{}",
        B64.encode(sign(&secret, signing_input.as_bytes()))
    );
    let row = TokenRow {
        id,
        name: name.to_owned(),
        hash: token_hash(&token),
        exp,
        created: now,
    };
    write(store, |tx| {
        if let Some(max) = max_live
            && tx.tokens_live(name, now)? >= max
        {
            return Err(Error::too_many(format!(
                "'{name}' already holds {max} unexpired tokens: revoke some first"
            )));
        }
        tx.token_insert(&row)?;
        Ok(())
    })?;
    Ok((token, row))
}

/// The persistent server secret (the signing key), created on first use.
pub fn secret(store: &dyn StateStore) -> Result<Vec<u8>, Error> {
    write(store, |tx| {
        if let Some(s) = tx.setting("secret")? {
            return Ok(s);
        }
        let mut s = vec![0u8; 32];
        crate::util::fill_random(&mut s);
        tx.setting_put("secret", &s)?;
        Ok(s)
    })
}

impl Auth {
    /// Verification against `store`, signing URLs with its secret.
    pub fn new(store: &dyn StateStore) -> Result<Auth, Error> {
        Self::with_cache_ttl(store, DEFAULT_CACHE_TTL)
    }

    /// As [`Auth::new`], trusting a verified token for `ttl` before looking
    /// it up again (zero: every request looks it up).
    pub fn with_cache_ttl(store: &dyn StateStore, ttl: Duration) -> Result<Auth, Error> {
        Ok(Auth {
            secret: secret(store)?,
            cache: Mutex::new(HashMap::new()),
            ttl,
        })
    }

    /// Stops trusting token `id` at once (after it was revoked).
    pub fn forget(&self, token_id: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (i, _)| i.token_id != token_id);
    }

    /// The identity behind an `Authorization` header value.
    pub fn verify(&self, store: &dyn StateStore, header: Option<&str>) -> Result<Identity, Error> {
        self.verify_with(header, |hash| {
            read(store, |tx| {
                Ok(tx.token_by_hash(hash)?.map(|t| Identity {
                    token_id: t.id,
                    user: t.name,
                    exp: t.exp,
                }))
            })
        })
    }

    /// [`Auth::verify`] answered from the cache alone: `None` when the token
    /// has not been seen yet (the caller then does the database lookup off
    /// the async executor).
    pub fn verify_cached(&self, header: Option<&str>) -> Option<Result<Identity, Error>> {
        let mut miss = false;
        let r = self.verify_with(header, |_| {
            miss = true;
            Ok(None)
        });
        (!miss).then_some(r)
    }

    fn verify_with(
        &self,
        header: Option<&str>,
        lookup: impl FnOnce(&str) -> Result<Option<Identity>, Error>,
    ) -> Result<Identity, Error> {
        let header = header.ok_or_else(|| Error::unauthorized("missing Authorization header"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::unauthorized("Authorization must be 'Bearer <token>'"))?;
        if token.len() > 4096 {
            return Err(Error::unauthorized("invalid token"));
        }
        let hash = token_hash(token);
        let now = now_us() / 1_000_000;
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(i, _)| i.clone());
        let identity = match cached {
            Some(i) => i,
            None => {
                let found = lookup(&hash)?;
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                let Some(i) = found else {
                    // Revoked (or never issued): forget any stale entry.
                    cache.remove(&hash);
                    return Err(Error::unauthorized("invalid token"));
                };
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
                cache.insert(hash, (i.clone(), Instant::now()));
                i
            }
        };
        if identity.exp <= now {
            return Err(Error::unauthorized("token has expired"));
        }
        Ok(identity)
    }

    /// `exp=<unix s>&sig=<hmac>` authorising `purpose` on artifact `id`.
    pub fn url_signature(&self, purpose: &str, id: &str, valid_secs: i64) -> String {
        let exp = now_us() / 1_000_000 + valid_secs;
        let sig = B64.encode(sign(
            &self.secret,
            format!("{purpose}:{id}:{exp}").as_bytes(),
        ));
        format!("exp={exp}&sig={sig}")
    }

    /// Checks a signature made by [`Auth::url_signature`].
    pub fn check_url(
        &self,
        purpose: &str,
        id: &str,
        exp: Option<&str>,
        sig: Option<&str>,
    ) -> Result<(), Error> {
        let denied = || Error::unauthorized("missing or invalid URL signature");
        let exp_s = exp.ok_or_else(denied)?;
        let exp: i64 = exp_s.parse().map_err(|_| denied())?;
        let sig = B64.decode(sig.ok_or_else(denied)?).map_err(|_| denied())?;
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(format!("{purpose}:{id}:{exp}").as_bytes());
        mac.verify_slice(&sig).map_err(|_| denied())?;
        if exp < now_us() / 1_000_000 {
            return Err(Error::unauthorized("URL signature has expired"));
        }
        Ok(())
    }
}
