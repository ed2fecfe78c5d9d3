//! What SLURM says about the job the wrapper runs in: its time limit and
//! end, and why it is being stopped when a signal comes from outside.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A stopping signal (SIGTERM, SIGINT, SIGHUP) the wrapper received from
/// outside, and when (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct Stop {
    pub signal: i32,
    pub at: f64,
}

impl Stop {
    /// Why the job was stopped, as precisely as the facts allow: SLURM's own
    /// word (`scontrol show job`: state TIMEOUT or reason TimeLimit,
    /// CANCELLED, PREEMPTED, NODE_FAIL), else a signal that came at or after
    /// the job's end time is the time limit, else only that a signal came.
    pub fn reason(&self, slurm: &SlurmTimes) -> String {
        let Ok(job) = std::env::var("SLURM_JOB_ID") else {
            return "signal from outside the program (not in a SLURM job)".to_owned();
        };
        if let Some(text) = command_output("scontrol", &["show", "job", "-o", &job])
            && let Some(why) = slurm_stop_reason(&text)
        {
            return why;
        }
        match slurm.end_unix {
            // SLURM checks time limits every 30 s or so; a little early
            // counts too (clocks, rounding to seconds).
            Some(end) if self.at >= end - 5.0 => "SLURM time limit".to_owned(),
            Some(_) => {
                "SLURM job stopped before its time limit (scancel, preemption or another signal)"
                    .to_owned()
            }
            None => {
                "SLURM job with no known time limit stopped (scancel, preemption or another signal)"
                    .to_owned()
            }
        }
    }
}

/// What `scontrol show job -o` says about why a job is ending, if anything.
fn slurm_stop_reason(text: &str) -> Option<String> {
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .map(str::to_owned)
    };
    let state = field("JobState=").unwrap_or_default();
    let reason = field("Reason=").unwrap_or_default();
    Some(match (state.as_str(), reason.as_str()) {
        ("TIMEOUT", _) | (_, "TimeLimit") => "SLURM time limit (TIMEOUT)".to_owned(),
        ("CANCELLED", _) => "SLURM job cancelled (scancel)".to_owned(),
        ("PREEMPTED", _) => "SLURM job preempted".to_owned(),
        ("NODE_FAIL", _) => "SLURM node failure".to_owned(),
        ("DEADLINE", _) => "SLURM deadline reached".to_owned(),
        _ => return None,
    })
}

/// The job's time limit (seconds) and projected end (Unix seconds):
/// `SLURM_JOB_END_TIME` where SLURM exports it (23.02 on), else asked of
/// `squeue` once at start (limit and time left). Empty outside a job, when
/// unlimited, or when squeue does not answer within 3 s.
#[derive(Debug, Default, Clone, Copy)]
pub struct SlurmTimes {
    pub limit_secs: Option<i64>,
    pub end_unix: Option<f64>,
}

pub fn slurm_times() -> SlurmTimes {
    let Ok(job) = std::env::var("SLURM_JOB_ID") else {
        return SlurmTimes::default();
    };
    let now = simtrack::record::now_unix();
    let mut t = SlurmTimes::default();
    if let Some(out) = command_output("squeue", &["-h", "-j", &job, "-o", "%l %L"]) {
        let mut f = out.split_whitespace();
        t.limit_secs = f.next().and_then(parse_slurm_duration);
        t.end_unix = f
            .next()
            .and_then(parse_slurm_duration)
            .map(|left| now + left as f64);
    }
    if let Some(end) = std::env::var("SLURM_JOB_END_TIME")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|e| *e > 0.0)
    {
        t.end_unix = Some(end);
    }
    t
}

/// The stdout of a short command, or `None` if it fails or takes over 3 s.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    Some(out)
}

/// SLURM's `[days-]hours:minutes:seconds`, `minutes:seconds` or `minutes`.
fn parse_slurm_duration(text: &str) -> Option<i64> {
    let (days, rest) = match text.split_once('-') {
        Some((d, r)) => (d.parse::<i64>().ok()?, r),
        None => (0, text),
    };
    let parts: Vec<i64> = rest
        .split(':')
        .map(|p| p.parse::<i64>().ok())
        .collect::<Option<_>>()?;
    let (h, m, s) = match (text.contains('-'), parts.as_slice()) {
        (_, [h, m, s]) => (*h, *m, *s),
        (true, [h, m]) => (*h, *m, 0),
        (true, [h]) => (*h, 0, 0),
        (false, [m, s]) => (0, *m, *s),
        (false, [m]) => (0, *m, 0),
        _ => return None,
    };
    Some(((days * 24 + h) * 60 + m) * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_durations_become_seconds() {
        assert_eq!(parse_slurm_duration("1:00"), Some(60));
        assert_eq!(parse_slurm_duration("2:00:00"), Some(7200));
        assert_eq!(parse_slurm_duration("1-00:00:01"), Some(86401));
        assert_eq!(parse_slurm_duration("1-2"), Some(93600));
        assert_eq!(parse_slurm_duration("UNLIMITED"), None);
    }

    #[test]
    fn scontrol_says_why_a_job_ends() {
        let line = |s: &str, r: &str| {
            format!("JobId=7 JobName=x JobState={s} Reason={r} Dependency=(null)")
        };
        assert_eq!(
            slurm_stop_reason(&line("TIMEOUT", "TimeLimit")).as_deref(),
            Some("SLURM time limit (TIMEOUT)")
        );
        assert_eq!(
            slurm_stop_reason(&line("COMPLETING", "TimeLimit")).as_deref(),
            Some("SLURM time limit (TIMEOUT)")
        );
        assert_eq!(
            slurm_stop_reason(&line("CANCELLED", "None")).as_deref(),
            Some("SLURM job cancelled (scancel)")
        );
        assert_eq!(slurm_stop_reason(&line("RUNNING", "None")), None);
        assert_eq!(slurm_stop_reason(&line("COMPLETING", "None")), None);
    }
}
