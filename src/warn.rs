//! The library's warnings to the user (a spool others can read, data the
//! server refused, ...): one line each on stderr, unless the program that
//! links the library sends them elsewhere first ([`set_sink`]).

use std::sync::OnceLock;

static SINK: OnceLock<fn(&str)> = OnceLock::new();

/// Where warnings go from now on, instead of stderr (once per process;
/// false if already set). `simtrack run` uses it: its stderr may be the
/// output file it reads back, where it notes its own writes.
pub fn set_sink(sink: fn(&str)) -> bool {
    SINK.set(sink).is_ok()
}

/// Tells the user `msg` (one line, without its newline).
pub(crate) fn warn(msg: &str) {
    match SINK.get() {
        Some(sink) => sink(msg),
        None => eprintln!("{msg}"),
    }
}
