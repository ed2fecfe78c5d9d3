//! The run model's facts, one definition shared by the library and the
//! server: run statuses, name and size limits, the metric-name and
//! folder-path rules, file categories, and the Simvue timestamp format.
//!
//! Pure data and checks: no I/O and no error type of either side (the
//! library and the server each word their own messages from the small
//! error enums here). Nothing here is part of the C ABI.

use serde::{Deserialize, Serialize};

/// Longest name (run, metric, tag, alert) a server accepts, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest event message a server accepts, in bytes.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Longest folder path accepted, in bytes.
///
/// cbindgen:ignore
pub const MAX_FOLDER_PATH_BYTES: usize = 1024;
/// Largest serialised metadata (or system, notifications, visibility)
/// object accepted, in bytes.
///
/// cbindgen:ignore
pub const MAX_METADATA_BYTES: usize = 1 << 20;
/// Heartbeat timeout of a run that does not set one, in seconds.
///
/// cbindgen:ignore
pub const DEFAULT_HEARTBEAT_TIMEOUT_SECS: f64 = 180.0;

/// Run statuses, with the spelling of the Simvue API.
///
/// cbindgen:ignore
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Created,
    Running,
    Completed,
    Failed,
    Terminated,
    Lost,
}

/// Every run status, in lifecycle order.
///
/// cbindgen:ignore
pub const RUN_STATUSES: [RunStatus; 6] = [
    RunStatus::Created,
    RunStatus::Running,
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::Terminated,
    RunStatus::Lost,
];

impl RunStatus {
    /// The status spelled `s`, if any.
    pub fn from_name(s: &str) -> Option<Self> {
        RUN_STATUSES.into_iter().find(|st| st.as_str() == s)
    }

    /// The Simvue spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Created => "created",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Terminated => "terminated",
            RunStatus::Lost => "lost",
        }
    }

    /// Whether the run is over (`completed`, `failed`, `terminated`); a
    /// `lost` run may still report again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Terminated
        )
    }
}

/// The category of a saved file.
///
/// cbindgen:ignore
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Code,
    Input,
    Output,
}

/// Every file category.
///
/// cbindgen:ignore
pub const CATEGORIES: [Category; 3] = [Category::Code, Category::Input, Category::Output];

impl Category {
    /// The category spelled `s`, if any.
    pub fn from_name(s: &str) -> Option<Self> {
        CATEGORIES.into_iter().find(|c| c.as_str() == s)
    }

    /// The Simvue spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Code => "code",
            Category::Input => "input",
            Category::Output => "output",
        }
    }
}

/// The level of an event (the `log_level` our server accepts beside the
/// Simvue fields; a plain Simvue client sees the message only).
///
/// cbindgen:ignore
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

/// Every event level, least severe first.
///
/// cbindgen:ignore
pub const EVENT_LEVELS: [EventLevel; 5] = [
    EventLevel::Debug,
    EventLevel::Info,
    EventLevel::Warning,
    EventLevel::Error,
    EventLevel::Critical,
];

impl EventLevel {
    /// The level spelled `s`, if any.
    pub fn from_name(s: &str) -> Option<Self> {
        EVENT_LEVELS.into_iter().find(|l| l.as_str() == s)
    }

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventLevel::Debug => "debug",
            EventLevel::Info => "info",
            EventLevel::Warning => "warning",
            EventLevel::Error => "error",
            EventLevel::Critical => "critical",
        }
    }
}

/// Why a name is refused.
///
/// cbindgen:ignore
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// Longer than the limit given to [`check_name`].
    TooLong,
    ControlCharacter,
    /// A metric name with a character outside [`is_metric_name_char`].
    BadCharacter,
}

/// Checks a user-supplied name: non-empty, at most `max` bytes, no control
/// characters.
pub fn check_name(name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.len() > max {
        Err(NameError::TooLong)
    } else if name.chars().any(char::is_control) {
        Err(NameError::ControlCharacter)
    } else {
        Ok(())
    }
}

/// The characters the Simvue client allows in metric names: letters,
/// digits, blanks and `- _ / . : = > < + ( ) %`.
pub fn is_metric_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ' ' || "-_/.:=><+()%".contains(c)
}

/// A name ([`check_name`] with [`MAX_NAME_BYTES`]) made of
/// [`is_metric_name_char`] characters only.
pub fn check_metric_name(name: &str) -> Result<(), NameError> {
    check_name(name, MAX_NAME_BYTES)?;
    if name.chars().all(is_metric_name_char) {
        Ok(())
    } else {
        Err(NameError::BadCharacter)
    }
}

/// Why a folder path is refused.
///
/// cbindgen:ignore
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderError {
    /// Does not start with `/`.
    NotAbsolute,
    /// Has a `.` or `..` segment.
    DotSegment,
    /// Longer than [`MAX_FOLDER_PATH_BYTES`].
    TooLong,
    ControlCharacter,
}

/// Checks a folder path and brings it to the form `/` or `/a/b` (empty
/// segments dropped).
pub fn normalize_folder(path: &str) -> Result<String, FolderError> {
    if path.len() > MAX_FOLDER_PATH_BYTES {
        return Err(FolderError::TooLong);
    }
    if !path.starts_with('/') {
        return Err(FolderError::NotAbsolute);
    }
    if path.chars().any(char::is_control) {
        return Err(FolderError::ControlCharacter);
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(FolderError::DotSegment);
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Proleptic Gregorian date `(year, month, day)` of a day count since
/// 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a
    // 400-year era's years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Microseconds since the epoch as the Simvue API's UTC timestamp,
/// `YYYY-MM-DDTHH:MM:SS.ffffff` (no zone suffix), into a fixed buffer
/// without allocating. Values outside years 0..=9999 are clamped.
pub fn timestamp_bytes_us(us: i64) -> [u8; 26] {
    let us = us.clamp(-62_167_219_200_000_000, 253_402_300_799_999_999);
    let days = us.div_euclid(86_400_000_000);
    let rem = us.rem_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    let sod = rem / 1_000_000;
    let mut out = *b"0000-00-00T00:00:00.000000";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, i64::from(m));
    put(8, 2, i64::from(d));
    put(11, 2, sod / 3600);
    put(14, 2, (sod / 60) % 60);
    put(17, 2, sod % 60);
    put(20, 6, rem % 1_000_000);
    out
}

/// [`timestamp_bytes_us`] as a `String`.
pub fn format_timestamp_us(us: i64) -> String {
    String::from_utf8_lossy(&timestamp_bytes_us(us)).into_owned()
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|+00:00]` (UTC) into
/// microseconds since the epoch; `None` for anything else.
pub fn parse_timestamp_us(b: &[u8]) -> Option<i64> {
    if b.len() < 19 {
        return None;
    }
    Some(minute_us(&b[..17])? + within_minute_us(&b[17..])?)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
    })
}

/// `YYYY-MM-DD[T ]HH:MM:` → microseconds since the epoch at that minute.
fn minute_us(b: &[u8]) -> Option<i64> {
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi) = (digits(&b[11..13])?, digits(&b[14..16])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 {
        return None;
    }
    Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60) * 1_000_000)
}

/// `SS[.f{1,9}][Z|+00:00]` → microseconds.
fn within_minute_us(b: &[u8]) -> Option<i64> {
    if b.len() < 2 {
        return None;
    }
    let se = digits(&b[0..2])?;
    if se > 60 {
        return None;
    }
    let mut i = 2;
    let mut micros = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start).min(6)..6 {
            micros *= 10;
        }
    }
    let rest = &b[i..];
    if !(rest.is_empty() || rest == b"Z" || rest == b"+00:00") {
        return None;
    }
    Some(se * 1_000_000 + micros)
}

/// [`parse_timestamp_us`] for a stream of timestamps that mostly share
/// their minute: the date and hour:minute are parsed once per minute.
///
/// cbindgen:ignore
#[derive(Debug, Default)]
pub struct TsParser {
    minute: Option<([u8; 17], i64)>,
}

impl TsParser {
    /// Parses one timestamp.
    pub fn parse(&mut self, b: &[u8]) -> Option<i64> {
        if b.len() < 19 {
            return None;
        }
        let base = match &self.minute {
            Some((prefix, base)) if prefix[..] == b[..17] => *base,
            _ => {
                let base = minute_us(&b[..17])?;
                let mut prefix = [0u8; 17];
                prefix.copy_from_slice(&b[..17]);
                self.minute = Some((prefix, base));
                base
            }
        };
        Some(base + within_minute_us(&b[17..])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_in_simvue_format() {
        let us = parse_timestamp_us(b"2024-01-02T03:04:05.000007").unwrap();
        assert_eq!(format_timestamp_us(us), "2024-01-02T03:04:05.000007");
        assert_eq!(parse_timestamp_us(b"1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(
            parse_timestamp_us(b"2024-01-02 03:04:05.5"),
            parse_timestamp_us(b"2024-01-02T03:04:05.500000")
        );
        assert_eq!(parse_timestamp_us(b"garbage"), None);
        assert_eq!(parse_timestamp_us(b"2024-13-02T03:04:05"), None);
        assert_eq!(
            format_timestamp_us(951_782_400_000_000),
            "2000-02-29T00:00:00.000000"
        );
        for d in [-800_000, -1, 0, 59, 60, 11_016, 2_932_896] {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(day)), d);
        }
        let mut p = TsParser::default();
        for t in [
            "2024-01-02T03:04:05.000007",
            "2024-01-02T03:04:59.9",
            "2024-01-02T03:05:00Z",
            "2024-01-02T03:04:05",
        ] {
            assert_eq!(
                p.parse(t.as_bytes()),
                parse_timestamp_us(t.as_bytes()),
                "{t}"
            );
        }
        assert_eq!(p.parse(b"2024-01-02T03:04:xx"), None);
    }

    #[test]
    fn statuses_and_categories_round_trip_their_spelling() {
        for s in RUN_STATUSES {
            assert_eq!(RunStatus::from_name(s.as_str()), Some(s));
        }
        let terminal: Vec<&str> = RUN_STATUSES
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(terminal, ["completed", "failed", "terminated"]);
        for c in CATEGORIES {
            assert_eq!(Category::from_name(c.as_str()), Some(c));
        }
        assert_eq!(RunStatus::from_name("done"), None);
        assert_eq!(Category::from_name("Output"), None);
    }

    #[test]
    fn names_and_folders_follow_the_rules() {
        assert_eq!(check_name("", 5), Err(NameError::Empty));
        assert_eq!(check_name("abcdef", 5), Err(NameError::TooLong));
        assert_eq!(check_name("a\nb", 5), Err(NameError::ControlCharacter));
        assert_eq!(check_metric_name("loss/train (x)"), Ok(()));
        assert_eq!(check_metric_name("a;b"), Err(NameError::BadCharacter));
        assert_eq!(normalize_folder("//a//b/").as_deref(), Ok("/a/b"));
        assert_eq!(normalize_folder("/").as_deref(), Ok("/"));
        assert_eq!(normalize_folder("a"), Err(FolderError::NotAbsolute));
        assert_eq!(normalize_folder("/a/../b"), Err(FolderError::DotSegment));
        assert_eq!(
            normalize_folder("/a\tb"),
            Err(FolderError::ControlCharacter)
        );
        let long = format!("/{}", "x".repeat(MAX_FOLDER_PATH_BYTES));
        assert_eq!(normalize_folder(&long), Err(FolderError::TooLong));
    }
}
