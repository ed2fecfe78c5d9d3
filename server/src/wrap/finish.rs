//! The end of a run under `simtrack run`: the spool first, then, online,
//! the rest delivered here when it is little, else in the background.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use simtrack::Run;
use simtrack::config::Config;
use simtrack::record::RunStatus;

use super::say;

/// Spool backlog (bytes not yet acknowledged) above which the wrapper does
/// not wait for the server at exit: a few MB take the server seconds.
const WAIT_BACKLOG_BYTES: u64 = 1 << 20;

/// Ends the run. The wrapper waits for the spool (synced: the data is safe).
/// Online, it then waits for the server as the library's finish would, if
/// what is left to upload is little. Else it does not wait, not even for the
/// request in flight: it sends the final status ahead of the rest and leaves
/// the rest to a `simtrack sync --run ID` started in the background, so a
/// burst of output does not hold the job script up. If that background
/// delivery is cut short (the end of a batch job kills it), everything stays
/// in the spool for the next `simtrack sync`.
pub fn finish(run: Run, config: &Config, status: RunStatus) {
    let dir = run.spool_dir().map(simtrack::spool::RunDir::new);
    let online = config.mode == simtrack::config::Mode::Online && run.is_recording();
    let id = run.id().to_owned();
    let left = match run.finish_leaving(online.then_some(WAIT_BACKLOG_BYTES)) {
        Ok(None) => return,
        Ok(Some(backlog)) => Some(backlog),
        Err(e) if online && e.status == simtrack::Status::Undelivered => {
            // Why the server did not take it (unreachable, a certificate
            // not trusted, ...); the background sync below tries again.
            say(&e.to_string());
            None
        }
        Err(e) => {
            say(&e.to_string());
            return;
        }
    };
    let Some(dir) = dir else { return };
    if let Err(e) = hand_over(&dir, &id, config, status, left) {
        say(&format!(
            "{e}; the run is complete in the spool {} and `simtrack sync` uploads it",
            dir.root.display()
        ));
    }
}

/// Sends the final status early and starts the background sync. Nothing
/// here writes the spool's delivery state: the run's sender may still be in
/// its last request, and the sync starts once this process has exited
/// (it waits for the spool's lock).
fn hand_over(
    dir: &simtrack::spool::RunDir,
    id: &str,
    config: &Config,
    status: RunStatus,
    backlog: Option<u64>,
) -> Result<(), simtrack::Error> {
    use simtrack::delivery::Courier;
    let transport = simtrack::transport::http::HttpTransport::new(config)?;
    let url = config.url.clone().unwrap_or_default();
    let mut courier = Courier::open(dir.clone(), transport, &url)?;
    // Unknown when the finish gave up: what the spool holds past what the
    // delivery state says was acknowledged.
    let backlog = backlog.unwrap_or_else(|| {
        let size = std::fs::metadata(dir.log()).map_or(0, |m| m.len());
        size.saturating_sub(courier.state().acked_offset)
    });
    let finish = simtrack::record::FinishRecord {
        status,
        endtime: simtrack::record::now_unix(),
    };
    let early = courier.send_finish_early(&finish).unwrap_or(false);
    drop(courier);
    let exe = std::env::current_exe()
        .map_err(|e| simtrack::Error::io("cannot find the simtrack executable", e))?;
    let mut cmd = Command::new(exe);
    cmd.args(["sync", "--run", id, "--cache"])
        .arg(&config.offline_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own process group: a Ctrl-C, or the hang-up a shell sends its jobs
    // when the terminal closes, does not stop it (a batch system's
    // end-of-job cleanup may; the spool keeps the rest). Unlike `setsid` in
    // a `pre_exec` hook this lets the standard library use `posix_spawn`,
    // which does not copy the wrapper's page tables as `fork` does.
    cmd.process_group(0);
    let child = cmd
        .spawn()
        .map_err(|e| simtrack::Error::io("cannot start the background `simtrack sync`", e))?;
    say(&format!(
        "{} of output still to upload: continuing in the background (simtrack sync --run {id}, pid {}){}",
        human_bytes(backlog),
        child.id(),
        if early {
            "; the run's final status is already on the server"
        } else {
            ""
        }
    ));
    Ok(())
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} kB", n as f64 / 1024.0)
    }
}
