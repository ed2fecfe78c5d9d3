//! `simtrack notify add|list|remove` (users' notification channels) and
//! the SMTP flags of `simtrack server`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use simtrack_server::config::{HostPolicy, NotifySettings, SmtpSettings, SmtpTls};
use simtrack_server::domain::{self, notify};

use crate::admin_store::{Open, StoreArgs, with_store};

/// SMTP settings of `simtrack server` (flags over `SIMTRACK_SMTP_*`).
#[derive(clap::Args, Debug)]
pub struct SmtpArgs {
    /// SMTP server for notification emails [env SIMTRACK_SMTP_HOST; none: no email].
    #[arg(long)]
    smtp_host: Option<String>,
    /// Its port [env SIMTRACK_SMTP_PORT; default 587, 465 with --smtp-implicit-tls, 25 with
    /// --smtp-starttls never].
    #[arg(long)]
    smtp_port: Option<u16>,
    /// STARTTLS: required, opportunistic or never [env SIMTRACK_SMTP_STARTTLS, default required].
    #[arg(long, value_parser = ["required", "opportunistic", "never"])]
    smtp_starttls: Option<String>,
    /// TLS from the first byte (SMTPS, port 465) instead of STARTTLS
    /// [env SIMTRACK_SMTP_IMPLICIT_TLS=1].
    #[arg(long)]
    smtp_implicit_tls: bool,
    /// SMTP user name [env SIMTRACK_SMTP_USER]; the password comes from $SIMTRACK_SMTP_PASSWORD
    /// or --smtp-password-file, never the command line.
    #[arg(long)]
    smtp_user: Option<String>,
    /// A file holding the SMTP password [env SIMTRACK_SMTP_PASSWORD_FILE].
    #[arg(long)]
    smtp_password_file: Option<PathBuf>,
    /// Sender address of notification emails [env SIMTRACK_SMTP_FROM, default simtrack@HOST].
    #[arg(long)]
    smtp_from: Option<String>,
    /// A PEM file of CA certificates trusted for the SMTP server besides the system's
    /// [env SIMTRACK_SMTP_CA_FILE].
    #[arg(long)]
    smtp_ca_file: Option<PathBuf>,
    /// Seconds before a failed notification is tried again, doubled after each further failure
    /// [env SIMTRACK_NOTIFY_RETRY_SECS, default 10].
    #[arg(long)]
    notify_retry_secs: Option<f64>,
    /// Longest wait between attempts [env SIMTRACK_NOTIFY_RETRY_MAX_SECS, default 3600].
    #[arg(long)]
    notify_retry_max_secs: Option<f64>,
    /// Attempts before a notification is marked failed [env SIMTRACK_NOTIFY_ATTEMPTS, default 12].
    #[arg(long)]
    notify_attempts: Option<u32>,
    /// Comma-separated addresses, networks (ADDR/LEN) and host names that webhooks may reach
    /// although they are on the server's own network (loopback, link-local, private); these
    /// are refused otherwise [env SIMTRACK_NOTIFY_ALLOW_HOSTS].
    #[arg(long)]
    notify_allow_hosts: Option<String>,
}

impl SmtpArgs {
    /// Applies the flags over the environment's settings.
    pub fn apply(&self, n: &mut NotifySettings) -> Result<(), String> {
        let secs = |v: Option<f64>, d: &mut std::time::Duration| {
            if let Some(v) = v.filter(|v| v.is_finite() && *v > 0.0) {
                *d = std::time::Duration::from_secs_f64(v.min(86_400.0));
            }
        };
        secs(self.notify_retry_secs, &mut n.retry_base);
        secs(self.notify_retry_max_secs, &mut n.retry_max);
        if let Some(a) = self.notify_attempts.filter(|a| *a >= 1) {
            n.attempts = a;
        }
        if let Some(list) = &self.notify_allow_hosts {
            n.allow_hosts =
                HostPolicy::parse(list).map_err(|e| format!("--notify-allow-hosts: {e}"))?;
        }
        if let Some(host) = &self.smtp_host {
            let from = n
                .smtp
                .as_ref()
                .map_or_else(|| format!("simtrack@{host}"), |s| s.from.clone());
            let old = n.smtp.take();
            n.smtp = Some(SmtpSettings {
                host: host.clone(),
                port: old.as_ref().and_then(|s| s.port),
                tls: old.as_ref().map_or(SmtpTls::Required, |s| s.tls),
                user: old.as_ref().and_then(|s| s.user.clone()),
                password: old.as_ref().and_then(|s| s.password.clone()),
                ca_pem: old.and_then(|s| s.ca_pem),
                from,
            });
        }
        let Some(s) = n.smtp.as_mut() else {
            let set = self.smtp_port.is_some()
                || self.smtp_starttls.is_some()
                || self.smtp_implicit_tls
                || self.smtp_user.is_some()
                || self.smtp_password_file.is_some()
                || self.smtp_from.is_some()
                || self.smtp_ca_file.is_some();
            return if set {
                Err("the --smtp-* settings need --smtp-host (or SIMTRACK_SMTP_HOST)".into())
            } else {
                Ok(())
            };
        };
        if self.smtp_port.is_some() {
            s.port = self.smtp_port;
        }
        if let Some(t) = self.smtp_starttls.as_deref().and_then(SmtpTls::parse) {
            s.tls = t;
        }
        if self.smtp_implicit_tls {
            s.tls = SmtpTls::Implicit;
        }
        if self.smtp_user.is_some() {
            s.user = self.smtp_user.clone();
        }
        if let Some(f) = &self.smtp_password_file {
            let p = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read the SMTP password file {}: {e}", f.display()))?;
            s.password = Some(p.trim_end_matches(['\r', '\n']).to_owned());
        }
        if let Some(from) = &self.smtp_from {
            s.from = from.clone();
        }
        if let Some(f) = &self.smtp_ca_file {
            s.ca_pem = Some(
                std::fs::read(f)
                    .map_err(|e| format!("cannot read the SMTP CA file {}: {e}", f.display()))?,
            );
        }
        if s.user.is_some() && s.password.is_none() {
            return Err(
                "--smtp-user needs a password: set SIMTRACK_SMTP_PASSWORD or --smtp-password-file"
                    .into(),
            );
        }
        Ok(())
    }
}

#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Add a channel through which USER is told about their runs: an email address or a webhook.
    Add {
        #[command(flatten)]
        storage: StoreArgs,
        /// The user (a token's name, shown as the runs' user).
        #[arg(long)]
        user: String,
        /// Send email to this address (needs the server's --smtp-host).
        #[arg(long, required_unless_present = "webhook", conflicts_with = "webhook")]
        email: Option<String>,
        /// POST each event to this http(s) URL.
        #[arg(long)]
        webhook: Option<String>,
        /// Webhook body: the event as JSON, or {"text": ...} for Slack and Mattermost.
        #[arg(long, value_parser = ["json", "slack"], requires = "webhook")]
        format: Option<String>,
        /// Comma-separated events: critical (an alert with notification "email" turns
        /// critical), ok (and back), failed, lost, completed [default: critical,failed,lost].
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        /// As the server's: webhook hosts allowed on the server's own network
        /// [env SIMTRACK_NOTIFY_ALLOW_HOSTS].
        #[arg(long)]
        notify_allow_hosts: Option<String>,
    },
    /// List channels (every user's, or USER's) with their last delivery.
    List {
        #[command(flatten)]
        storage: StoreArgs,
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Remove a channel (see `notify list` for ids) and its undelivered notifications.
    Remove {
        #[command(flatten)]
        storage: StoreArgs,
        /// The channel's id.
        id: String,
    },
}

/// `simtrack notify ...`
pub fn main(command: NotifyCommand) -> ExitCode {
    let (what, result) = match command {
        NotifyCommand::Add {
            storage,
            user,
            email,
            webhook,
            format,
            events,
            notify_allow_hosts,
        } => {
            let c = notify::NewChannel {
                kind: if webhook.is_some() {
                    "webhook"
                } else {
                    "email"
                }
                .to_owned(),
                target: webhook.or(email).unwrap_or_default(),
                format,
                events,
            };
            let policy = match notify_allow_hosts {
                Some(list) => {
                    HostPolicy::parse(&list).map_err(|e| format!("--notify-allow-hosts: {e}"))
                }
                None => Ok(NotifySettings::from_env().allow_hosts),
            };
            let r = policy.and_then(|policy| {
                if c.kind == "webhook" {
                    notify::check_webhook(&policy, &c.target).map_err(|e| e.detail)?;
                }
                with_store(&storage, Open::Existing, "notify add", |s| {
                    domain::write(s, |tx| notify::add_channel(tx, &user, &c)).map_err(|e| e.detail)
                })
            });
            (
                "add",
                r.map(|doc| println!("{}", doc["id"].as_str().unwrap_or_default())),
            )
        }
        NotifyCommand::List { storage, user } => {
            let r = with_store(&storage, Open::Existing, "notify list", |s| {
                domain::read(s, |tx| notify::list_channels(tx, user.as_deref()))
                    .map_err(|e| e.detail)
            });
            (
                "list",
                r.map(|doc| {
                    println!("id\tuser\tkind\ttarget\tevents\tlast delivery");
                    for c in doc["data"].as_array().into_iter().flatten() {
                        let events: Vec<&str> = c["events"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|e| e.as_str())
                            .collect();
                        let kind = match c["format"].as_str() {
                            Some(f) => format!("webhook/{f}"),
                            None => c["kind"].as_str().unwrap_or_default().to_owned(),
                        };
                        let last = &c["last_delivery"];
                        let last = if last.is_null() {
                            "-".to_owned()
                        } else {
                            let mut s = format!(
                                "{} {} ({} attempts)",
                                last["status"].as_str().unwrap_or_default(),
                                last["created"].as_str().unwrap_or_default(),
                                last["attempts"]
                            );
                            if let Some(e) = last["error"].as_str() {
                                s.push_str(&format!(": {e}"));
                            }
                            s
                        };
                        println!(
                            "{}\t{}\t{kind}\t{}\t{}\t{last}",
                            c["id"].as_str().unwrap_or_default(),
                            c["user"].as_str().unwrap_or_default(),
                            c["target"].as_str().unwrap_or_default(),
                            events.join(","),
                        );
                    }
                }),
            )
        }
        NotifyCommand::Remove { storage, id } => {
            let r = with_store(&storage, Open::Existing, "notify remove", |s| {
                domain::write(s, |tx| notify::remove_channel(tx, &id, None)).map_err(|e| e.detail)
            });
            (
                "remove",
                r.map(|_| eprintln!("simtrack notify remove: removed {id}")),
            )
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simtrack notify {what}: {e}");
            ExitCode::FAILURE
        }
    }
}
