//! A pseudo-terminal for the program's stdout.
//!
//! A C or Fortran runtime buffers stdout by what it is: line by line on a
//! terminal, in 4 KiB blocks on a pipe or a file. Behind a plain pipe, a
//! program run from a terminal would therefore print in blocks, late, and
//! its lines would reach the run (and the rules' metrics) only when a block
//! filled. With `--pty auto` (the default) the program's stdout is a
//! pseudo-terminal whenever the wrapper's own stdout is a terminal, so it
//! buffers exactly as it would have without the wrapper; in a batch job
//! (stdout a file) it gets a pipe (with `--direct`, the file itself,
//! [`super::direct`]). `--pty always` asks for line-by-line output
//! in a batch job too (at the price of one write per line in the program),
//! `--pty never` for no terminal anywhere.
//!
//! The terminal's output processing is turned off (no `\n` → `\r\n`), so
//! the bytes are passed through and recorded unchanged; its size is the
//! wrapper's terminal's, and follows it when the user resizes the window
//! (SIGWINCH, which the program receives from the user's terminal too).
//! stdin and stderr are not changed.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// When the program's stdout is a pseudo-terminal.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// When the wrapper's own stdout is a terminal.
    Auto,
    Always,
    Never,
}

impl When {
    /// Whether to give the program a pseudo-terminal now.
    pub fn wanted(self) -> bool {
        match self {
            When::Always => true,
            When::Never => false,
            // SAFETY: isatty only inspects the descriptor.
            When::Auto => unsafe { libc::isatty(1) == 1 },
        }
    }
}

/// Both ends of a new pseudo-terminal: the wrapper reads `master`, the
/// program writes `slave`.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Opens a pseudo-terminal with output processing off, sized as the
/// wrapper's stdout if that is a terminal.
pub fn open() -> io::Result<Pty> {
    // SAFETY: each call gets valid arguments; every descriptor returned is
    // owned at once, so it is closed on every path.
    unsafe {
        let m = check(libc::posix_openpt(
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))?;
        let master = OwnedFd::from_raw_fd(m);
        check(libc::grantpt(m))?;
        check(libc::unlockpt(m))?;
        let mut name = [0 as libc::c_char; 128];
        let r = libc::ptsname_r(m, name.as_mut_ptr(), name.len());
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        let path = CStr::from_ptr(name.as_ptr());
        let s = check(libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))?;
        let slave = OwnedFd::from_raw_fd(s);
        let mut t: libc::termios = std::mem::zeroed();
        check(libc::tcgetattr(s, &mut t))?;
        t.c_oflag &= !libc::OPOST;
        check(libc::tcsetattr(s, libc::TCSANOW, &t))?;
        copy_size(slave.as_fd());
        Ok(Pty { master, slave })
    }
}

/// Gives the terminal behind `to` the size of the wrapper's stdout, if that
/// is a terminal.
pub fn copy_size(to: BorrowedFd<'_>) {
    // SAFETY: TIOCGWINSZ fills a winsize; TIOCSWINSZ reads one; both on
    // descriptors that stay open for the call.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Set by SIGWINCH: the user's terminal changed size.
static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_resize(_sig: libc::c_int) {
    RESIZED.store(true, Ordering::Release);
}

/// Notes SIGWINCH from now on (see [`resized`]).
pub fn watch_resizes() {
    // SAFETY: a zeroed sigaction is a valid start; the handler only stores
    // to an atomic. No SA_RESTART: the supervisor's wait ends at once.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_resize as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGWINCH, &sa, std::ptr::null_mut());
    }
}

/// Whether the user's terminal changed size since the last call.
pub fn resized() -> bool {
    RESIZED.swap(false, Ordering::AcqRel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn bytes_written_to_the_slave_read_back_unchanged_from_the_master() {
        let p = open().expect("pty");
        // SAFETY: isatty only inspects the descriptor.
        assert_eq!(unsafe { libc::isatty(p.slave.as_raw_fd()) }, 1);
        let mut w = std::fs::File::from(p.slave);
        w.write_all(b"a\nb\r\n").expect("write");
        drop(w);
        let mut r = std::fs::File::from(p.master);
        let mut got = Vec::new();
        // The master reads what was written, then fails (EIO) once no
        // slave is open.
        let mut buf = [0u8; 64];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"a\nb\r\n");
    }
}
