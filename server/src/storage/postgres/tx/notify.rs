//! Notification channels and the delivery outbox (the trait methods in
//! `tx.rs` call these), as `sqlite/tx/notify.rs` does them.

use tokio_postgres::Row;

use super::{Tx, get};
use crate::storage::{ChannelRow, OutboxRow, Result};

const OUTBOX_COLUMNS: &str = "id, channel_id, owner, run_id, event, payload, created, status,
    attempts, next_at, claimed_until, last_error, sent_at";

fn channel_row(r: &Row) -> Result<ChannelRow> {
    Ok(ChannelRow {
        id: get(r, "id")?,
        owner: get(r, "owner")?,
        kind: get(r, "kind")?,
        target: get(r, "target")?,
        options: get(r, "options")?,
        created: get(r, "created")?,
    })
}

fn outbox_row(r: &Row) -> Result<OutboxRow> {
    Ok(OutboxRow {
        id: get(r, "id")?,
        channel_id: get(r, "channel_id")?,
        owner: get(r, "owner")?,
        run_id: get(r, "run_id")?,
        event: get(r, "event")?,
        payload: get(r, "payload")?,
        created: get(r, "created")?,
        status: get(r, "status")?,
        attempts: get(r, "attempts")?,
        next_at: get(r, "next_at")?,
        claimed_until: get(r, "claimed_until")?,
        last_error: get(r, "last_error")?,
        sent_at: get(r, "sent_at")?,
    })
}

impl Tx<'_> {
    pub(super) fn channels(&self, owner: Option<&str>) -> Result<Vec<ChannelRow>> {
        self.rows(
            "SELECT id, owner, kind, target, options, created FROM notify_channels
             WHERE $1::text IS NULL OR owner = $1 ORDER BY created, id",
            &[&owner],
        )?
        .iter()
        .map(channel_row)
        .collect()
    }

    pub(super) fn outbox(
        &self,
        owner: Option<&str>,
        run: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>> {
        self.rows(
            &format!(
                "SELECT {OUTBOX_COLUMNS} FROM notify_outbox
                 WHERE ($1::text IS NULL OR owner = $1) AND ($2::text IS NULL OR run_id = $2)
                 ORDER BY created DESC, id DESC LIMIT $3"
            ),
            &[&owner, &run, &(limit as i64)],
        )?
        .iter()
        .map(outbox_row)
        .collect()
    }

    pub(super) fn due(&self, now: i64) -> Result<u64> {
        let n: Option<i64> = self.value(
            "SELECT COUNT(*) FROM notify_outbox WHERE status IN ('pending', 'retrying')
             AND next_at <= $1 AND claimed_until <= $1",
            &[&now],
        )?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    pub(super) fn channel_insert(&self, c: &ChannelRow) -> Result<()> {
        self.exec(
            "INSERT INTO notify_channels (id, owner, kind, target, options, created)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&c.id, &c.owner, &c.kind, &c.target, &c.options, &c.created],
        )?;
        Ok(())
    }

    pub(super) fn channel_delete(&self, id: &str) -> Result<bool> {
        let n = self.exec("DELETE FROM notify_channels WHERE id = $1", &[&id])?;
        self.exec(
            "DELETE FROM notify_outbox WHERE channel_id = $1
             AND status IN ('pending', 'retrying')",
            &[&id],
        )?;
        Ok(n > 0)
    }

    pub(super) fn outbox_add(&self, o: &OutboxRow) -> Result<()> {
        self.exec(
            &format!(
                "INSERT INTO notify_outbox ({OUTBOX_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ),
            &[
                &o.id,
                &o.channel_id,
                &o.owner,
                &o.run_id,
                &o.event,
                &o.payload,
                &o.created,
                &o.status,
                &o.attempts,
                &o.next_at,
                &o.claimed_until,
                &o.last_error,
                &o.sent_at,
            ],
        )?;
        Ok(())
    }

    /// Write transactions already hold the store's write lock, so claims
    /// are serialised across replicas; `FOR UPDATE SKIP LOCKED` keeps the
    /// claim correct on its own too (a row another transaction is
    /// claiming is skipped, never handed out twice).
    pub(super) fn claim(&self, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxRow>> {
        self.rows(
            &format!(
                "UPDATE notify_outbox SET claimed_until = $2 WHERE id IN (
                     SELECT id FROM notify_outbox
                     WHERE status IN ('pending', 'retrying') AND next_at <= $1
                     AND claimed_until <= $1 ORDER BY next_at, id LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                 RETURNING {OUTBOX_COLUMNS}"
            ),
            &[&now, &until, &(limit as i64)],
        )?
        .iter()
        .map(outbox_row)
        .collect()
    }

    pub(super) fn finish(
        &self,
        id: &str,
        status: &str,
        attempts: i64,
        next_at: i64,
        error: Option<&str>,
        sent_at: Option<i64>,
    ) -> Result<()> {
        self.exec(
            "UPDATE notify_outbox SET status = $2, attempts = $3, next_at = $4,
             last_error = $5, sent_at = $6, claimed_until = 0 WHERE id = $1",
            &[&id, &status, &attempts, &next_at, &error, &sent_at],
        )?;
        Ok(())
    }

    pub(super) fn purge(&self, before: i64) -> Result<usize> {
        Ok(self.exec(
            "DELETE FROM notify_outbox WHERE status IN ('sent', 'failed') AND created < $1",
            &[&before],
        )? as usize)
    }
}
