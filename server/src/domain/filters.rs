//! The Simvue list filter language (`filters=["status == running", "has
//! tag.t1", "metadata.lr > 0.1", ...]`), evaluated against the JSON
//! documents the API returns. Filters are ANDed.

use serde_json::Value;

use super::Error;
use crate::storage::{EventField, EventPred, RunField, RunPred, TextCmp};
use crate::util::{now_us, parse_ts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Contains,
    NotContains,
    /// Case-insensitive `contains` (the UI's name search).
    IContains,
    /// A folder and everything below it: `folder.path under /cfd` matches
    /// `/cfd` and `/cfd/airfoil`, never `/cfd2`; a trailing slash is ignored.
    Under,
    Exists,
    NotExists,
    HasTag,
    HasNotTag,
    Starred,
    /// A boolean expression over filters ([`parse_expr`]).
    Expr,
}

/// An expression of the UI's search box: filters joined by `AND`, `OR`,
/// `NOT` and parentheses.
#[derive(Debug, Clone)]
enum Node {
    Leaf(Filter),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

impl Node {
    fn eval(&self, doc: &Value, me: &str) -> bool {
        match self {
            Node::Leaf(f) => f.matches(doc, me),
            Node::And(v) => v.iter().all(|n| n.eval(doc, me)),
            Node::Or(v) => v.iter().any(|n| n.eval(doc, me)),
            Node::Not(n) => !n.eval(doc, me),
        }
    }
    fn run_pred(&self, me: &str) -> Option<(RunPred, bool)> {
        match self {
            Node::Leaf(f) => f.run_pred(me),
            Node::And(v) => and_preds(v.iter().map(|n| n.run_pred(me))),
            // A superset of a disjunction needs one of every branch.
            Node::Or(v) => {
                let mut out = Vec::new();
                let mut exact = true;
                for n in v {
                    let (p, e) = n.run_pred(me)?;
                    exact &= e;
                    out.push(p);
                }
                Some((RunPred::Or(out), exact))
            }
            // The complement of a superset is no superset of anything.
            Node::Not(n) => match n.run_pred(me)? {
                (p, true) => Some((RunPred::Not(Box::new(p)), true)),
                _ => None,
            },
        }
    }
    fn fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Node::Leaf(f) => out.extend(f.fields()),
            Node::And(v) | Node::Or(v) => v.iter().for_each(|n| n.fields(out)),
            Node::Not(n) => n.fields(out),
        }
    }
}

/// One parsed filter.
#[derive(Debug, Clone)]
pub struct Filter {
    lhs: String,
    op: Op,
    rhs: String,
    expr: Option<Box<Node>>,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Leaf(String),
}

/// Splits an expression into parentheses, `AND`/`OR`/`NOT` (upper case,
/// whole words, outside quotes) and the filter text between them.
fn tokens(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let flush = |cur: &mut String, out: &mut Vec<Tok>| {
        let t = cur.trim();
        if !t.is_empty() {
            out.push(Tok::Leaf(t.to_owned()));
        }
        cur.clear();
    };
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            cur.push(c);
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        let at_word = i == 0 || chars[i - 1].is_whitespace() || chars[i - 1] == '(';
        let word = |w: &str| {
            at_word
                && chars[i..].iter().take(w.len()).copied().eq(w.chars())
                && chars
                    .get(i + w.len())
                    .is_none_or(|c| c.is_whitespace() || *c == '(')
        };
        if c == '"' || c == '\'' {
            quote = Some(c);
            cur.push(c);
        } else if c == '(' && cur.trim().is_empty() {
            flush(&mut cur, &mut out);
            out.push(Tok::Open);
        } else if c == ')'
            && quote.is_none()
            && out.iter().filter(|t| **t == Tok::Open).count()
                > out.iter().filter(|t| **t == Tok::Close).count()
        {
            flush(&mut cur, &mut out);
            out.push(Tok::Close);
        } else if word("AND") || word("OR") || word("NOT") {
            flush(&mut cur, &mut out);
            let (t, n) = if word("AND") {
                (Tok::And, 3)
            } else if word("OR") {
                (Tok::Or, 2)
            } else {
                (Tok::Not, 3)
            };
            out.push(t);
            i += n;
            continue;
        } else {
            cur.push(c);
        }
        i += 1;
    }
    flush(&mut cur, &mut out);
    out
}

struct ExprParser {
    toks: Vec<Tok>,
    at: usize,
}

impl ExprParser {
    fn or(&mut self) -> Result<Node, Error> {
        let mut v = vec![self.and()?];
        while self.toks.get(self.at) == Some(&Tok::Or) {
            self.at += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Node::Or(v)
        })
    }
    fn and(&mut self) -> Result<Node, Error> {
        let mut v = vec![self.not()?];
        loop {
            match self.toks.get(self.at) {
                Some(Tok::And) => self.at += 1,
                // `a NOT b` reads as `a AND NOT b`.
                Some(Tok::Not | Tok::Open | Tok::Leaf(_)) => {}
                _ => break,
            }
            v.push(self.not()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Node::And(v)
        })
    }
    fn not(&mut self) -> Result<Node, Error> {
        match self.toks.get(self.at) {
            Some(Tok::Not) => {
                self.at += 1;
                Ok(Node::Not(Box::new(self.not()?)))
            }
            Some(Tok::Open) => {
                self.at += 1;
                let n = self.or()?;
                if self.toks.get(self.at) != Some(&Tok::Close) {
                    return Err(Error::invalid("a '(' is not closed"));
                }
                self.at += 1;
                Ok(n)
            }
            Some(Tok::Leaf(t)) => {
                let t = t.clone();
                self.at += 1;
                Ok(Node::Leaf(parse(&t)?))
            }
            Some(t) => Err(Error::invalid(format!(
                "expected a filter, found {}",
                match t {
                    Tok::And => "AND",
                    Tok::Or => "OR",
                    _ => "')'",
                }
            ))),
            None => Err(Error::invalid(
                "the expression ends where a filter should be",
            )),
        }
    }
}

/// Parses `status == running AND (metadata.nx > 64 OR NOT has tag.test)`:
/// filters of the Simvue language joined by `AND`, `OR`, `NOT` and
/// parentheses (`a NOT b` means `a AND NOT b`).
pub fn parse_expr(s: &str) -> Result<Filter, Error> {
    if s.len() > 4096 {
        return Err(Error::invalid("filter is too long"));
    }
    let mut p = ExprParser {
        toks: tokens(s),
        at: 0,
    };
    let n = p.or()?;
    if p.at != p.toks.len() {
        return Err(Error::invalid("unexpected ')'"));
    }
    Ok(Filter {
        lhs: String::new(),
        op: Op::Expr,
        rhs: String::new(),
        expr: Some(Box::new(n)),
    })
}

/// Parses every filter of a `filters` query parameter.
/// Refuses a filter on a field no document of the list (`what`) has: it
/// would match nothing, or with `!=`, `not contains` or `not exists`,
/// everything. `known` decides; `accepted` says what is, in the message.
pub fn check_fields(
    fs: &[Filter],
    what: &str,
    known: impl Fn(&str) -> bool,
    accepted: &str,
) -> Result<(), Error> {
    for f in fs {
        if let Some(field) = f.fields().into_iter().find(|k| !known(k)) {
            return Err(Error::invalid(format!(
                "{what} have no field '{field}' to filter on; {what} filter on {accepted}"
            )));
        }
    }
    Ok(())
}

pub fn parse_all(items: &[String]) -> Result<Vec<Filter>, Error> {
    items.iter().map(|s| parse(s)).collect()
}

/// Parses one filter expression.
pub fn parse(s: &str) -> Result<Filter, Error> {
    let s = s.trim();
    let bad = || Error::invalid(format!("unsupported filter '{s}'"));
    if s.len() > 4096 {
        return Err(Error::invalid("filter is too long"));
    }
    if s == "starred" {
        return Ok(Filter {
            lhs: String::new(),
            op: Op::Starred,
            rhs: String::new(),
            expr: None,
        });
    }
    for (prefix, op) in [
        ("has not tag.", Op::HasNotTag),
        // Newer simvue clients' `exclude_tag`.
        ("does not have tag.", Op::HasNotTag),
        ("has tag.", Op::HasTag),
    ] {
        if let Some(tag) = s.strip_prefix(prefix) {
            return Ok(Filter {
                lhs: "tags".into(),
                op,
                rhs: tag.to_owned(),
                expr: None,
            });
        }
    }
    let (lhs, rest) = s.split_once(' ').ok_or_else(bad)?;
    // The simvue client's `ended_within` says `ended` for a run's end time.
    let lhs = if lhs == "ended" { "endtime" } else { lhs };
    let rest = rest.trim_start();
    let ops = [
        ("not contains ", Op::NotContains),
        ("contains ", Op::Contains),
        ("icontains ", Op::IContains),
        ("under ", Op::Under),
        ("== ", Op::Eq),
        ("!= ", Op::Ne),
        (">= ", Op::Ge),
        ("<= ", Op::Le),
        ("> ", Op::Gt),
        ("< ", Op::Lt),
    ];
    if rest == "exists" {
        return Ok(Filter {
            lhs: lhs.into(),
            op: Op::Exists,
            rhs: String::new(),
            expr: None,
        });
    }
    if rest == "not exists" {
        return Ok(Filter {
            lhs: lhs.into(),
            op: Op::NotExists,
            rhs: String::new(),
            expr: None,
        });
    }
    for (tok, op) in ops {
        if let Some(rhs) = rest.strip_prefix(tok) {
            // "Euler" and 'Euler' are the value Euler.
            let rhs = rhs.trim();
            let rhs = ['"', '\'']
                .iter()
                .find_map(|q| rhs.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
                .unwrap_or(rhs);
            let f = Filter {
                lhs: lhs.into(),
                op,
                rhs: rhs.to_owned(),
                expr: None,
            };
            f.check_time(s)?;
            return Ok(f);
        }
    }
    Err(bad())
}

/// The value a time field is compared with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TimeValue {
    /// `3h`, `2d`: this long before now (microseconds).
    Age(i64),
    /// A date (`2026-12-01`, the whole day) or a time (`2026-12-01 14:00`,
    /// `2026-12-01T14:00:00.5`), UTC, as microseconds since the epoch.
    Day(i64),
    At(i64),
}

const DAY_US: i64 = 86_400_000_000;

fn time_value(rhs: &str) -> Option<TimeValue> {
    if let Some(a) = age_us(rhs) {
        return Some(TimeValue::Age(a));
    }
    let t = rhs.trim().trim_end_matches('Z');
    match t.len() {
        10 => parse_ts(&format!("{t}T00:00:00")).map(TimeValue::Day),
        16 => parse_ts(&format!("{t}:00")).map(TimeValue::At),
        _ => parse_ts(t).map(TimeValue::At),
    }
}

fn path<'a>(doc: &'a Value, keys: &str) -> Option<&'a Value> {
    keys.split('.').try_fold(doc, |v, k| v.get(k))
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn compare(v: &Value, op: Op, rhs: &str) -> bool {
    let num = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    if let (Some(a), Ok(b)) = (num, rhs.parse::<f64>())
        && !matches!(
            op,
            Op::Contains | Op::NotContains | Op::IContains | Op::Under
        )
    {
        return match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Gt => a > b,
            Op::Lt => a < b,
            Op::Ge => a >= b,
            Op::Le => a <= b,
            _ => false,
        };
    }
    let text = as_text(v);
    let eq = if let Value::Bool(b) = v {
        rhs.eq_ignore_ascii_case(&b.to_string())
    } else {
        text == rhs
    };
    match op {
        Op::Eq => eq,
        Op::Ne => !eq,
        Op::Contains => text.contains(rhs),
        Op::NotContains => !text.contains(rhs),
        Op::IContains => text.to_lowercase().contains(&rhs.to_lowercase()),
        Op::Under => {
            let base = rhs.trim_end_matches('/');
            base.is_empty()
                || text == base
                || text
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
        Op::Gt => text.as_str() > rhs,
        Op::Lt => text.as_str() < rhs,
        Op::Ge => text.as_str() >= rhs,
        Op::Le => text.as_str() <= rhs,
        _ => false,
    }
}

/// Whether a time `t` compares with `value` by `op` at `now` (all in
/// microseconds): an age is "within the last" for `<`, `<=` and "longer
/// ago" for `>`, `>=`; a date is its whole day for `==`, `!=` and its
/// first moment for the orderings.
fn time_compare(t: i64, op: Op, value: TimeValue, now: i64) -> bool {
    match value {
        TimeValue::Age(age) => {
            let cutoff = now - age;
            match op {
                Op::Lt | Op::Le => t >= cutoff,
                Op::Gt | Op::Ge => t < cutoff,
                _ => false,
            }
        }
        TimeValue::Day(day) if matches!(op, Op::Eq | Op::Ne) => {
            (day..day + DAY_US).contains(&t) == (op == Op::Eq)
        }
        TimeValue::Day(at) | TimeValue::At(at) => match op {
            Op::Eq => t == at,
            Op::Ne => t != at,
            Op::Lt => t < at,
            Op::Le => t <= at,
            Op::Gt => t > at,
            Op::Ge => t >= at,
            _ => false,
        },
    }
}

/// `"3h"`, `"2d"`, `"1y"`, `"30m"` as microseconds.
fn age_us(rhs: &str) -> Option<i64> {
    let rhs = rhs.trim();
    let (n, unit) = rhs.split_at(rhs.len().checked_sub(1)?);
    let n: f64 = n.trim().parse().ok()?;
    let unit_s = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        "y" => 31_557_600.0,
        _ => return None,
    };
    Some((n * unit_s * 1e6) as i64)
}

impl Filter {
    /// The document field the filter reads (`tags` for tag filters, empty
    /// for `starred`), so a caller can skip building fields nobody reads.
    pub fn field(&self) -> &str {
        &self.lhs
    }

    /// Every document field the filter reads (several for an expression).
    pub fn fields(&self) -> Vec<&str> {
        match &self.expr {
            Some(n) => {
                let mut out = Vec::new();
                n.fields(&mut out);
                out
            }
            None if self.op == Op::Starred => vec!["starred"],
            None => vec![self.lhs.as_str()],
        }
    }

    /// Whether `doc` (a run, folder or event document) passes.
    pub fn matches(&self, doc: &Value, me: &str) -> bool {
        let candidates: Vec<Value> = match self.op {
            Op::Starred => return doc.get("starred").and_then(Value::as_bool).unwrap_or(false),
            Op::Expr => return self.expr.as_ref().is_some_and(|n| n.eval(doc, me)),
            Op::HasTag | Op::HasNotTag => {
                let has = doc
                    .get("tags")
                    .and_then(Value::as_array)
                    .is_some_and(|t| t.iter().any(|x| x.as_str() == Some(self.rhs.as_str())));
                return has == (self.op == Op::HasTag);
            }
            _ => self.resolve(doc, me),
        };
        match self.op {
            Op::Exists => !candidates.is_empty(),
            Op::NotExists => candidates.is_empty(),
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge if self.is_time() => {
                let Some(value) = time_value(&self.rhs) else {
                    return false;
                };
                let now = now_us();
                let mut times = candidates
                    .iter()
                    .filter_map(|v| v.as_str().and_then(parse_ts));
                let pass = |t: i64| time_compare(t, self.op, value, now);
                if self.op == Op::Ne {
                    times.all(pass)
                } else {
                    times.any(pass)
                }
            }
            Op::Ne | Op::NotContains => candidates.iter().all(|v| compare(v, self.op, &self.rhs)),
            _ => candidates.iter().any(|v| compare(v, self.op, &self.rhs)),
        }
    }

    /// What the database can evaluate of this filter on runs, with the
    /// meaning [`Filter::matches`] gives it on a run's document: `(pred,
    /// exact)`, exact or a superset ([`run_pred_all`]); `None` when it
    /// cannot (metadata, times, alerts, and comparisons with a value that
    /// reads as a number, which compare numerically).
    fn run_pred(&self, me: &str) -> Option<(RunPred, bool)> {
        let exact = |p| Some((p, true));
        let not = |p| RunPred::Not(Box::new(p));
        let field = match self.op {
            Op::Starred => return exact(RunPred::Starred),
            Op::Expr => return self.expr.as_ref()?.run_pred(me),
            Op::HasTag => return exact(RunPred::HasTag(self.rhs.clone())),
            Op::HasNotTag => return exact(not(RunPred::HasTag(self.rhs.clone()))),
            _ => match self.lhs.as_str() {
                "name" => RunField::Name,
                "status" => RunField::Status,
                "id" => RunField::Id,
                "description" => RunField::Description,
                "folder" | "folder.path" => RunField::Folder,
                "user" => RunField::User,
                _ => return None,
            },
        };
        let rhs = self.rhs.clone();
        if field == RunField::User && rhs == "self" {
            // The caller's own runs read as `self`.
            let me = RunPred::Or(vec![
                RunPred::Eq(field, me.to_owned()),
                RunPred::Eq(field, rhs),
            ]);
            return match self.op {
                Op::Eq => exact(me),
                Op::Ne => exact(not(me)),
                _ => None,
            };
        }
        let numeric = rhs.parse::<f64>().is_ok();
        let cmp = |c| (!numeric).then(|| (RunPred::Cmp(field, c, rhs.clone()), true));
        match self.op {
            Op::Exists => exact(RunPred::NotNull(field)),
            Op::NotExists => exact(not(RunPred::NotNull(field))),
            Op::Eq if !numeric => exact(RunPred::Eq(field, rhs)),
            Op::Ne if !numeric => exact(not(RunPred::Eq(field, rhs))),
            Op::Gt => cmp(TextCmp::Gt),
            Op::Lt => cmp(TextCmp::Lt),
            Op::Ge => cmp(TextCmp::Ge),
            Op::Le => cmp(TextCmp::Le),
            Op::Contains => exact(RunPred::Contains(field, rhs)),
            Op::NotContains => exact(not(RunPred::Contains(field, rhs))),
            // Exact on ASCII text; text beyond ASCII is left to
            // `matches` (Unicode lower case).
            Op::IContains if rhs.is_ascii() => Some((
                RunPred::Or(vec![
                    RunPred::AsciiLowerContains(field, rhs.to_ascii_lowercase()),
                    RunPred::NonAscii(field),
                ]),
                false,
            )),
            Op::Under => {
                let base = rhs.trim_end_matches('/');
                if base.is_empty() {
                    exact(RunPred::NotNull(field))
                } else {
                    exact(RunPred::Under(field, base.to_owned()))
                }
            }
            _ => None,
        }
    }

    /// What the database can evaluate of this filter on an event, with
    /// the meaning [`Filter::matches`] gives it on an event's document
    /// (`message`, `log_level`, `timestamp`): `(pred, exact)`, exact or a
    /// superset; `None` when it cannot (times, orderings, `exists`, other
    /// fields, and `==`/`!=` with a value that reads as a number, which
    /// compare numerically).
    fn event_pred(&self) -> Option<(EventPred, bool)> {
        let field = match (self.op, self.lhs.as_str()) {
            (Op::Expr, _) => return None,
            (_, "log_level") => EventField::Level,
            (_, "message" | "event.message") => EventField::Message,
            _ => return None,
        };
        let rhs = self.rhs.clone();
        let numeric = rhs.parse::<f64>().is_ok();
        let not = |p| EventPred::Not(Box::new(p));
        match self.op {
            Op::Eq if !numeric => Some((EventPred::Eq(field, rhs), true)),
            Op::Ne if !numeric => Some((not(EventPred::Eq(field, rhs)), true)),
            Op::Contains => Some((EventPred::Contains(field, rhs), true)),
            Op::NotContains => Some((not(EventPred::Contains(field, rhs)), true)),
            // Unicode lower case: on ASCII text it is ASCII lower case,
            // which the database does; text beyond ASCII is left to
            // `matches` (an ASCII text never holds a lowered needle beyond
            // ASCII).
            Op::IContains => {
                let needle = rhs.to_lowercase();
                let beyond = EventPred::NonAscii(field);
                Some(if needle.is_ascii() {
                    let ascii = EventPred::AsciiLowerContains(field, needle);
                    (EventPred::Or(vec![ascii, beyond]), false)
                } else {
                    (beyond, false)
                })
            }
            _ => None,
        }
    }

    /// A comparison of a time field must compare it with a time or an
    /// age; an age is "within the last" (`<`) or "longer ago" (`>`), not a
    /// point in time to be equal to.
    fn check_time(&self, text: &str) -> Result<(), Error> {
        let ordering = matches!(self.op, Op::Lt | Op::Le | Op::Gt | Op::Ge);
        if !self.is_time() || !(ordering || matches!(self.op, Op::Eq | Op::Ne)) {
            return Ok(());
        }
        match time_value(&self.rhs) {
            Some(TimeValue::Age(_)) if !ordering => Err(Error::invalid(format!(
                "'{text}': an age compares with < (within the last {0}) or > (more than {0} ago)",
                self.rhs
            ))),
            Some(_) => Ok(()),
            None => Err(Error::invalid(format!(
                "'{text}': {} compares with an age (30m, 3h, 2d, 1w, 1y) or a UTC date or time \
                 (2026-12-01, 2026-12-01 14:00, 2026-12-01T14:00:00)",
                self.lhs
            ))),
        }
    }

    fn is_time(&self) -> bool {
        matches!(
            self.lhs.as_str(),
            "created" | "started" | "endtime" | "modified"
        )
    }

    fn resolve(&self, doc: &Value, me: &str) -> Vec<Value> {
        let lhs = self.lhs.as_str();
        let one = |v: Option<&Value>| {
            v.filter(|v| !v.is_null())
                .cloned()
                .into_iter()
                .collect::<Vec<_>>()
        };
        match lhs {
            "user" => {
                let u = doc.get("user").cloned().unwrap_or(Value::Null);
                let rhs_self = self.rhs == "self";
                if rhs_self {
                    vec![Value::String(if u.as_str() == Some(me) {
                        "self".into()
                    } else {
                        as_text(&u)
                    })]
                } else {
                    vec![u]
                }
            }
            "folder.path" | "folder" => one(doc.get("folder").or_else(|| doc.get("path"))),
            "event.message" => one(doc.get("message")),
            // One candidate per critical alert: whether it was
            // acknowledged (`alert.acknowledged == false`: a run with a
            // critical alert nobody acknowledged yet).
            "alert.acknowledged" => doc
                .get("alerts")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|x| x.get("status").and_then(Value::as_str) == Some("critical"))
                        .map(|x| Value::Bool(x.get("acknowledged").is_some_and(|k| !k.is_null())))
                        .collect()
                })
                .unwrap_or_default(),
            "alert.name" | "alert.status" | "alert.id" => {
                let key = &lhs["alert.".len()..];
                doc.get("alerts")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| {
                                if key == "status" {
                                    x.get("status")
                                } else {
                                    x.get("alert")?.get(key)
                                }
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
            }
            _ => one(path(doc, lhs)),
        }
    }
}

/// The conjunction of run predicates (`None`: not expressible, so a
/// superset of every run): exact when each part is there and exact.
fn and_preds(parts: impl Iterator<Item = Option<(RunPred, bool)>>) -> Option<(RunPred, bool)> {
    let mut out = Vec::new();
    let mut exact = true;
    for p in parts {
        match p {
            Some((p, e)) => {
                exact &= e;
                out.push(p);
            }
            None => exact = false,
        }
    }
    (!out.is_empty()).then_some((RunPred::And(out), exact))
}

/// What the database can evaluate of `filters` (ANDed) for caller `me`:
/// `(predicate, exact)`. Exact: a run satisfies the predicate exactly when
/// it passes every filter; otherwise the predicate selects a superset
/// (the filters must still be applied). `None`: nothing expressible.
pub fn run_pred_all(filters: &[Filter], me: &str) -> Option<(RunPred, bool)> {
    if filters.is_empty() {
        return Some((RunPred::True, true));
    }
    and_preds(filters.iter().map(|f| f.run_pred(me)))
}

/// What the database can evaluate of `filters` (ANDed) on a run's events:
/// `(predicate, exact)` as [`run_pred_all`] answers for runs, with
/// [`EventPred::True`] (exact only when there are no filters) when nothing
/// is expressible.
pub fn event_pred_all(filters: &[Filter]) -> (EventPred, bool) {
    let mut out = Vec::new();
    let mut exact = true;
    for f in filters {
        match f.event_pred() {
            Some((p, e)) => {
                exact &= e;
                out.push(p);
            }
            None => exact = false,
        }
    }
    match out.len() {
        0 => (EventPred::True, exact),
        1 => (out.remove(0), exact),
        _ => (EventPred::And(out), exact),
    }
}

/// Whether every filter passes.
pub fn all(filters: &[Filter], doc: &Value, me: &str) -> bool {
    filters.iter().all(|f| f.matches(doc, me))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_filters_the_database_answers() {
        let pred = |fs: &[&str]| {
            let fs: Vec<String> = fs.iter().map(|s| s.to_string()).collect();
            event_pred_all(&parse_all(&fs).unwrap())
        };
        let level = |v: &str| EventPred::Eq(EventField::Level, v.into());
        let msg = EventField::Message;
        assert_eq!(pred(&[]), (EventPred::True, true));
        assert_eq!(pred(&["log_level == error"]), (level("error"), true));
        assert_eq!(
            pred(&["event.message not contains 50%_"]),
            (
                EventPred::Not(Box::new(EventPred::Contains(msg, "50%_".into()))),
                true
            )
        );
        // Case-insensitive: a superset (text beyond ASCII), checked again.
        assert_eq!(
            pred(&["message icontains ERR"]),
            (
                EventPred::Or(vec![
                    EventPred::AsciiLowerContains(msg, "err".into()),
                    EventPred::NonAscii(msg)
                ]),
                false
            )
        );
        assert_eq!(
            pred(&["message icontains Ünï"]),
            (EventPred::NonAscii(msg), false)
        );
        // Numbers compare as numbers; other fields and orderings stay in
        // Rust, the rest narrows the events read.
        assert_eq!(pred(&["message == 1e2"]), (EventPred::True, false));
        assert_eq!(
            pred(&["log_level == error", "timestamp > 2024", "log_level >= e"]),
            (level("error"), false)
        );
        assert_eq!(
            pred(&["log_level != info", "message == done"]),
            (
                EventPred::And(vec![
                    EventPred::Not(Box::new(level("info"))),
                    EventPred::Eq(msg, "done".into())
                ]),
                true
            )
        );
    }

    /// Times compare as times: with an age (`< 3h` within the last three
    /// hours, `> 3h` longer ago, as the simvue client's `*_within` and
    /// their opposite), or with a UTC date or time. A value that is
    /// neither is refused, not compared as text.
    #[test]
    fn time_filters_compare_times_and_refuse_what_is_no_time() {
        let now = now_us();
        let ts = |ago_us: i64| crate::util::fmt_ts(now - ago_us);
        let hour = 3_600_000_000;
        let run = json!({"created": ts(2 * hour), "endtime": ts(hour / 2),
                         "started": "2026-12-01T10:30:00.000000", "tags": ["a"]});
        let ok = |s: &str| parse(s).expect(s).matches(&run, "me");
        assert!(ok("created < 3h") && !ok("created < 1h"));
        assert!(ok("created > 1h") && !ok("created > 3h"));
        assert!(ok("created >= 90m") && ok("created <= 1d"));
        // `ended` is the client's name for the end time (`ended_within`).
        assert!(ok("ended < 1h") && !ok("ended > 1h") && ok("endtime < 1h"));
        assert!(ok("started > 2026-12-01") && !ok("started > 2026-12-02"));
        assert!(ok("started < 2026-12-01 11:00") && !ok("started < 2026-12-01 10:00"));
        assert!(ok("started >= 2026-12-01T10:30:00") && ok("started <= 2026-12-01T10:30:00Z"));
        assert!(ok("started == 2026-12-01") && !ok("started == 2026-11-30"));
        assert!(ok("started != 2026-11-30") && !ok("started != 2026-12-01"));
        // A run that has not ended has no end time to match.
        let running = json!({"created": ts(hour)});
        let on = |s: &str| parse(s).expect(s).matches(&running, "me");
        assert!(!on("endtime < 1d") && !on("endtime > 1d") && on("endtime != 2026-12-01"));
        // Newer clients' `exclude_tag`.
        assert!(!ok("does not have tag.a") && ok("does not have tag.b"));
        for bad in [
            "created > yesterday",
            "created < 3 hours",
            "modified >= 12/01/2026",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(matches!(e.kind, crate::domain::ErrorKind::Invalid), "{bad}");
            assert!(
                e.detail.contains("compares with an age"),
                "{bad}: {}",
                e.detail
            );
        }
        for bad in ["created == 3h", "ended != 1d"] {
            let e = parse(bad).expect_err(bad);
            assert!(
                e.detail.contains("an age compares with <"),
                "{bad}: {}",
                e.detail
            );
        }
        assert!(parse_expr("created > yesterday AND has tag.a").is_err());
        // Text operators on times are left as they were.
        assert!(ok("started contains 2026-12"));
    }

    #[test]
    fn run_filters_match_the_documents_the_ui_uses() {
        let run = json!({"name": "my run", "status": "completed", "folder": "/a/b", "tags": ["t1"],
                         "metadata": {"lr": 0.5, "kind": "x", "flag": true}, "user": "me",
                         "alerts": [{"alert": {"name": "hi"}, "status": "critical"}],
                         "system": {"hostname": "h"}});
        let ok = |s: &str| parse(s).unwrap().matches(&run, "me");
        assert!(ok("status == completed"));
        assert!(!ok("status == running"));
        assert!(ok("name == my run"));
        assert!(ok("has tag.t1") && !ok("has tag.t2") && ok("has not tag.t2"));
        assert!(ok("folder.path == /a/b"));
        assert!(ok("folder.path under /a"));
        assert!(ok("folder.path under /a/"));
        assert!(ok("folder.path under /a/b/"));
        assert!(ok("folder.path under /"));
        assert!(!ok("folder.path under /a/bc"));
        assert!(!ok("folder.path under /a/b/c"));
        assert!(ok("name icontains MY RUN"));
        let ex = |s: &str| parse_expr(s).expect(s).matches(&run, "me");
        assert!(ex("status == completed AND has tag.t1"));
        assert!(ex(
            "status == running OR (folder.path under /a AND NOT has tag.t9)"
        ));
        assert!(!ex("NOT status == completed"));
        assert!(ex("name == \"my run\""));
        assert!(ex("status == completed NOT has tag.t9"));
        for bad in [
            "status == completed AND",
            "(status == completed",
            "OR x",
            "status ===",
        ] {
            assert!(parse_expr(bad).is_err(), "{bad}");
        }
        assert!(!ok("name contains MY RUN"));
        assert!(ok("metadata.lr > 0.1") && ok("metadata.lr == 0.5") && !ok("metadata.lr < 0.1"));
        assert!(ok("metadata.kind == x") && ok("metadata.flag == True"));
        assert!(ok("metadata.kind exists") && ok("metadata.nope not exists"));
        assert!(ok("user == self") && ok("alert.status == critical") && ok("alert.name == hi"));
        assert!(ok("system.hostname == h"));
        assert!(parse("nonsense").is_err());
        // Only critical alerts answer `alert.acknowledged`.
        assert!(ok("alert.acknowledged == false") && !ok("alert.acknowledged == true"));
        let acked = json!({"alerts": [
            {"alert": {"name": "hi"}, "status": "critical", "acknowledged": {"by": "me"}},
            {"alert": {"name": "lo"}, "status": "ok", "acknowledged": null}]});
        let f = |s: &str| parse(s).unwrap().matches(&acked, "me");
        assert!(f("alert.acknowledged == true") && !f("alert.acknowledged == false"));
    }
}
