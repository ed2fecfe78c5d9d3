//! Run list queries answered by the database itself: a predicate over a
//! run's columns and tags, the caller's visibility, sort keys (columns,
//! values in `metadata`/`system`, metric summaries), a count and a page
//! ([`RunPage`], [`super::ReadTx::run_page`]); and the same predicate as a
//! filter on a scan ([`super::RunProjection::filter`]).
//!
//! The domain decides what may be asked this way (it translates only
//! filters whose meaning these predicates express exactly, or as a
//! superset for a scan it checks again); the backends render the same
//! tree with [`Sql`] in their dialect, binding every value (nothing a
//! client sent is pasted into SQL).

use super::{JsonColumn, JsonPath};

/// A run column a predicate or sort key reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunField {
    Id,
    Name,
    Folder,
    Status,
    Description,
    User,
    Created,
    Started,
    Endtime,
    Modified,
    Starred,
}

impl RunField {
    fn nullable(self) -> bool {
        matches!(
            self,
            RunField::Description | RunField::Started | RunField::Endtime
        )
    }
    fn text(self) -> bool {
        matches!(
            self,
            RunField::Id
                | RunField::Name
                | RunField::Folder
                | RunField::Status
                | RunField::Description
                | RunField::User
        )
    }
}

/// A text comparison in byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCmp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition on a run. A field that is NULL (a run without a
/// description) satisfies none of the comparisons.
#[derive(Debug, Clone, PartialEq)]
pub enum RunPred {
    /// Every run.
    True,
    And(Vec<RunPred>),
    Or(Vec<RunPred>),
    Not(Box<RunPred>),
    /// The text field equals the value.
    Eq(RunField, String),
    /// The text field compares to the value so (byte order).
    Cmp(RunField, TextCmp, String),
    /// The text field holds the value as a substring.
    Contains(RunField, String),
    /// The text field with ASCII letters lowered holds the value (ASCII,
    /// lower case) as a substring.
    AsciiLowerContains(RunField, String),
    /// The text field holds a character beyond ASCII.
    NonAscii(RunField),
    /// The field is not NULL.
    NotNull(RunField),
    /// The text field is the path (not empty, no trailing `/`) or below it.
    Under(RunField, String),
    /// The run's tags (a JSON list) hold this string.
    HasTag(String),
    /// The run is starred.
    Starred,
}

/// Which statistic of a metric's summary a sort key reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricStat {
    Last,
    Min,
    Max,
    Count,
}

/// A sort key. Runs without a value come last in either direction; the
/// values of a JSON key order strings before numbers (by value) before
/// lists before `false` before `true` before objects.
#[derive(Debug, Clone, PartialEq)]
pub enum RunKey {
    Field(RunField),
    Json(JsonPath),
    /// A metric's summary statistic (non-finite values count as none).
    Metric(String, MetricStat),
}

/// Whose runs a [`RunPage`] may show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunsVisibleTo {
    /// Every run (an administrator, or no caller).
    All,
    /// What this user sees: its own runs, public ones, those whose
    /// visibility lists it, and those shared with its group (`tenant`)
    /// whose owner is in `group`.
    User { name: String, group: Option<String> },
}

/// A page of a run list, filtered, sorted, counted by the database.
#[derive(Debug, Clone)]
pub struct RunPage {
    /// Set by the access layer; a backend applies what it says.
    pub visible_to: RunsVisibleTo,
    pub filter: RunPred,
    /// Most significant first; `true`: descending. Ties: insertion order.
    pub order: Vec<(RunKey, bool)>,
    pub offset: u64,
    pub limit: u64,
}

/// What a backend answers for a [`RunPage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunPageAnswer {
    /// The ids of the page, and how many runs match in all.
    Page { ids: Vec<String>, total: u64 },
    /// More than one matching run holds a list or an object at a JSON
    /// sort key: their order is the caller's to decide.
    Unordered,
}

/// The SQL dialect to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound value.
#[derive(Debug, Clone)]
pub(crate) enum SqlArg {
    Text(String),
    Int(i64),
    /// A JSON path: SQLite's path text, PostgreSQL's `text[]`.
    Keys(Vec<String>),
}

/// SQL text under construction and the values it binds, in order.
pub(crate) struct Sql {
    dialect: Dialect,
    /// Placeholders bound before this text's.
    base: usize,
    pub args: Vec<SqlArg>,
}

/// `"x"` as serde_json writes it: how a tag appears inside the stored
/// JSON list (every writer of `tags` is serde_json).
fn json_quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

impl Sql {
    pub fn new(dialect: Dialect) -> Sql {
        Sql::after(dialect, 0)
    }

    /// Numbering its placeholders after `base` others.
    pub fn after(dialect: Dialect, base: usize) -> Sql {
        Sql {
            dialect,
            base,
            args: Vec::new(),
        }
    }

    pub(super) fn pg(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    fn bind(&mut self, a: SqlArg) -> String {
        self.args.push(a);
        let n = self.base + self.args.len();
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    pub(super) fn text(&mut self, s: &str) -> String {
        self.bind(SqlArg::Text(s.to_owned()))
    }

    pub(super) fn falsy(&self) -> &'static str {
        if self.pg() { "false" } else { "0" }
    }

    pub(super) fn truthy(&self) -> &'static str {
        if self.pg() { "true" } else { "1" }
    }

    /// The column, qualified.
    fn col(&self, f: RunField) -> &'static str {
        match f {
            RunField::Id => "runs.id",
            RunField::Name => "runs.name",
            RunField::Folder => "runs.folder",
            RunField::Status => "runs.status",
            RunField::Description => "runs.description",
            RunField::User if self.pg() => "runs.owner",
            RunField::User => "runs.user",
            RunField::Created => "runs.created",
            RunField::Started => "runs.started",
            RunField::Endtime => "runs.endtime",
            RunField::Modified => "runs.modified",
            RunField::Starred => "runs.starred",
        }
    }

    /// A text column in byte order.
    fn text_col(&self, f: RunField) -> String {
        if self.pg() {
            format!("({} COLLATE \"C\")", self.col(f))
        } else {
            self.col(f).to_owned()
        }
    }

    /// `x`, never NULL.
    fn sure(&self, x: &str) -> String {
        format!("COALESCE({x}, {})", self.falsy())
    }

    /// A predicate: true or false for every run, never NULL.
    pub fn pred(&mut self, p: &RunPred) -> String {
        match p {
            RunPred::True => self.truthy().to_owned(),
            RunPred::And(v) if v.is_empty() => self.truthy().to_owned(),
            RunPred::Or(v) if v.is_empty() => self.falsy().to_owned(),
            RunPred::And(v) | RunPred::Or(v) => {
                let join = if matches!(p, RunPred::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<String> = v.iter().map(|x| self.pred(x)).collect();
                format!("({})", parts.join(join))
            }
            RunPred::Not(x) => format!("(NOT {})", self.pred(x)),
            RunPred::Eq(f, v) => {
                let b = self.text(v);
                self.sure(&format!("{} = {b}", self.col(*f)))
            }
            RunPred::Cmp(f, op, v) => {
                let b = self.text(v);
                let op = match op {
                    TextCmp::Lt => "<",
                    TextCmp::Le => "<=",
                    TextCmp::Gt => ">",
                    TextCmp::Ge => ">=",
                };
                self.sure(&format!("{} {op} {b}", self.text_col(*f)))
            }
            RunPred::Contains(f, v) => {
                let b = self.text(v);
                let e = if self.pg() {
                    format!("strpos({}, {b}) > 0", self.col(*f))
                } else {
                    format!("instr({}, {b}) > 0", self.col(*f))
                };
                self.sure(&e)
            }
            RunPred::AsciiLowerContains(f, v) => {
                let b = self.text(v);
                // SQLite's lower() folds ASCII only; PostgreSQL's follows
                // the collation's locale, and folds ASCII only under "C"
                // (faster than spelling the letters out with translate()).
                let e = if self.pg() {
                    format!("strpos(lower(({}) COLLATE \"C\"), {b}) > 0", self.col(*f))
                } else {
                    format!("instr(lower({}), {b}) > 0", self.col(*f))
                };
                self.sure(&e)
            }
            RunPred::NonAscii(f) => {
                let c = self.col(*f);
                let e = if self.pg() {
                    format!("octet_length({c}) <> char_length({c})")
                } else {
                    format!("length(CAST({c} AS BLOB)) <> length({c})")
                };
                self.sure(&e)
            }
            RunPred::NotNull(f) => format!("({} IS NOT NULL)", self.col(*f)),
            RunPred::Under(f, base) => {
                // Below `base`: from `base/` up to (not including) `base0`
                // in byte order ('0' follows '/').
                let eq = self.text(base);
                let lo = self.text(&format!("{base}/"));
                let hi = self.text(&format!("{base}0"));
                let c = self.text_col(*f);
                self.sure(&format!("({c} = {eq} OR ({c} >= {lo} AND {c} < {hi}))"))
            }
            RunPred::HasTag(t) => {
                // Only a list whose text holds the tag as serde_json writes
                // it is parsed.
                let needle = self.text(&json_quoted(t));
                let tag = self.text(t);
                if self.pg() {
                    format!(
                        "(CASE WHEN strpos(runs.tags, {needle}) > 0 THEN COALESCE((SELECT \
                         jsonb_typeof(j) = 'array' AND j ? {tag} FROM (SELECT runs.tags::jsonb AS j) s), \
                         false) ELSE false END)"
                    )
                } else {
                    format!(
                        "(CASE WHEN instr(runs.tags, {needle}) > 0 THEN EXISTS (SELECT 1 FROM \
                         json_each(CASE WHEN json_valid(runs.tags) THEN CASE WHEN \
                         json_type(runs.tags) = 'array' THEN runs.tags END END) WHERE type = 'text' \
                         AND value = {tag}) ELSE 0 END)"
                    )
                }
            }
            RunPred::Starred => {
                if self.pg() {
                    "runs.starred".into()
                } else {
                    "(runs.starred <> 0)".into()
                }
            }
        }
    }

    /// Whether the run is visible, never NULL.
    pub fn visible(&mut self, v: &RunsVisibleTo) -> String {
        let RunsVisibleTo::User { name, group } = v else {
            return self.truthy().to_owned();
        };
        let me = self.text(name);
        let owner = self.col(RunField::User);
        if self.pg() {
            let tenant = match group {
                Some(g) => {
                    let g = self.text(g);
                    format!(
                        " OR (v -> 'tenant' = 'true'::jsonb AND EXISTS (SELECT 1 FROM users u \
                         WHERE u.name = runs.owner AND u.grp = {g}))"
                    )
                }
                None => String::new(),
            };
            format!(
                "({owner} = {me} OR COALESCE((SELECT jsonb_typeof(v) = 'object' AND (v -> 'public' = \
                 'true'::jsonb OR (jsonb_typeof(v -> 'users') = 'array' AND (v -> 'users') ? {me}){tenant}) \
                 FROM (SELECT runs.visibility::jsonb AS v) s), false))"
            )
        } else {
            let tenant = match group {
                Some(g) => {
                    let g = self.text(g);
                    format!(
                        " OR (json_type(runs.visibility, '$.tenant') = 'true' AND EXISTS (SELECT 1 \
                         FROM users u WHERE u.name = runs.user AND u.grp = {g}))"
                    )
                }
                None => String::new(),
            };
            format!(
                "({owner} = {me} OR COALESCE(CASE WHEN json_valid(runs.visibility) THEN CASE WHEN \
                 json_type(runs.visibility) = 'object' THEN (json_type(runs.visibility, '$.public') = \
                 'true' OR (json_type(runs.visibility, '$.users') = 'array' AND EXISTS (SELECT 1 FROM \
                 json_each(runs.visibility, '$.users') WHERE type = 'text' AND value = {me})){tenant}) \
                 END END, 0))"
            )
        }
    }

    fn json_col(&self, c: JsonColumn) -> &'static str {
        match (c, self.pg()) {
            (JsonColumn::Metadata, false) => "runs.metadata",
            (JsonColumn::System, false) => "runs.system",
            (JsonColumn::Metadata, true) => "runs.metadata_j",
            (JsonColumn::System, true) => "runs.system_j",
        }
    }

    /// The rank of the JSON value's type at `p` (NULL: none): strings 1,
    /// numbers 2, lists 3, false 4, true 5, objects 6.
    fn json_rank(&mut self, p: &JsonPath) -> String {
        let col = self.json_col(p.column);
        let path = self.bind(SqlArg::Keys(p.keys.clone()));
        if self.pg() {
            format!(
                "(CASE jsonb_typeof({col} #> {path}) WHEN 'string' THEN 1 WHEN 'number' THEN 2 \
                 WHEN 'array' THEN 3 WHEN 'boolean' THEN CASE WHEN {col} #> {path} = 'true'::jsonb \
                 THEN 5 ELSE 4 END WHEN 'object' THEN 6 END)"
            )
        } else {
            format!(
                "(CASE json_type({col}, {path}) WHEN 'text' THEN 1 WHEN 'integer' THEN 2 WHEN 'real' \
                 THEN 2 WHEN 'array' THEN 3 WHEN 'false' THEN 4 WHEN 'true' THEN 5 WHEN 'object' \
                 THEN 6 END)"
            )
        }
    }

    /// Terms of `ORDER BY` for one key, and the joins it needs.
    pub fn order_terms(
        &mut self,
        k: &RunKey,
        desc: bool,
        n: usize,
        joins: &mut String,
    ) -> Vec<String> {
        let dir = if desc { "DESC" } else { "ASC" };
        match k {
            RunKey::Field(f) => {
                let c = if f.text() {
                    self.text_col(*f)
                } else {
                    self.col(*f).to_owned()
                };
                if f.nullable() {
                    vec![format!("({c} IS NULL)"), format!("{c} {dir}")]
                } else {
                    vec![format!("{c} {dir}")]
                }
            }
            RunKey::Json(p) => {
                // No value: last in either direction.
                let rank = self.json_rank(p);
                let none = if desc { 0 } else { 7 };
                let col = self.json_col(p.column);
                let path = self.bind(SqlArg::Keys(p.keys.clone()));
                if self.pg() {
                    vec![
                        format!("COALESCE({rank}, {none}) {dir}"),
                        format!(
                            "(CASE WHEN jsonb_typeof({col} #> {path}) = 'number' THEN \
                             ({col} #> {path})::float8 END) {dir}"
                        ),
                        format!(
                            "(CASE WHEN jsonb_typeof({col} #> {path}) = 'string' THEN \
                             (({col} #>> {path}) COLLATE \"C\") END) {dir}"
                        ),
                    ]
                } else {
                    // One term for numbers (as f64, as the scan compares
                    // them) and strings: the rank keeps them apart.
                    vec![
                        format!("COALESCE({rank}, {none}) {dir}"),
                        format!(
                            "(CASE WHEN json_type({col}, {path}) IN ('integer', 'real') THEN \
                             CAST({col} ->> {path} AS REAL) ELSE {col} ->> {path} END) {dir}"
                        ),
                    ]
                }
            }
            RunKey::Metric(name, stat) => {
                let alias = format!("m{n}");
                let b = self.text(name);
                joins.push_str(&format!(
                    " LEFT JOIN metric_series {alias} ON {alias}.run_id = runs.id AND {alias}.name = {b}"
                ));
                let v = match stat {
                    MetricStat::Last => format!("{alias}.last"),
                    MetricStat::Min => format!("{alias}.vmin"),
                    MetricStat::Max => format!("{alias}.vmax"),
                    MetricStat::Count => format!("{alias}.count"),
                };
                let finite = if self.pg() {
                    format!(
                        "(CASE WHEN {v} IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) \
                         THEN NULL ELSE {v} END)"
                    )
                } else {
                    format!("(CASE WHEN {v} IN (9e999, -9e999) THEN NULL ELSE {v} END)")
                };
                vec![format!("({finite} IS NULL)"), format!("{finite} {dir}")]
            }
        }
    }

    /// Whether the run holds a list or an object at a JSON sort key,
    /// as a BIGINT 0 or 1.
    fn composite(&mut self, order: &[(RunKey, bool)]) -> String {
        let mut any: Vec<String> = Vec::new();
        for (k, _) in order {
            if let RunKey::Json(p) = k {
                let rank = self.json_rank(p);
                any.push(format!("COALESCE({rank}, 0) IN (3, 6)"));
            }
        }
        if any.is_empty() {
            any.push(self.falsy().into());
        }
        format!(
            "CAST(CASE WHEN {} THEN 1 ELSE 0 END AS BIGINT)",
            any.join(" OR ")
        )
    }

    /// The queries of a page, each with its own arguments: the count of
    /// matching runs; the page, as `(id, composite)` (whether the run
    /// holds a list or an object at a JSON sort key); and the number of
    /// matching runs that do, wanted only when the page holds one (their
    /// order among themselves is not the caller's: when the page holds
    /// none, it is the same whatever that order).
    pub fn page(dialect: Dialect, q: &RunPage) -> [(String, Vec<SqlArg>); 3] {
        let seq = match dialect {
            Dialect::Sqlite => "runs.rowid",
            Dialect::Postgres => "runs.seq",
        };
        let mut c = Sql::new(dialect);
        let w = format!("{} AND {}", c.visible(&q.visible_to), c.pred(&q.filter));
        let count_sql = format!("SELECT COUNT(*) FROM runs WHERE {w}");

        let mut m = Sql::new(dialect);
        let w = format!("{} AND {}", m.visible(&q.visible_to), m.pred(&q.filter));
        let comp = m.composite(&q.order);
        // (PostgreSQL's SUM of BIGINT is NUMERIC.)
        let comp_sql =
            format!("SELECT CAST(COALESCE(SUM({comp}), 0) AS BIGINT) FROM runs WHERE {w}");

        let mut s = Sql::new(dialect);
        let w = format!("{} AND {}", s.visible(&q.visible_to), s.pred(&q.filter));
        let comp = s.composite(&q.order);
        let mut joins = String::new();
        let mut terms = Vec::new();
        for (n, (k, desc)) in q.order.iter().enumerate() {
            terms.extend(s.order_terms(k, *desc, n, &mut joins));
        }
        terms.push(format!("{seq} ASC"));
        let limit = s.bind(SqlArg::Int(i64::try_from(q.limit).unwrap_or(i64::MAX)));
        let offset = s.bind(SqlArg::Int(i64::try_from(q.offset).unwrap_or(i64::MAX)));
        let page_sql = format!(
            "SELECT runs.id, {comp} FROM runs{joins} WHERE {w} ORDER BY {} LIMIT {limit} OFFSET {offset}",
            terms.join(", ")
        );
        [(count_sql, c.args), (page_sql, s.args), (comp_sql, m.args)]
    }
}
