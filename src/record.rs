//! What a run produces — metric points, events, metadata, files, alerts, status
//! — as the records that the spool stores and the transport delivers, and
//! the checks a value passes before it becomes one (names, rules, folders).
//!
//! A run is an ordered list of [`Record`]s. The first is always
//! [`Record::Create`]; the position of a record in its run's spool (`seq`) is
//! its identity, so `"<run id>-<seq>"` is the idempotency key that makes a
//! resend after a lost response harmless.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Status};

/// One record of a run, in the order the run produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// The run itself; always the first record.
    Create(RunSpec),
    /// A batch of metric points.
    Metrics(MetricBatch),
    /// A batch of events.
    Events(Vec<Event>),
    /// Metadata keys set after init (merged into the run's metadata).
    Metadata(BTreeMap<String, serde_json::Value>),
    /// Details of a folder.
    Folder(FolderSpec),
    /// A file captured by `save`; the bytes live in the run's spool directory.
    File(FileRecord),
    /// An alert definition attached to the run.
    Alert(AlertDef),
    /// The run's final status; the last record of a finished run.
    Finish(FinishRecord),
    /// A grid the run's array metrics lie on (see `crate::grid`).
    Grid(crate::grid::GridSpec),
    /// One step of an array metric; the values live in the run's spool
    /// directory (see `crate::grid`).
    Array(crate::grid::ArrayRecord),
    /// Lines of text that arrived together: one event per line (see
    /// [`LineBatch`]; `simtrack run` records a program's output so).
    Lines(LineBatch),
}

/// Everything known about a run at init.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The library-side run id (a UUID); also the spool directory name.
    pub id: String,
    pub name: String,
    pub folder: String,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Host, user, command line, batch and MPI environment.
    pub system: serde_json::Value,
    /// Seconds after which a silent run is marked lost by the server.
    pub heartbeat_timeout: u64,
    /// UTC time of init, seconds since the Unix epoch.
    pub created: f64,
}

/// A batch of metric points. Names are stored once per batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricBatch {
    pub names: Vec<String>,
    pub points: Vec<Point>,
}

/// One metric value. Stored as a 4-tuple: a spool holds millions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "(u32, f64, i64, f64)", into = "(u32, f64, i64, f64)")]
pub struct Point {
    /// Index into [`MetricBatch::names`].
    pub name: u32,
    pub value: f64,
    pub step: i64,
    /// Seconds since the run's init.
    pub time: f64,
}

impl From<(u32, f64, i64, f64)> for Point {
    fn from((name, value, step, time): (u32, f64, i64, f64)) -> Self {
        Point {
            name,
            value,
            step,
            time,
        }
    }
}

impl From<Point> for (u32, f64, i64, f64) {
    fn from(p: Point) -> Self {
        (p.name, p.value, p.step, p.time)
    }
}

/// One event: a line of text with its UTC time (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub message: String,
    pub timestamp: f64,
    /// `None`: the server decides (`info`, or the level the line announces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<EventLevel>,
}

/// Events encoded for the spool as they are added: many lines with one
/// allocation (`simtrack run` records every line a program prints). Queued
/// with [`crate::Run::event_block`], stored and read back as one
/// [`Record::Events`].
#[derive(Debug, Default, Clone)]
pub struct EventBlock {
    /// The events, each encoded as a `Record::Events` list item.
    pub(crate) buf: Vec<u8>,
    pub(crate) count: u32,
}

impl EventBlock {
    /// An empty block with room for `bytes` of encoded events.
    pub fn with_capacity(bytes: usize) -> EventBlock {
        EventBlock {
            buf: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    /// Adds an event (`timestamp`: UTC seconds since the epoch, see
    /// [`crate::Run::event_time`]); refuses a message longer than
    /// [`MAX_EVENT_BYTES`].
    pub fn push(
        &mut self,
        message: &str,
        timestamp: f64,
        level: Option<EventLevel>,
    ) -> Result<(), Error> {
        if message.len() > MAX_EVENT_BYTES {
            return Err(Error::new(
                Status::InvalidArgument,
                format!(
                    "event message is {} bytes; at most {MAX_EVENT_BYTES} are accepted",
                    message.len()
                ),
            ));
        }
        crate::spool::encode_event(&mut self.buf, message, timestamp, level);
        self.count += 1;
        Ok(())
    }

    /// Events in the block.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the block takes in the spool (roughly).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }
}

/// Lines that arrived together (in `simtrack run`, the complete lines of one
/// read of a program's stdout or stderr), stored as one record: the text of
/// every line end to end, and the length of each. It stands for one
/// [`Event`] per line, in order, every one at `timestamp` and at `level`,
/// but for the lines listed in `levels` (index, level), which have their
/// own. A line is at most [`MAX_EVENT_BYTES`] (longer ones are recorded as
/// several). Built with [`LineBlock`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineBatch {
    pub timestamp: f64,
    pub level: Option<EventLevel>,
    pub text: String,
    pub lens: Vec<u32>,
    pub levels: Vec<(u32, Option<EventLevel>)>,
}

impl LineBatch {
    /// The events the batch stands for: message and level. A batch whose
    /// lengths do not cut its text into lines (never written so) is an
    /// error rather than a guess.
    pub fn events(&self) -> Result<Vec<(&str, Option<EventLevel>)>, String> {
        let mut out = Vec::with_capacity(self.lens.len());
        let mut at = 0usize;
        let mut exceptions = self.levels.iter().peekable();
        for (i, &len) in self.lens.iter().enumerate() {
            let end = at + len as usize;
            let line = self
                .text
                .get(at..end)
                .ok_or_else(|| format!("line {i} of a batch of lines is not in its text"))?;
            let level = match exceptions.next_if(|(j, _)| *j as usize == i) {
                Some((_, l)) => *l,
                None => self.level,
            };
            out.push((line, level));
            at = end;
        }
        if at != self.text.len() {
            return Err("a batch of lines has text after its last line".to_owned());
        }
        Ok(out)
    }
}

/// A [`LineBatch`] being built, encoded for the spool as lines are added
/// (no allocation per line). Queued with [`crate::Run::line_block`].
#[derive(Debug, Default, Clone)]
pub struct LineBlock {
    timestamp: f64,
    level: Option<EventLevel>,
    text: Vec<u8>,
    /// The lengths, each encoded as a msgpack integer.
    lens: Vec<u8>,
    count: u32,
    levels: Vec<(u32, Option<EventLevel>)>,
}

impl LineBlock {
    /// An empty block of lines at `timestamp` (UTC seconds since the epoch,
    /// see [`crate::Run::event_time`]), at `level` unless they say otherwise;
    /// room for `bytes` of text.
    pub fn new(timestamp: f64, level: Option<EventLevel>, bytes: usize) -> LineBlock {
        LineBlock {
            timestamp,
            level,
            text: Vec::with_capacity(bytes),
            lens: Vec::with_capacity(bytes / 8),
            count: 0,
            levels: Vec::new(),
        }
    }

    /// Adds a line at `level`; refuses one longer than [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, line: &str, level: Option<EventLevel>) -> Result<(), Error> {
        if line.len() > MAX_EVENT_BYTES {
            return Err(Error::new(
                Status::InvalidArgument,
                format!(
                    "event message is {} bytes; at most {MAX_EVENT_BYTES} are accepted",
                    line.len()
                ),
            ));
        }
        if level != self.level {
            self.levels.push((self.count, level));
        }
        self.text.extend_from_slice(line.as_bytes());
        let len = line.len() as u32;
        if len < 128 {
            self.lens.push(len as u8);
        } else {
            // Writes to a Vec cannot fail.
            let _ = rmp::encode::write_uint(&mut self.lens, u64::from(len));
        }
        self.count += 1;
        Ok(())
    }

    /// Adds a line shorter than 128 bytes at the block's own level, the
    /// common case taken without [`LineBlock::push`]'s checks; returns false
    /// (adding nothing) for a longer line.
    #[inline]
    pub fn push_short(&mut self, line: &str) -> bool {
        if line.len() >= 128 {
            return false;
        }
        self.text.extend_from_slice(line.as_bytes());
        self.lens.push(line.len() as u8);
        self.count += 1;
        true
    }

    /// Lines in the block.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of text in the block.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    /// Appends the block as `Record::Lines` to `buf`, byte for byte as
    /// `rmp_serde::encode::write_named` writes it (a test checks).
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        use rmp::encode as m;
        // Writes to a Vec cannot fail.
        buf.reserve(self.text.len() + self.lens.len() + 64);
        let _ = m::write_map_len(buf, 1);
        let _ = m::write_str(buf, "Lines");
        let _ = m::write_map_len(buf, 5);
        let _ = m::write_str(buf, "timestamp");
        let _ = m::write_f64(buf, self.timestamp);
        let _ = m::write_str(buf, "level");
        match self.level {
            Some(l) => {
                let _ = m::write_str(buf, l.as_str());
            }
            None => {
                let _ = m::write_nil(buf);
            }
        }
        let _ = m::write_str(buf, "text");
        let _ = m::write_str_len(buf, self.text.len() as u32);
        buf.extend_from_slice(&self.text);
        let _ = m::write_str(buf, "lens");
        let _ = m::write_array_len(buf, self.count);
        buf.extend_from_slice(&self.lens);
        let _ = m::write_str(buf, "levels");
        let _ = m::write_array_len(buf, self.levels.len() as u32);
        for (i, l) in &self.levels {
            let _ = m::write_array_len(buf, 2);
            let _ = m::write_uint(buf, u64::from(*i));
            match l {
                Some(l) => {
                    let _ = m::write_str(buf, l.as_str());
                }
                None => {
                    let _ = m::write_nil(buf);
                }
            }
        }
    }
}

/// A metadata value set through the typed setters.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Float(f64),
    Int(i64),
    Str(String),
    Bool(bool),
}

impl MetaValue {
    pub fn into_json(self) -> serde_json::Value {
        match self {
            // JSON has no NaN/Inf: such metadata is kept as its text.
            MetaValue::Float(f) => serde_json::Number::from_f64(f).map_or_else(
                || serde_json::Value::String(f.to_string()),
                serde_json::Value::Number,
            ),
            MetaValue::Int(i) => i.into(),
            MetaValue::Str(s) => s.into(),
            MetaValue::Bool(b) => b.into(),
        }
    }
}

/// Folder details set by `set_folder_details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderSpec {
    pub path: String,
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
}

/// The shared run model facts, re-exported where the library always found them.
///
/// cbindgen:ignore
pub use crate::model::{Category, EventLevel, MAX_EVENT_BYTES, MAX_NAME_BYTES, RunStatus};

impl Category {
    pub fn parse(s: &str) -> Result<Self, Error> {
        Category::from_name(s).ok_or_else(|| {
            Error::new(
                Status::InvalidCategory,
                format!("unknown file category {s:?}: use \"code\", \"input\" or \"output\""),
            )
        })
    }
}

/// A file captured into the run's spool directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The file's name as the user will see it (the path's final component).
    pub name: String,
    /// The path given to `save`, as given.
    pub original_path: String,
    pub category: Category,
    /// Lower-case hex SHA-256 of the captured bytes.
    pub sha256: String,
    pub size: u64,
    pub mime_type: String,
    /// Where the captured copy lives, relative to the run's spool directory.
    pub stored: String,
}

/// Alert rules, with the spelling of the Simvue API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertRule {
    #[serde(rename = "is above")]
    Above,
    #[serde(rename = "is below")]
    Below,
    #[serde(rename = "is inside range")]
    Inside,
    #[serde(rename = "is outside range")]
    Outside,
}

impl AlertRule {
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "is above" => Ok(AlertRule::Above),
            "is below" => Ok(AlertRule::Below),
            "is inside range" => Ok(AlertRule::Inside),
            "is outside range" => Ok(AlertRule::Outside),
            other => Err(Error::new(
                Status::InvalidRule,
                format!(
                    "unknown alert rule {other:?}: use \"is above\", \"is below\", \"is inside range\" or \"is outside range\""
                ),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertRule::Above => "is above",
            AlertRule::Below => "is below",
            AlertRule::Inside => "is inside range",
            AlertRule::Outside => "is outside range",
        }
    }

    pub fn is_threshold(self) -> bool {
        matches!(self, AlertRule::Above | AlertRule::Below)
    }
}

/// A metric alert definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDef {
    pub name: String,
    pub rule: AlertRule,
    pub metric: String,
    /// Minutes between evaluations.
    pub frequency: f64,
    /// Minutes of data the rule looks at.
    pub window: f64,
    /// Threshold for above/below; lower bound for ranges.
    pub low: f64,
    /// Equal to `low` for above/below; upper bound for ranges.
    pub high: f64,
}

impl RunStatus {
    /// Parses one of the statuses a client may set at the end of a run.
    pub fn parse_final(s: &str) -> Result<Self, Error> {
        match RunStatus::from_name(s) {
            Some(st) if st.is_terminal() => Ok(st),
            _ => Err(Error::new(
                Status::InvalidStatus,
                format!(
                    "unknown final status {s:?}: use \"completed\", \"failed\" or \"terminated\""
                ),
            )),
        }
    }
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishRecord {
    pub status: RunStatus,
    /// UTC end time, seconds since the epoch.
    pub endtime: f64,
}

/// Parses a JSON object given as text (metadata).
pub fn parse_json_object(
    text: &str,
    what: &str,
) -> Result<BTreeMap<String, serde_json::Value>, Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map.into_iter().collect()),
        Ok(other) => Err(Error::new(
            Status::InvalidJson,
            format!(
                "{what} must be a JSON object like {{\"nx\": 128}}, got {}",
                json_kind(&other)
            ),
        )),
        Err(e) => Err(Error::new(
            Status::InvalidJson,
            format!("{what} is not valid JSON: {e}"),
        )),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Checks a name against the limits every server applies, so a bad name
/// fails the call that passed it instead of a whole batch at the server.
pub fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if crate::model::check_name(name, MAX_NAME_BYTES).is_err() {
        return Err(Error::new(
            Status::InvalidArgument,
            format!(
                "{what} {name:?} must be 1 to {MAX_NAME_BYTES} bytes without control characters"
            ),
        ));
    }
    Ok(())
}

/// Metric names as the Simvue API accepts them: letters, digits, spaces and
/// `- _ / . : = > < + ( ) %`. Checked once per name, when first logged, so a
/// bad name fails the call instead of a whole batch at the server.
pub fn check_metric_name(name: &str) -> Result<(), Error> {
    check_name("metric name", name)?;
    if crate::model::check_metric_name(name).is_err() {
        return Err(Error::new(
            Status::InvalidArgument,
            format!(
                "invalid metric name {name:?}: use letters, digits, blanks or - _ / . : = > < + ( ) %"
            ),
        ));
    }
    Ok(())
}

impl AlertDef {
    /// Validates a metric alert definition.
    pub fn new(
        name: &str,
        rule: AlertRule,
        metric: &str,
        frequency: f64,
        window: f64,
        low: f64,
        high: f64,
    ) -> Result<Self, Error> {
        check_name("alert name", name)?;
        check_metric_name(metric)?;
        for (what, v) in [("frequency", frequency), ("window", window)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::new(
                    Status::InvalidArgument,
                    format!("alert {what} must be a positive number of minutes, got {v}"),
                ));
            }
        }
        if !(low.is_finite() && high.is_finite()) || low > high {
            return Err(Error::new(
                Status::InvalidArgument,
                format!("alert bounds must be finite with low <= high, got [{low}, {high}]"),
            ));
        }
        Ok(AlertDef {
            name: name.to_owned(),
            rule,
            metric: metric.to_owned(),
            frequency,
            window,
            low,
            high,
        })
    }
}

impl FolderSpec {
    /// Validates the arguments of `simtrack_set_folder_details`.
    pub fn parse(
        folder: &str,
        metadata_json: Option<&str>,
        tags: Option<&str>,
        description: Option<&str>,
    ) -> Result<Self, Error> {
        Ok(FolderSpec {
            path: normalize_folder(folder)?,
            metadata: metadata_json
                .map(|m| parse_json_object(m, "folder metadata"))
                .transpose()?,
            tags: tags.map(parse_tags),
            description: description.map(str::to_owned),
        })
    }
}

/// Checks a folder path and brings it to the form `/a/b`.
pub fn normalize_folder(folder: &str) -> Result<String, Error> {
    use crate::model::{FolderError, MAX_FOLDER_PATH_BYTES};
    crate::model::normalize_folder(folder).map_err(|e| {
        let why = match e {
            FolderError::NotAbsolute => "must start with '/'".to_owned(),
            FolderError::DotSegment => "must not contain '.' or '..'".to_owned(),
            FolderError::TooLong => format!("must be at most {MAX_FOLDER_PATH_BYTES} bytes"),
            FolderError::ControlCharacter => "must not contain control characters".to_owned(),
        };
        Error::new(
            Status::InvalidArgument,
            format!("folder {why}, got {folder:?}"),
        )
    })
}

/// Splits a comma-separated tag list, dropping blanks.
pub fn parse_tags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Formats seconds since the Unix epoch as the Simvue API's UTC timestamp,
/// `YYYY-MM-DDTHH:MM:SS.ffffff` (no zone suffix). Values outside years
/// 0..=9999 are clamped.
pub fn format_timestamp(secs: f64) -> String {
    let bytes = timestamp_bytes(secs);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// [`format_timestamp`] into a fixed buffer, without allocating (the
/// metrics encoder writes one per point).
pub fn timestamp_bytes(secs: f64) -> [u8; 26] {
    let micros = if secs.is_finite() {
        (secs * 1e6).round() as i64
    } else {
        0
    };
    crate::model::timestamp_bytes_us(micros)
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block of stdout-like lines (no level) with two that name theirs,
    /// one long (two-byte length), one empty, one not ASCII.
    fn some_lines() -> (LineBlock, Vec<(String, Option<EventLevel>)>) {
        let mut block = LineBlock::new(1_704_164_645.25, None, 0);
        let mut want = Vec::new();
        let long = "y".repeat(300);
        for (line, level) in [
            ("line 1", None),
            ("", None),
            ("WARNING: é", Some(EventLevel::Warning)),
            (long.as_str(), None),
            ("oops", Some(EventLevel::Error)),
            ("last", None),
        ] {
            block.push(line, level).unwrap();
            want.push((line.to_owned(), level));
        }
        (block, want)
    }

    #[test]
    fn a_line_block_is_encoded_as_rmp_serde_encodes_its_batch() {
        let (block, want) = some_lines();
        let mut ours = Vec::new();
        block.encode(&mut ours);
        let batch = LineBatch {
            timestamp: 1_704_164_645.25,
            level: None,
            text: want.iter().map(|(l, _)| l.as_str()).collect(),
            lens: want.iter().map(|(l, _)| l.len() as u32).collect(),
            levels: vec![(2, Some(EventLevel::Warning)), (4, Some(EventLevel::Error))],
        };
        let record = Record::Lines(batch.clone());
        assert_eq!(ours, rmp_serde::to_vec_named(&record).unwrap());
        let back: Record = rmp_serde::from_slice(&ours).unwrap();
        assert_eq!(back, record);
        let events = batch.events().unwrap();
        let got: Vec<(String, Option<EventLevel>)> =
            events.into_iter().map(|(m, l)| (m.to_owned(), l)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn stderr_lines_keep_their_level_and_one_without_is_an_exception() {
        let mut block = LineBlock::new(0.0, Some(EventLevel::Error), 0);
        block.push("a", Some(EventLevel::Error)).unwrap();
        block.push("b", None).unwrap();
        block.push("c", Some(EventLevel::Error)).unwrap();
        let mut buf = Vec::new();
        block.encode(&mut buf);
        let Record::Lines(batch) = rmp_serde::from_slice(&buf).unwrap() else {
            panic!("not lines")
        };
        assert_eq!(
            batch.events().unwrap(),
            vec![
                ("a", Some(EventLevel::Error)),
                ("b", None),
                ("c", Some(EventLevel::Error))
            ]
        );
    }

    #[test]
    fn a_line_block_refuses_a_line_over_the_event_limit() {
        let mut block = LineBlock::new(0.0, None, 0);
        assert!(block.push(&"x".repeat(MAX_EVENT_BYTES), None).is_ok());
        assert!(block.push(&"x".repeat(MAX_EVENT_BYTES + 1), None).is_err());
        assert_eq!(block.len(), 1);
        assert_eq!(block.bytes(), MAX_EVENT_BYTES);
    }

    #[test]
    fn a_short_line_is_recorded_the_same_either_way() {
        let lines = ["", "a", "résidu = 1e-3", &"y".repeat(127)];
        let mut general = LineBlock::new(1.5, None, 0);
        let mut short = LineBlock::new(1.5, None, 0);
        for l in lines {
            general.push(l, None).unwrap();
            assert!(short.push_short(l));
        }
        assert!(
            !short.push_short(&"y".repeat(128)),
            "a long line goes the general way"
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        general.encode(&mut a);
        short.encode(&mut b);
        assert_eq!(a, b);
        let Record::Lines(batch) = rmp_serde::from_slice(&b).unwrap() else {
            panic!("not lines")
        };
        let got: Vec<&str> = batch.events().unwrap().iter().map(|e| e.0).collect();
        assert_eq!(got, lines);
    }

    #[test]
    fn a_batch_whose_lengths_do_not_fit_its_text_is_an_error() {
        let mut batch = LineBatch {
            timestamp: 0.0,
            level: None,
            text: "abcé".to_owned(),
            lens: vec![2, 4],
            levels: Vec::new(),
        };
        assert!(batch.events().is_err(), "past the end");
        batch.lens = vec![4, 1];
        assert!(batch.events().is_err(), "inside a character");
        batch.lens = vec![2];
        assert!(batch.events().is_err(), "text left over");
        batch.lens = vec![2, 3];
        assert_eq!(batch.events().unwrap().len(), 2);
    }

    #[test]
    fn timestamps_have_the_simvue_form() {
        assert_eq!(format_timestamp(0.0), "1970-01-01T00:00:00.000000");
        assert_eq!(
            format_timestamp(1_704_164_645.25),
            "2024-01-02T03:04:05.250000"
        );
        assert_eq!(
            format_timestamp(951_782_400.0),
            "2000-02-29T00:00:00.000000"
        );
        assert_eq!(
            format_timestamp(1_798_761_599.999_999),
            "2026-12-31T23:59:59.999999"
        );
    }

    #[test]
    fn metadata_must_be_a_json_object() {
        assert!(parse_json_object(r#"{"nx": 128, "name": "heat"}"#, "metadata").is_ok());
        assert_eq!(
            parse_json_object("[1,2]", "metadata").unwrap_err().status,
            Status::InvalidJson
        );
        assert_eq!(
            parse_json_object("{nx: 1", "metadata").unwrap_err().status,
            Status::InvalidJson
        );
    }

    #[test]
    fn tags_split_on_commas_and_drop_blanks() {
        assert_eq!(parse_tags(" cfd, test ,,"), vec!["cfd", "test"]);
    }
}
