//! The notification worker: delivers the outbox ([`crate::domain::notify`])
//! by email (SMTP, through `lettre`) and webhook (HTTP POST, through
//! `reqwest`), off every request's path.
//!
//! Every replica runs one. It looks for due deliveries with a read (no
//! lock) each second, claims a batch with a lease in one short write
//! transaction, sends them concurrently with timeouts, and records each
//! outcome. A mail server that is down or hangs costs this task time,
//! never an ingest request: ingest only inserts outbox rows. Delivery is
//! at least once: a replica that dies after sending and before recording
//! leaves a claim that runs out, and the delivery is sent again.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use crate::config::{HostPolicy, NotifySettings, SmtpSettings, SmtpTls};
use crate::domain::notify::{self as rules, Retry};
use crate::domain::{Result, blocking};
use crate::storage::{ChannelRow, OutboxRow, StateStore};

/// One attempt never takes longer than this.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_secs(1);
const BATCH: usize = 32;
const PURGE_EVERY: Duration = Duration::from_secs(3600);

type Mailer = AsyncSmtpTransport<Tokio1Executor>;

/// An error and its causes (reqwest names only its own level).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_s = c.to_string();
        if !s.contains(&c_s) {
            s.push_str(": ");
            s.push_str(&c_s);
        }
        cause = c.source();
    }
    s
}

/// Resolves webhook hosts, refusing those the policy does not allow.
struct Guard(HostPolicy);

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<std::net::IpAddr> = addrs.iter().map(|a| a.ip()).collect();
            policy.check_resolved(&host, &ips)?;
            let it: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

/// What the worker needs besides the store.
#[derive(Debug, Clone)]
pub struct Worker {
    /// SMTP and retry settings.
    pub settings: NotifySettings,
    /// Base of links to the UI (`{base}/#/run/{id}`).
    pub public_url: String,
}

fn mailer(s: &SmtpSettings) -> std::result::Result<Mailer, String> {
    let params = || {
        let mut b = TlsParameters::builder(s.host.clone());
        if let Some(pem) = &s.ca_pem {
            b = b.add_root_certificate(
                Certificate::from_pem(pem).map_err(|e| format!("the SMTP CA file: {e}"))?,
            );
        }
        b.build()
            .map_err(|e| format!("TLS setup for {}: {e}", s.host))
    };
    let (tls, port) = match s.tls {
        SmtpTls::Required => (Tls::Required(params()?), 587),
        SmtpTls::Opportunistic => (Tls::Opportunistic(params()?), 587),
        SmtpTls::Never => (Tls::None, 25),
        SmtpTls::Implicit => (Tls::Wrapper(params()?), 465),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
        .port(s.port.unwrap_or(port))
        .tls(tls)
        .timeout(Some(Duration::from_secs(20)));
    if let Some(user) = &s.user {
        b = b.credentials(Credentials::new(
            user.clone(),
            s.password.clone().unwrap_or_default(),
        ));
    }
    Ok(b.build())
}

impl Worker {
    /// The link to run `id` in the UI.
    pub fn run_url(&self, id: &str) -> String {
        format!("{}/#/run/{id}", self.public_url.trim_end_matches('/'))
    }

    fn retry(&self) -> Retry {
        Retry {
            base_us: self.settings.retry_base.as_micros() as i64,
            max_us: self.settings.retry_max.as_micros() as i64,
            attempts: i64::from(self.settings.attempts),
        }
    }

    /// Delivers until the process ends.
    pub fn spawn(self, store: Arc<dyn StateStore>) {
        let mailer = match self.settings.smtp.as_ref().map(mailer) {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                eprintln!("simtrack server: notification email disabled: {e}");
                None
            }
            None => None,
        };
        // Webhook hosts are resolved by `Guard`, which refuses addresses of
        // the server's own network unless allowed: the check applies to the
        // very addresses connected to (no second lookup a rebinding DNS
        // server could answer differently). No proxy: it would resolve the
        // host itself, past the check.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(Guard(self.settings.allow_hosts.clone())))
            .build()
            .ok();
        let me = Arc::new(self);
        tokio::spawn(async move {
            let mut last_purge = std::time::Instant::now();
            loop {
                tokio::time::sleep(POLL).await;
                if last_purge.elapsed() >= PURGE_EVERY {
                    last_purge = std::time::Instant::now();
                    let s = store.clone();
                    let _ = blocking(move || rules::purge(&*s)).await;
                }
                if let Err(e) = me.round(&store, mailer.as_ref(), http.as_ref()).await {
                    eprintln!("simtrack server: notification delivery: {}", e.detail);
                }
            }
        });
    }

    /// One round: claim what is due, send it, record the outcomes.
    async fn round(
        self: &Arc<Self>,
        store: &Arc<dyn StateStore>,
        mailer: Option<&Mailer>,
        http: Option<&reqwest::Client>,
    ) -> Result<()> {
        let s = store.clone();
        if !blocking(move || rules::any_due(&*s)).await? {
            return Ok(());
        }
        let s = store.clone();
        let batch = blocking(move || rules::claim(&*s, BATCH)).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for (o, c) in batch {
            let me = self.clone();
            let (mailer, http, store) = (mailer.cloned(), http.cloned(), store.clone());
            tasks.spawn(async move {
                let outcome = tokio::time::timeout(
                    ATTEMPT_TIMEOUT,
                    me.deliver(&o, &c, mailer.as_ref(), http.as_ref()),
                )
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {ATTEMPT_TIMEOUT:?}")));
                if let Err(e) = &outcome {
                    eprintln!(
                        "simtrack server: notification {} to {} {}: {e}",
                        o.id, c.kind, c.target
                    );
                }
                let retry = me.retry();
                blocking(move || rules::finish(&*store, &o, outcome, &retry)).await
            });
        }
        while let Some(r) = tasks.join_next().await {
            if let Ok(Err(e)) = r {
                eprintln!(
                    "simtrack server: recording a notification outcome: {}",
                    e.detail
                );
            }
        }
        Ok(())
    }

    async fn deliver(
        &self,
        o: &OutboxRow,
        c: &ChannelRow,
        mailer: Option<&Mailer>,
        http: Option<&reqwest::Client>,
    ) -> std::result::Result<(), String> {
        let payload: Value = serde_json::from_str(&o.payload).unwrap_or(Value::Null);
        let url = self.run_url(&o.run_id);
        match c.kind.as_str() {
            "email" => {
                let (Some(smtp), Some(mailer)) = (self.settings.smtp.as_ref(), mailer) else {
                    return Err("no SMTP server is configured (--smtp-host)".into());
                };
                let (subject, body) = rules::email_text(&payload, &url);
                let msg = Message::builder()
                    .from(
                        smtp.from
                            .parse()
                            .map_err(|e| format!("sender {}: {e}", smtp.from))?,
                    )
                    .to(c
                        .target
                        .parse()
                        .map_err(|e| format!("address {}: {e}", c.target))?)
                    .subject(subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(body)
                    .map_err(|e| e.to_string())?;
                mailer
                    .send(msg)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("SMTP {}: {e}", smtp.host))
            }
            "webhook" => {
                let Some(http) = http else {
                    return Err("no HTTP client".into());
                };
                // An address in the URL is not resolved: checked here.
                match rules::webhook_host(&c.target)? {
                    url::Host::Ipv4(ip) => self.settings.allow_hosts.check_ip(ip.into())?,
                    url::Host::Ipv6(ip) => self.settings.allow_hosts.check_ip(ip.into())?,
                    url::Host::Domain(_) => {}
                }
                let options: Value = serde_json::from_str(&c.options).unwrap_or(Value::Null);
                let format = options["format"].as_str().unwrap_or("json");
                let r = http
                    .post(&c.target)
                    .header("content-type", "application/json")
                    .header(
                        "user-agent",
                        concat!("simtrack/", env!("CARGO_PKG_VERSION")),
                    )
                    .body(rules::webhook_body(&payload, &url, format))
                    .send()
                    .await
                    .map_err(|e| format!("POST {}: {}", c.target, with_causes(&e)))?;
                if r.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("POST {}: HTTP {}", c.target, r.status()))
                }
            }
            k => Err(format!("unknown channel kind {k}")),
        }
    }
}
