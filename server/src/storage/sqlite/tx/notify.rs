//! Notification channels and the delivery outbox (the trait methods in
//! `tx.rs` call these).

use rusqlite::{Row, params};

use super::Tx;
use crate::storage::sqlite::db;
use crate::storage::{ChannelRow, OutboxRow, Result};

const OUTBOX_COLUMNS: &str = "id, channel_id, owner, run_id, event, payload, created, status,
    attempts, next_at, claimed_until, last_error, sent_at";

fn channel_row(r: &Row) -> rusqlite::Result<ChannelRow> {
    Ok(ChannelRow {
        id: r.get("id")?,
        owner: r.get("owner")?,
        kind: r.get("kind")?,
        target: r.get("target")?,
        options: r.get("options")?,
        created: r.get("created")?,
    })
}

fn outbox_row(r: &Row) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get("id")?,
        channel_id: r.get("channel_id")?,
        owner: r.get("owner")?,
        run_id: r.get("run_id")?,
        event: r.get("event")?,
        payload: r.get("payload")?,
        created: r.get("created")?,
        status: r.get("status")?,
        attempts: r.get("attempts")?,
        next_at: r.get("next_at")?,
        claimed_until: r.get("claimed_until")?,
        last_error: r.get("last_error")?,
        sent_at: r.get("sent_at")?,
    })
}

impl Tx<'_> {
    pub(super) fn channels(&self, owner: Option<&str>) -> Result<Vec<ChannelRow>> {
        self.0
            .prepare_cached(
                "SELECT id, owner, kind, target, options, created FROM notify_channels
                 WHERE ?1 IS NULL OR owner = ?1 ORDER BY created, id",
            )
            .and_then(|mut s| s.query_map(params![owner], channel_row)?.collect())
            .map_err(db)
    }

    pub(super) fn outbox(
        &self,
        owner: Option<&str>,
        run: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>> {
        self.0
            .prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM notify_outbox
                 WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR run_id = ?2)
                 ORDER BY created DESC, id DESC LIMIT ?3"
            ))
            .and_then(|mut s| {
                s.query_map(params![owner, run, limit as i64], outbox_row)?
                    .collect()
            })
            .map_err(db)
    }

    pub(super) fn due(&self, now: i64) -> Result<u64> {
        self.0
            .query_row(
                "SELECT COUNT(*) FROM notify_outbox WHERE status IN ('pending', 'retrying')
                 AND next_at <= ?1 AND claimed_until <= ?1",
                params![now],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(db)
    }

    pub(super) fn channel_insert(&self, c: &ChannelRow) -> Result<()> {
        self.0
            .execute(
                "INSERT INTO notify_channels (id, owner, kind, target, options, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![c.id, c.owner, c.kind, c.target, c.options, c.created],
            )
            .map_err(db)?;
        Ok(())
    }

    pub(super) fn channel_delete(&self, id: &str) -> Result<bool> {
        let n = self
            .0
            .execute("DELETE FROM notify_channels WHERE id = ?1", params![id])
            .map_err(db)?;
        self.0
            .execute(
                "DELETE FROM notify_outbox WHERE channel_id = ?1
                 AND status IN ('pending', 'retrying')",
                params![id],
            )
            .map_err(db)?;
        Ok(n > 0)
    }

    pub(super) fn outbox_add(&self, o: &OutboxRow) -> Result<()> {
        self.0
            .prepare_cached(&format!(
                "INSERT INTO notify_outbox ({OUTBOX_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    o.id,
                    o.channel_id,
                    o.owner,
                    o.run_id,
                    o.event,
                    o.payload,
                    o.created,
                    o.status,
                    o.attempts,
                    o.next_at,
                    o.claimed_until,
                    o.last_error,
                    o.sent_at
                ])
            })
            .map_err(db)?;
        Ok(())
    }

    /// The single writer serialises claims: the select and the update run
    /// in one write transaction no other claim can interleave with.
    pub(super) fn claim(&self, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxRow>> {
        let mut rows: Vec<OutboxRow> = self
            .0
            .prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM notify_outbox
                 WHERE status IN ('pending', 'retrying') AND next_at <= ?1
                 AND claimed_until <= ?1 ORDER BY next_at, id LIMIT ?2"
            ))
            .and_then(|mut s| {
                s.query_map(params![now, limit as i64], outbox_row)?
                    .collect()
            })
            .map_err(db)?;
        for r in &mut rows {
            self.0
                .execute(
                    "UPDATE notify_outbox SET claimed_until = ?2 WHERE id = ?1",
                    params![r.id, until],
                )
                .map_err(db)?;
            r.claimed_until = until;
        }
        Ok(rows)
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
        self.0
            .execute(
                "UPDATE notify_outbox SET status = ?2, attempts = ?3, next_at = ?4,
                 last_error = ?5, sent_at = ?6, claimed_until = 0 WHERE id = ?1",
                params![id, status, attempts, next_at, error, sent_at],
            )
            .map_err(db)?;
        Ok(())
    }

    pub(super) fn purge(&self, before: i64) -> Result<usize> {
        self.0
            .execute(
                "DELETE FROM notify_outbox WHERE status IN ('sent', 'failed') AND created < ?1",
                params![before],
            )
            .map_err(db)
    }
}
