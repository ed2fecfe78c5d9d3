//! Turning a program's printed lines into metrics: the `--metric`,
//! `--step-regex` and `--rules FILE` rules, and the count of values that did
//! not parse as numbers (reported once at the end, never logged).
//!
//! A rules file is TOML:
//!
//! ```toml
//! step = 'iter\s+(\d+)'              # optional: the step, from any line
//!
//! [[metric]]                          # one metric from the first capture group
//! name = "residual"
//! regex = 'residual\s*=\s*(\S+)'
//!
//! [[metric]]                          # a table row: every named group is a metric
//! regex = '^\s*(?P<step>\d+)\s+(?P<u>\S+)\s+(?P<v>\S+)\s*$'
//! prefix = "res/"                     # optional: metric names are prefix + group name
//! stream = "stdout"                   # optional: "stdout", "stderr" or "both" (default)
//! ```
//!
//! A group named `step` gives that line's step; otherwise the last step the
//! step rule matched is used, else the metric's next step.

use std::collections::BTreeMap;

use regex::{Regex, RegexSet};
use serde::Deserialize;

/// Which of the child's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum Streams {
    Stdout,
    Stderr,
    #[default]
    Both,
}

impl Streams {
    fn accepts(self, s: Stream) -> bool {
        matches!(
            (self, s),
            (Streams::Both, _)
                | (Streams::Stdout, Stream::Stdout)
                | (Streams::Stderr, Stream::Stderr)
        )
    }
}

#[derive(Debug)]
enum Kind {
    /// The first capture group is the value of this metric.
    First(String),
    /// Each (group index, metric name); the group index of `step`, if any.
    Named {
        metrics: Vec<(usize, String)>,
        step: Option<usize>,
    },
}

#[derive(Debug)]
struct Rule {
    regex: Regex,
    kind: Kind,
    streams: Streams,
}

/// The rules of one `simtrack run`.
#[derive(Debug, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    step: Option<Regex>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRules {
    step: Option<String>,
    #[serde(default)]
    metric: Vec<FileRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRule {
    name: Option<String>,
    regex: String,
    prefix: Option<String>,
    #[serde(default)]
    stream: Streams,
}

fn compile(what: &str, re: &str) -> Result<Regex, String> {
    Regex::new(re).map_err(|e| format!("invalid regex for {what}: {e}"))
}

fn check_metric(name: &str) -> Result<(), String> {
    simtrack::record::check_metric_name(name).map_err(|e| e.to_string())
}

impl Rules {
    /// Adds `--metric NAME=REGEX`.
    pub fn add_metric_arg(&mut self, arg: &str) -> Result<(), String> {
        let (name, re) = arg
            .split_once('=')
            .ok_or_else(|| format!("--metric {arg:?}: expected NAME=REGEX"))?;
        self.add_first(name.trim(), re, Streams::Both, &format!("--metric {name}"))
    }

    fn add_first(
        &mut self,
        name: &str,
        re: &str,
        streams: Streams,
        what: &str,
    ) -> Result<(), String> {
        check_metric(name).map_err(|e| format!("{what}: {e}"))?;
        let regex = compile(what, re)?;
        if regex.captures_len() < 2 {
            return Err(format!(
                "{what}: the regex needs a capture group for the value"
            ));
        }
        self.rules.push(Rule {
            regex,
            kind: Kind::First(name.to_owned()),
            streams,
        });
        Ok(())
    }

    /// Sets `--step-regex` (its first capture group is the step).
    pub fn set_step(&mut self, re: &str) -> Result<(), String> {
        let regex = compile("--step-regex", re)?;
        if regex.captures_len() < 2 {
            return Err("--step-regex: the regex needs a capture group for the step".to_owned());
        }
        self.step = Some(regex);
        Ok(())
    }

    /// Adds the rules of a TOML rules file (its text; `origin` names it in errors).
    pub fn add_file(&mut self, text: &str, origin: &str) -> Result<(), String> {
        let f: FileRules = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        if let Some(s) = &f.step {
            self.set_step(s).map_err(|e| format!("{origin}: {e}"))?;
        }
        for (i, r) in f.metric.into_iter().enumerate() {
            let what = format!("{origin}: metric rule {}", i + 1);
            if let Some(name) = &r.name {
                self.add_first(name, &r.regex, r.stream, &what)?;
                continue;
            }
            let regex = compile(&what, &r.regex)?;
            let prefix = r.prefix.unwrap_or_default();
            let mut metrics = Vec::new();
            let mut step = None;
            for (idx, group) in regex.capture_names().enumerate() {
                match group {
                    Some("step") => step = Some(idx),
                    Some(g) => {
                        let name = format!("{prefix}{g}");
                        check_metric(&name).map_err(|e| format!("{what}: {e}"))?;
                        metrics.push((idx, name));
                    }
                    None => {}
                }
            }
            if metrics.is_empty() {
                return Err(format!(
                    "{what}: give a `name` (first group is the value) or named groups (?P<metric>...)"
                ));
            }
            self.rules.push(Rule {
                regex,
                kind: Kind::Named { metrics, step },
                streams: r.stream,
            });
        }
        Ok(())
    }
}

/// Parses a printed number: Rust's float syntax plus Fortran's `D`
/// exponent (`1.5D-03`), `NaN` and `Infinity`, with surrounding blanks and
/// one trailing `,` or `;` ignored.
pub fn parse_value(text: &str) -> Option<f64> {
    let t = text.trim();
    let t = t.strip_suffix([',', ';']).unwrap_or(t).trim();
    if let Ok(v) = t.parse::<f64>() {
        return Some(v);
    }
    if t.contains(['d', 'D']) {
        return t.replace(['d', 'D'], "e").parse().ok();
    }
    None
}

/// Applies the rules line by line and keeps the state they share: the
/// current step and the values that did not parse.
///
/// With two or more regexes (the step rule counts), one pass of a
/// [`RegexSet`] over the line says which can match; only those are run for
/// their groups. A line no rule matches costs that one pass (and each
/// regex's literal prefilter makes most of them quick).
#[derive(Debug)]
pub struct Matcher {
    rules: Rules,
    /// Every rule's regex, then the step rule's; `None` with fewer than two.
    set: Option<RegexSet>,
    step: i64,
    /// Per metric: how many values did not parse, and the first of them.
    pub unparsed: BTreeMap<String, (u64, String)>,
}

impl Matcher {
    pub fn new(rules: Rules) -> Matcher {
        let patterns: Vec<&str> = rules
            .rules
            .iter()
            .map(|r| r.regex.as_str())
            .chain(rules.step.as_ref().map(Regex::as_str))
            .collect();
        // Each pattern compiled alone already; a set too big for the
        // regex crate's limits just goes without the prefilter.
        let set = (patterns.len() >= 2)
            .then(|| RegexSet::new(&patterns).ok())
            .flatten();
        Matcher {
            rules,
            set,
            step: -1,
            unparsed: BTreeMap::new(),
        }
    }

    /// Whether any rule can log anything (else lines need not be shown to it).
    pub fn has_rules(&self) -> bool {
        !self.rules.rules.is_empty()
    }

    fn bad(&mut self, metric: &str, text: &str) {
        let e = self
            .unparsed
            .entry(metric.to_owned())
            .or_insert_with(|| (0, text.chars().take(80).collect()));
        e.0 += 1;
    }

    /// Calls `log(metric, value, step)` for each metric `line` carries.
    pub fn line(&mut self, line: &str, stream: Stream, mut log: impl FnMut(&str, f64, i64)) {
        let hits = self.set.as_ref().map(|s| s.matches(line));
        if hits.as_ref().is_some_and(|h| !h.matched_any()) {
            return;
        }
        let may = |i: usize| hits.as_ref().is_none_or(|h| h.matched(i));
        let n = self.rules.rules.len();
        if let Some(re) = &self.rules.step
            && may(n)
            && let Some(s) = re.captures(line).and_then(|c| c.get(1))
            && let Ok(step) = s.as_str().trim().parse::<i64>()
        {
            self.step = step;
        }
        let mut bad: Vec<(String, String)> = Vec::new();
        for (i, rule) in self.rules.rules.iter().enumerate() {
            if !rule.streams.accepts(stream) || !may(i) {
                continue;
            }
            let Some(caps) = rule.regex.captures(line) else {
                continue;
            };
            match &rule.kind {
                Kind::First(name) => {
                    let text = caps.get(1).map_or("", |m| m.as_str());
                    match parse_value(text) {
                        Some(v) => log(name, v, self.step),
                        None => bad.push((name.clone(), text.to_owned())),
                    }
                }
                Kind::Named { metrics, step } => {
                    let step = step
                        .and_then(|i| caps.get(i))
                        .and_then(|m| m.as_str().trim().parse::<i64>().ok())
                        .unwrap_or(self.step);
                    for (i, name) in metrics {
                        let Some(m) = caps.get(*i) else { continue };
                        match parse_value(m.as_str()) {
                            Some(v) => log(name, v, step),
                            None => bad.push((name.clone(), m.as_str().to_owned())),
                        }
                    }
                }
            }
        }
        for (name, text) in bad {
            self.bad(&name, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rules: Rules, lines: &[&str]) -> (Vec<(String, f64, i64)>, Matcher) {
        let mut m = Matcher::new(rules);
        let mut out = Vec::new();
        for l in lines {
            m.line(l, Stream::Stdout, |n, v, s| out.push((n.to_owned(), v, s)));
        }
        (out, m)
    }

    #[test]
    fn metric_arg_takes_the_first_group_and_the_step_rule_the_step() {
        let mut r = Rules::default();
        r.add_metric_arg(r"residual=residual\s*=\s*(\S+)").unwrap();
        r.set_step(r"^iter (\d+)").unwrap();
        let (out, m) = run(
            r,
            &[
                "residual = 1.0",
                "iter 7 residual = 2.5D-03",
                "residual = ***",
            ],
        );
        assert_eq!(
            out,
            vec![
                ("residual".to_owned(), 1.0, -1),
                ("residual".to_owned(), 2.5e-3, 7)
            ]
        );
        assert_eq!(m.unparsed["residual"], (1, "***".to_owned()));
    }

    #[test]
    fn named_groups_log_one_metric_each_with_the_row_step() {
        let mut r = Rules::default();
        r.add_file(
            "[[metric]]\nregex = '^\\s*(?P<step>\\d+)\\s+(?P<u>\\S+)\\s+(?P<v>\\S+)$'\nprefix = 'res/'\n",
            "rules.toml",
        )
        .unwrap();
        let (out, _) = run(r, &["  3  1.5e-2  NaN", "it u v"]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], ("res/u".to_owned(), 1.5e-2, 3));
        assert_eq!(out[1].0, "res/v");
        assert!(out[1].1.is_nan());
    }

    #[test]
    fn the_set_prefilter_finds_what_each_rule_finds() {
        let rules = || {
            let mut r = Rules::default();
            r.add_metric_arg(r"residual=residual\s*=\s*(\S+)").unwrap();
            r.add_metric_arg(r"energy=energy\s+(\S+)").unwrap();
            r.set_step(r"^iter (\d+)").unwrap();
            r
        };
        let lines = [
            "nothing here",
            "iter 3",
            "residual = 0.5 energy 2",
            "iter 4 energy 7",
            "residual = x",
        ];
        let (out, m) = run(rules(), &lines);
        assert!(m.set.is_some());
        assert_eq!(
            out,
            vec![
                ("residual".to_owned(), 0.5, 3),
                ("energy".to_owned(), 2.0, 3),
                ("energy".to_owned(), 7.0, 4),
            ]
        );
        assert_eq!(m.unparsed["residual"], (1, "x".to_owned()));
        // The same lines, one rule at a time (no set), find the same values.
        let mut one = Rules::default();
        one.add_metric_arg(r"energy=energy\s+(\S+)").unwrap();
        let (alone, m1) = run(one, &lines);
        assert!(m1.set.is_none());
        assert_eq!(
            alone,
            vec![
                ("energy".to_owned(), 2.0, -1),
                ("energy".to_owned(), 7.0, -1)
            ]
        );
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        let mut r = Rules::default();
        assert!(
            r.add_metric_arg("x=(")
                .unwrap_err()
                .contains("invalid regex")
        );
        assert!(
            r.add_metric_arg("x=abc")
                .unwrap_err()
                .contains("capture group")
        );
        assert!(
            r.add_metric_arg("noequals")
                .unwrap_err()
                .contains("NAME=REGEX")
        );
        assert!(
            r.add_file("[[metric]]\nregex='a'\n", "f")
                .unwrap_err()
                .contains("named groups")
        );
        assert!(r.add_file("bogus = 1\n", "f").is_err());
    }

    #[test]
    fn values_parse_like_fortran_prints_them() {
        assert_eq!(parse_value(" 1.25E+02,"), Some(125.0));
        assert_eq!(parse_value("1.0d-3"), Some(1e-3));
        assert_eq!(parse_value("Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_value("abc"), None);
        assert_eq!(parse_value(""), None);
    }
}
