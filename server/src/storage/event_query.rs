//! Conditions on a run's events the database evaluates
//! ([`super::ReadTx::events_visit_where`], [`super::ReadTx::events_count_where`]):
//! a filtered page of a run with millions of events reads the matching
//! rows, not every row.
//!
//! The domain decides what may be asked this way (the filters whose meaning
//! these conditions express exactly, or as a superset it checks again); the
//! backends render the tree with [`Sql`] in their dialect, binding every
//! value.

use super::run_query::Sql;

/// The level the index on levels (`events_run_level`) leaves out.
const INFO: &str = "info";

/// An event column a condition reads (both are never NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventField {
    Level,
    Message,
}

/// A condition on an event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventPred {
    /// Every event.
    True,
    And(Vec<EventPred>),
    Or(Vec<EventPred>),
    Not(Box<EventPred>),
    /// The field equals the text (byte for byte).
    Eq(EventField, String),
    /// The field holds the text as a substring (byte for byte).
    Contains(EventField, String),
    /// The field with its ASCII letters lowered holds the text (ASCII,
    /// lower case) as a substring.
    AsciiLowerContains(EventField, String),
    /// The field holds a character beyond ASCII.
    NonAscii(EventField),
}

impl Sql {
    fn event_col(f: EventField) -> &'static str {
        match f {
            EventField::Level => "log_level",
            EventField::Message => "message",
        }
    }

    /// The condition as SQL over the `events` table: true or false for
    /// every event, never NULL (the columns are NOT NULL).
    pub fn event_pred(&mut self, p: &EventPred) -> String {
        match p {
            EventPred::True => self.truthy().to_owned(),
            EventPred::And(v) if v.is_empty() => self.truthy().to_owned(),
            EventPred::Or(v) if v.is_empty() => self.falsy().to_owned(),
            EventPred::And(v) | EventPred::Or(v) => {
                let join = if matches!(p, EventPred::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<String> = v.iter().map(|x| self.event_pred(x)).collect();
                format!("({})", parts.join(join))
            }
            EventPred::Not(x) => format!("(NOT {})", self.event_pred(x)),
            EventPred::Eq(EventField::Level, v) if v != INFO => {
                // Spelled as the partial index on levels says, so that the
                // planner knows it holds every matching event.
                let b = self.text(v);
                format!("(log_level = {b} AND log_level <> '{INFO}')")
            }
            EventPred::Eq(f, v) => {
                let b = self.text(v);
                format!("({} = {b})", Sql::event_col(*f))
            }
            EventPred::Contains(f, v) => {
                let b = self.text(v);
                let c = Sql::event_col(*f);
                if self.pg() {
                    format!("(strpos({c}, {b}) > 0)")
                } else {
                    format!("(instr({c}, {b}) > 0)")
                }
            }
            EventPred::AsciiLowerContains(f, v) => {
                let b = self.text(v);
                let c = Sql::event_col(*f);
                // SQLite's lower() folds ASCII only; PostgreSQL's follows
                // the collation's locale, and folds ASCII only under "C"
                // (several times faster than spelling out the letters with
                // translate()).
                if self.pg() {
                    format!("(strpos(lower({c} COLLATE \"C\"), {b}) > 0)")
                } else {
                    format!("(instr(lower({c}), {b}) > 0)")
                }
            }
            EventPred::NonAscii(f) => {
                let c = Sql::event_col(*f);
                if self.pg() {
                    format!("(octet_length({c}) <> char_length({c}))")
                } else {
                    // length() stops at a NUL: such text counts as beyond
                    // ASCII too (only ever asked for a superset).
                    format!("(length(CAST({c} AS BLOB)) <> length({c}))")
                }
            }
        }
    }
}
