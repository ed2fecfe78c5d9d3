//! The hot path's clock: raw ticks that cost a few nanoseconds to read,
//! turned into seconds later by the writer thread.
//!
//! On x86-64 Linux whose kernel itself keeps time with the TSC (so the TSC
//! is known to be invariant and synchronised across cores), a tick is a TSC
//! cycle: `rdtsc` costs about a third of `clock_gettime`. Everywhere else a
//! tick is a nanosecond of `Instant`. [`Calibration`] maps ticks to seconds
//! since the run started, re-measuring the tick rate against `Instant` as
//! the run goes on so its precision grows with the run's length.

use std::sync::OnceLock;
use std::time::Instant;

/// Whether ticks are TSC cycles (decided once per process).
fn use_tsc() -> bool {
    static TSC: OnceLock<bool> = OnceLock::new();
    *TSC.get_or_init(|| {
        cfg!(target_arch = "x86_64")
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
    })
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Reads the tick counter.
#[inline]
pub(crate) fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if use_tsc() {
        // SAFETY: rdtsc has no preconditions on x86-64.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    base().elapsed().as_nanos() as u64
}

/// Converts ticks into seconds since the run's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calibration {
    start_instant: Instant,
    start_ticks: u64,
    /// Seconds per tick, measured over the run so far.
    seconds_per_tick: f64,
}

impl Calibration {
    /// Marks the run's start.
    pub fn start() -> Self {
        let start_ticks = ticks();
        let start_instant = Instant::now();
        Calibration {
            start_instant,
            start_ticks,
            seconds_per_tick: if use_tsc() { 0.0 } else { 1e-9 },
        }
    }

    /// Re-measures the tick rate against `Instant`; call before converting
    /// a batch of ticks read up to now.
    pub fn update(&mut self) {
        if !use_tsc() {
            return;
        }
        let t = ticks();
        let elapsed = self.start_instant.elapsed().as_secs_f64();
        let dt = t.saturating_sub(self.start_ticks);
        if dt > 0 && elapsed > 0.0 {
            self.seconds_per_tick = elapsed / dt as f64;
        }
    }

    /// The tick count at the start and the seconds per tick, as measured.
    pub fn parts(&self) -> (u64, f64) {
        (self.start_ticks, self.seconds_per_tick)
    }

    /// Seconds between the run's start and `t`.
    #[inline]
    pub fn seconds(&self, t: u64) -> f64 {
        t.saturating_sub(self.start_ticks) as f64 * self.seconds_per_tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_to_the_seconds_instant_measures() {
        let mut c = Calibration::start();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let t = ticks();
        let truth = c.start_instant.elapsed().as_secs_f64();
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.update();
        let got = c.seconds(t);
        assert!(
            (got - truth).abs() < 1e-3,
            "ticks say {got} s, Instant says {truth} s"
        );
    }
}
