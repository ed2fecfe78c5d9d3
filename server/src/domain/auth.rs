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
use crate::storage::{StateStore, TokenRow, WriteTx};
use crate::util::hex;
use crate::util::{new_id, now_us};

type HmacSha256 = Hmac<Sha256>;

/// Who a request comes from: a token's (or sign-in session's) user, as
/// stored when it was last looked up.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token's id (idempotency keys are scoped by it).
    pub token_id: String,
    /// The user it belongs to, shown as the runs' `user`.
    pub user: String,
    /// The user's group (Simvue's tenant).
    pub group: Option<String>,
    /// Sees and changes everything; manages users, reads the audit trail.
    pub admin: bool,
    /// Reads only: every write answers 403.
    pub read_only: bool,
    /// For a sign-in session (a cookie): SHA-256 of its CSRF token, which
    /// every write must carry.
    pub csrf: Option<String>,
    /// Where the request came from (filled in per request, for the audit
    /// trail).
    pub ip: String,
    exp: i64,
}

impl Identity {
    /// When the caller's token expires (seconds since the epoch).
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// Refuses (403) a write by a read-only token.
    pub fn may_write(&self) -> Result<(), Error> {
        if self.read_only {
            return Err(Error::forbidden("this token is read-only"));
        }
        Ok(())
    }

    /// Refuses (403) a non-administrator.
    pub fn must_be_admin(&self) -> Result<(), Error> {
        if !self.admin {
            return Err(Error::forbidden("only administrators may do this"));
        }
        Ok(())
    }

    /// The console (`simtrack user ...`, `simtrack token ...`): an
    /// administrator, recorded in the audit trail as `cli`.
    pub fn console() -> Identity {
        Identity {
            token_id: String::new(),
            user: "cli".into(),
            group: None,
            admin: true,
            read_only: false,
            csrf: None,
            ip: "cli".into(),
            exp: i64::MAX,
        }
    }

    /// User `name` as the store has it now (for work done on its behalf
    /// without a token, such as a signed download link made for it):
    /// unauthorized when it does not exist or is disabled.
    pub fn of_user(store: &dyn StateStore, name: &str) -> Result<Identity, Error> {
        let u = read(store, |tx| Ok(tx.user_get(name)?))?
            .filter(|u| !u.disabled)
            .ok_or_else(|| {
                Error::unauthorized("this link's user no longer exists or is disabled")
            })?;
        Ok(Identity {
            token_id: String::new(),
            user: u.name,
            group: u.group,
            admin: u.admin,
            read_only: true,
            csrf: None,
            ip: String::new(),
            exp: i64::MAX,
        })
    }

    /// Whether it is a sign-in session (a cookie), not an API token.
    pub fn is_session(&self) -> bool {
        self.csrf.is_some()
    }

    /// Checks the CSRF token a session's write carries.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), Error> {
        let Some(want) = &self.csrf else {
            return Ok(());
        };
        match sent {
            Some(t) if constant_eq(&token_hash(t), want) => Ok(()),
            _ => Err(Error::forbidden(
                "a signed-in write must carry the X-CSRF-Token header given at sign-in",
            )),
        }
    }
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Longest lifetime of a token minted over the API (`POST /api/ui/tokens`).
pub const MAX_MINTED_DAYS: u32 = 90;
/// Lifetime of a minted token when none is asked for.
pub const DEFAULT_MINTED_DAYS: u32 = 30;
/// Most unexpired tokens one identity may hold before minting is refused.
pub const MAX_LIVE_TOKENS_PER_NAME: u64 = 100;
/// Lifetime of a sign-in session.
pub const SESSION_SECS: i64 = 12 * 3600;
/// How long a verified token is trusted without looking at the store again
/// (revocations are noticed sooner: see [`GENERATION_CHECK`]).
pub const DEFAULT_CACHE_TTL: Duration = crate::config::DEFAULT_TOKEN_CACHE;
/// Most often the cache asks the store whether any token was revoked or
/// any user changed (by this process, another replica or the CLI): a
/// revocation anywhere is seen within this time, one made through this
/// process at once.
pub const GENERATION_CHECK: Duration = Duration::from_millis(50);
/// Most tokens the verification cache holds (it is emptied when full).
const MAX_CACHED: usize = 10_000;
/// The setting counting revocations and user changes.
const GENERATION_KEY: &str = "auth_generation";
/// A token's `last_used` is written at most this often (seconds).
const TOUCH_EVERY: i64 = 60;

/// Token verification with a short-lived cache of tokens already seen.
#[derive(Debug)]
pub struct Auth {
    secret: Vec<u8>,
    cache: Mutex<Cache>,
    ttl: Duration,
}

#[derive(Debug)]
struct Cache {
    entries: HashMap<String, (Identity, Instant)>,
    generation: i64,
    checked: Option<Instant>,
}

fn sign(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn now_s() -> i64 {
    now_us() / 1_000_000
}

/// The revocation generation stored in `tx`.
fn generation(tx: &dyn crate::storage::ReadTx) -> Result<i64, Error> {
    Ok(tx
        .setting(GENERATION_KEY)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, i64::from_le_bytes))
}

/// Counts one more revocation or user change, in the same transaction:
/// every server sharing the store drops its cached tokens.
pub(crate) fn bump_generation(tx: &dyn WriteTx) -> Result<(), Error> {
    let g = generation(tx)? + 1;
    tx.setting_put(GENERATION_KEY, &g.to_le_bytes())?;
    Ok(())
}

/// What a new token is for.
#[derive(Debug, Clone, Default)]
pub struct TokenSpec {
    /// What its owner calls it.
    pub label: String,
    /// Days until it expires.
    pub days: u32,
    /// Reads only.
    pub read_only: bool,
}

/// Issues a new token named `name`, valid for `days`, and stores its hash
/// (the administrator's path: `simtrack token create --name`). The user
/// `name` is created (not an administrator, in no group) if it does not
/// exist.
pub fn create_token(store: &dyn StateStore, name: &str, days: u32) -> Result<String, Error> {
    super::users::ensure(store, name)?;
    create_token_for(
        store,
        name,
        &TokenSpec {
            label: String::new(),
            days,
            read_only: false,
        },
    )
    .map(|(t, _)| t)
}

/// Issues a token for the existing user `user` (`simtrack token create
/// --user`), recorded in the audit trail as done from the console.
pub fn create_token_for(
    store: &dyn StateStore,
    user: &str,
    spec: &TokenSpec,
) -> Result<(String, TokenRow), Error> {
    let exp = now_s().saturating_add(i64::from(spec.days) * 86_400);
    issue(store, &Identity::console(), user, spec, exp, None)
}

/// A token minted by an authenticated caller: always under the caller's
/// own name (a token cannot mint one for someone else), for at most
/// [`MAX_MINTED_DAYS`] and never past the caller's own expiry (so minting
/// cannot extend access), and refused ([`Error::too_many`]) while the
/// caller's name holds [`MAX_LIVE_TOKENS_PER_NAME`] unexpired tokens.
/// A read-only caller cannot mint. Returns the token and its stored row.
pub fn mint(
    store: &dyn StateStore,
    caller: &Identity,
    spec: &TokenSpec,
) -> Result<(String, TokenRow), Error> {
    caller.may_write()?;
    if !(1..=MAX_MINTED_DAYS).contains(&spec.days) {
        return Err(Error::invalid(format!(
            "'days' must be an integer from 1 to {MAX_MINTED_DAYS}"
        )));
    }
    let mut exp = now_s() + i64::from(spec.days) * 86_400;
    if !caller.is_session() {
        // A token cannot extend its own access by minting; a person signed
        // in with a password mints tokens for their programs.
        exp = exp.min(caller.exp);
    }
    issue(
        store,
        caller,
        &caller.user,
        spec,
        exp,
        Some(MAX_LIVE_TOKENS_PER_NAME),
    )
}

/// The tokens of user `name` (all, when `None`), oldest first, sign-in
/// sessions included.
pub fn list_tokens(store: &dyn StateStore, name: Option<&str>) -> Result<Vec<TokenRow>, Error> {
    read(store, |tx| Ok(tx.tokens(name)?))
}

/// A token as lists show it (never the token or its hash).
pub fn token_doc(t: &TokenRow, current: Option<&str>) -> serde_json::Value {
    let ts = |s: i64| crate::util::fmt_ts(s.saturating_mul(1_000_000));
    serde_json::json!({
        "id": t.id,
        "name": t.name,
        "user": t.name,
        "label": t.label,
        "created": ts(t.created),
        "exp": ts(t.exp),
        "last_used": t.last_used.map(ts),
        "scope": scope(t),
        "expired": t.exp <= now_s(),
        "current": current == Some(t.id.as_str()),
    })
}

/// `session`, `read-only` or `full`.
pub fn scope(t: &TokenRow) -> &'static str {
    if t.csrf.is_some() {
        "session"
    } else if t.read_only {
        "read-only"
    } else {
        "full"
    }
}

/// Deletes token `id` on behalf of `by`: its own tokens, or any when `by`
/// is an administrator; whether a token was deleted. Every server sharing
/// the store stops accepting it at once (this one) or within
/// [`GENERATION_CHECK`] (others). Recorded in the audit trail.
pub fn revoke_token(store: &dyn StateStore, id: &str, by: &Identity) -> Result<bool, Error> {
    write(store, |tx| {
        let Some(t) = tx.tokens(None)?.into_iter().find(|t| t.id == id) else {
            return Ok(false);
        };
        if !by.admin && t.name != by.user {
            return Ok(false);
        }
        if !tx.token_delete(id)? {
            return Ok(false);
        }
        bump_generation(tx)?;
        let action = if t.csrf.is_some() {
            "signout"
        } else {
            "token_revoke"
        };
        super::audit::record(tx, by, action, id, &format!("user {}", t.name))?;
        Ok(true)
    })
}

fn random_secret() -> String {
    let mut b = [0u8; 32];
    crate::util::fill_random(&mut b);
    B64.encode(b)
}

fn issue(
    store: &dyn StateStore,
    by: &Identity,
    user: &str,
    spec: &TokenSpec,
    exp: i64,
    max_live: Option<u64>,
) -> Result<(String, TokenRow), Error> {
    let secret = secret(store)?;
    let id = new_id();
    let now = now_s();
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload =
        B64.encode(serde_json::json!({"sub": user, "jti": id, "iat": now, "exp": exp}).to_string());
    let signing_input = format!("{header}.{payload}");
    let token = format!(
        "{signing_input}.{}",
        B64.encode(sign(&secret, signing_input.as_bytes()))
    );
    super::check_name("token label", &spec.label, 200).or_else(|e| {
        if spec.label.is_empty() {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    let row = TokenRow {
        id,
        name: user.to_owned(),
        hash: token_hash(&token),
        exp,
        created: now,
        label: spec.label.clone(),
        read_only: spec.read_only,
        last_used: None,
        csrf: None,
    };
    write(store, |tx| {
        match tx.user_get(user)? {
            None => return Err(Error::not_found(format!("no user '{user}'"))),
            Some(u) if u.disabled => {
                return Err(Error::invalid(format!("user '{user}' is disabled")));
            }
            Some(_) => {}
        }
        if let Some(max) = max_live
            && tx.tokens_live(user, now)? >= max
        {
            return Err(Error::too_many(format!(
                "'{user}' already holds {max} unexpired tokens: revoke some first"
            )));
        }
        tx.token_insert(&row)?;
        super::audit::record(
            tx,
            by,
            "token_create",
            &row.id,
            &serde_json::json!({"user": user, "label": spec.label, "scope": scope(&row),
                "exp": crate::util::fmt_ts(exp.saturating_mul(1_000_000))})
            .to_string(),
        )?;
        Ok(())
    })?;
    Ok((token, row))
}

/// A new sign-in session for `user`: the session secret (the cookie's
/// value) and its row. Stored like a token, hashed, with the hash of its
/// CSRF token ([`Auth::csrf_for`]), which every write must carry in
/// `X-CSRF-Token`.
pub fn new_session(
    tx: &dyn WriteTx,
    auth: &Auth,
    user: &str,
    by: &Identity,
) -> Result<(String, TokenRow), Error> {
    let session = random_secret();
    let id = new_id();
    let csrf = auth.csrf_for(&id);
    let now = now_s();
    let row = TokenRow {
        id,
        name: user.to_owned(),
        hash: token_hash(&session),
        exp: now + SESSION_SECS,
        created: now,
        label: "sign-in session".into(),
        read_only: false,
        last_used: Some(now),
        csrf: Some(token_hash(&csrf)),
    };
    tx.token_insert(&row)?;
    super::audit::record(tx, by, "signin", &row.id, &format!("user {user}"))?;
    Ok((session, row))
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

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, Error> {
    let header = header.ok_or_else(|| Error::unauthorized("missing Authorization header"))?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::unauthorized("Authorization must be 'Bearer <token>'"))
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
            cache: Mutex::new(Cache {
                entries: HashMap::new(),
                generation: 0,
                checked: None,
            }),
            ttl,
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The CSRF token of session `id`: derived from it with the server
    /// secret, so the page can ask for it again (`GET /api/ui/whoami`)
    /// while another site, which cannot read our responses, cannot.
    pub fn csrf_for(&self, session_id: &str) -> String {
        B64.encode(sign(&self.secret, format!("csrf:{session_id}").as_bytes()))
    }

    /// Stops trusting every cached token at once (after a revocation or a
    /// user change made through this process).
    pub fn forget_all(&self) {
        let mut c = self.cache();
        c.entries.clear();
        c.checked = None;
    }

    /// Stops trusting token `id` at once (after it was revoked).
    pub fn forget(&self, token_id: &str) {
        let _ = token_id;
        self.forget_all();
    }

    /// The identity behind a bearer token or session secret (`token`, the
    /// value without `Bearer `), looked up in `store` unless cached and no
    /// revocation happened since.
    pub fn verify_token(&self, store: &dyn StateStore, token: &str) -> Result<Identity, Error> {
        let stale = self
            .cache()
            .checked
            .is_none_or(|at| at.elapsed() >= GENERATION_CHECK);
        if stale {
            let g = read(store, generation)?;
            self.set_generation(g);
        }
        self.verify_with(Some(token), |hash| {
            let found = read(store, |tx| {
                let g = generation(tx)?;
                let Some(t) = tx.token_by_hash(hash)? else {
                    return Ok((g, None));
                };
                let user = tx.user_get(&t.name)?;
                // Set through the Simvue user and tenant API.
                let user_read_only = super::accounts::read_only(tx, &t.name)?;
                let group_off = match user.as_ref().and_then(|u| u.group.as_deref()) {
                    Some(grp) => super::accounts::group_disabled(tx, grp)?,
                    None => false,
                };
                Ok((g, Some((t, user, user_read_only, group_off))))
            })?;
            let (g, found) = found;
            self.set_generation(g);
            let Some((t, user, user_read_only, group_off)) = found else {
                return Ok(None);
            };
            if user.as_ref().is_some_and(|u| u.disabled) {
                return Err(Error::unauthorized("this user is disabled"));
            }
            if group_off {
                return Err(Error::unauthorized("this user's tenant is disabled"));
            }
            let now = now_s();
            if t.exp > now && t.last_used.is_none_or(|l| l + TOUCH_EVERY <= now) {
                // Best effort: a failed bookkeeping write never fails the
                // request.
                let _ = write(store, |tx| Ok(tx.token_touch(&t.id, now)?));
            }
            Ok(Some(Identity {
                token_id: t.id,
                user: t.name,
                group: user.as_ref().and_then(|u| u.group.clone()),
                admin: user.as_ref().is_some_and(|u| u.admin),
                read_only: t.read_only || user_read_only,
                csrf: t.csrf,
                ip: String::new(),
                exp: t.exp,
            }))
        })
    }

    /// The identity behind an `Authorization` header value.
    pub fn verify(&self, store: &dyn StateStore, header: Option<&str>) -> Result<Identity, Error> {
        let token = bearer(header)?;
        self.verify_token(store, token)
    }

    fn set_generation(&self, g: i64) {
        let mut c = self.cache();
        if c.generation != g {
            c.entries.clear();
            c.generation = g;
        }
        c.checked = Some(Instant::now());
    }

    /// [`Auth::verify`] answered from the cache alone: `None` when the token
    /// has not been seen yet, or when the store must be asked whether a
    /// token was revoked since (the caller then does the database lookup
    /// off the async executor).
    pub fn verify_cached(&self, header: Option<&str>) -> Option<Result<Identity, Error>> {
        let token = match bearer(header) {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        self.verify_token_cached(token)
    }

    /// [`Auth::verify_cached`] for a token or session secret.
    pub fn verify_token_cached(&self, token: &str) -> Option<Result<Identity, Error>> {
        let fresh = self
            .cache()
            .checked
            .is_some_and(|at| at.elapsed() < GENERATION_CHECK);
        if !fresh {
            return None;
        }
        let mut miss = false;
        let r = self.verify_with(Some(token), |_| {
            miss = true;
            Ok(None)
        });
        (!miss).then_some(r)
    }

    fn verify_with(
        &self,
        token: Option<&str>,
        lookup: impl FnOnce(&str) -> Result<Option<Identity>, Error>,
    ) -> Result<Identity, Error> {
        let token = token.ok_or_else(|| Error::unauthorized("missing credentials"))?;
        if token.is_empty() || token.len() > 4096 {
            return Err(Error::unauthorized("invalid token"));
        }
        let hash = token_hash(token);
        let now = now_s();
        let cached = self
            .cache()
            .entries
            .get(&hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(i, _)| i.clone());
        let identity = match cached {
            Some(i) => i,
            None => {
                let found = lookup(&hash);
                let mut cache = self.cache();
                let found = match found {
                    Ok(f) => f,
                    Err(e) => {
                        cache.entries.remove(&hash);
                        return Err(e);
                    }
                };
                let Some(i) = found else {
                    // Revoked (or never issued): forget any stale entry.
                    cache.entries.remove(&hash);
                    return Err(Error::unauthorized("invalid token"));
                };
                if cache.entries.len() >= MAX_CACHED {
                    cache.entries.clear();
                }
                cache.entries.insert(hash, (i.clone(), Instant::now()));
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
