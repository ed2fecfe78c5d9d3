//! The run's context, captured once at init: host, user, command line,
//! platform, and the batch-system and MPI environment. Sent as the run's
//! `system` document.

use serde_json::{Map, Value, json};

/// Environment variables that name the MPI rank, most specific first.
const RANK_VARS: [&str; 5] = [
    "OMPI_COMM_WORLD_RANK",
    "PMIX_RANK",
    "PMI_RANK",
    "MV2_COMM_WORLD_RANK",
    "SLURM_PROCID",
];
/// Environment variables that name the MPI world size, in the same order.
const SIZE_VARS: [&str; 5] = [
    "OMPI_COMM_WORLD_SIZE",
    "PMIX_SIZE",
    "PMI_SIZE",
    "MV2_COMM_WORLD_SIZE",
    "SLURM_NTASKS",
];
/// Batch-system variables recorded when present.
const BATCH_VARS: [&str; 17] = [
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_SUBMIT_DIR",
    "SLURM_JOB_START_TIME",
    "SLURM_JOB_END_TIME",
    "SLURM_JOB_NAME",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_NUM_NODES",
    "SLURM_NTASKS",
    "SLURM_CLUSTER_NAME",
    "SLURM_JOB_PARTITION",
    "PBS_JOBID",
    "PBS_JOBNAME",
    "PBS_QUEUE",
    "LSB_JOBID",
    "FLUX_JOB_ID",
];

/// The batch job this process belongs to, as run metadata (so the runs
/// table can filter on it): `(key, value)` pairs, integers as integers.
/// SLURM: job id, array job and task ids, job name, partition, node list,
/// time limit (from the job's start and end times, where SLURM exports
/// them; 22.05 does not) and
/// submit directory. Empty outside a batch job.
pub fn batch_metadata(env: &dyn Fn(&str) -> Option<String>) -> Vec<(String, Value)> {
    const SLURM: [(&str, &str); 8] = [
        ("SLURM_JOB_ID", "slurm_job_id"),
        ("SLURM_ARRAY_JOB_ID", "slurm_array_job_id"),
        ("SLURM_ARRAY_TASK_ID", "slurm_array_task_id"),
        ("SLURM_JOB_NAME", "slurm_job_name"),
        ("SLURM_JOB_PARTITION", "slurm_partition"),
        ("SLURM_JOB_NODELIST", "slurm_nodelist"),
        ("SLURM_SUBMIT_DIR", "slurm_submit_dir"),
        ("SLURM_CLUSTER_NAME", "slurm_cluster"),
    ];
    let mut out = Vec::new();
    for (var, key) in SLURM {
        if let Some(v) = env(var).filter(|v| !v.is_empty()) {
            let value = v
                .trim()
                .parse::<i64>()
                .map_or_else(|_| Value::String(v.clone()), Value::from);
            out.push((key.to_owned(), value));
        }
    }
    let secs = |k: &str| env(k).and_then(|v| v.trim().parse::<i64>().ok());
    if let (Some(start), Some(end)) = (secs("SLURM_JOB_START_TIME"), secs("SLURM_JOB_END_TIME"))
        && end > start
    {
        out.push(("slurm_time_limit_secs".to_owned(), Value::from(end - start)));
    }
    out
}

/// This process's MPI rank and world size as the launcher announced them,
/// or `None` outside a launcher.
pub fn mpi_rank_and_size(env: &dyn Fn(&str) -> Option<String>) -> Option<(u32, Option<u32>)> {
    RANK_VARS
        .iter()
        .zip(SIZE_VARS)
        .find_map(|(rank_var, size_var)| {
            let rank = env(rank_var)?.trim().parse().ok()?;
            let size = env(size_var).and_then(|s| s.trim().parse().ok());
            Some((rank, size))
        })
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn os_pretty_name() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
}

/// Captures the context of this process for run `run_id` (recorded as
/// `simtrack.run_id`, so the run can be found on a server by the id the
/// solver printed).
pub fn capture(run_id: &str) -> Value {
    let env = |k: &str| std::env::var(k).ok();
    let hostname = read_trimmed("/proc/sys/kernel/hostname")
        .or_else(|| env("HOSTNAME"))
        .unwrap_or_else(|| "unknown".to_owned());
    let user = env("USER")
        .or_else(|| env("LOGNAME"))
        .unwrap_or_else(|| "unknown".to_owned());
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut batch = Map::new();
    for var in BATCH_VARS {
        if let Some(v) = env(var) {
            batch.insert(var.to_owned(), Value::String(v));
        }
    }
    let mpi = match mpi_rank_and_size(&env) {
        Some((rank, size)) => json!({ "rank": rank, "size": size }),
        None => Value::Null,
    };
    json!({
        "hostname": hostname,
        "user": user,
        "cwd": cwd,
        "command": argv,
        "pid": std::process::id(),
        "platform": {
            "system": std::env::consts::OS,
            "release": read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
            "version": os_pretty_name().unwrap_or_default(),
        },
        "cpu": {
            "arch": std::env::consts::ARCH,
            "count": cpus,
        },
        "simtrack": { "version": env!("CARGO_PKG_VERSION"), "client": "libsimtrack", "run_id": run_id },
        "batch": Value::Object(batch),
        "mpi": mpi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn rank_comes_from_whichever_launcher_set_it() {
        assert_eq!(mpi_rank_and_size(&env_of(&[])), None);
        assert_eq!(
            mpi_rank_and_size(&env_of(&[
                ("OMPI_COMM_WORLD_RANK", "3"),
                ("OMPI_COMM_WORLD_SIZE", "4")
            ])),
            Some((3, Some(4)))
        );
        assert_eq!(
            mpi_rank_and_size(&env_of(&[("PMI_RANK", "1"), ("PMI_SIZE", "2")])),
            Some((1, Some(2)))
        );
        assert_eq!(
            mpi_rank_and_size(&env_of(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "8")])),
            Some((0, Some(8)))
        );
        // An MPI launcher inside a SLURM allocation wins over SLURM's task id.
        assert_eq!(
            mpi_rank_and_size(&env_of(&[("SLURM_PROCID", "0"), ("PMIX_RANK", "2")])),
            Some((2, None))
        );
    }

    #[test]
    fn slurm_job_becomes_typed_metadata() {
        assert!(batch_metadata(&env_of(&[])).is_empty());
        let m: std::collections::BTreeMap<String, Value> = batch_metadata(&env_of(&[
            ("SLURM_JOB_ID", "42"),
            ("SLURM_ARRAY_JOB_ID", "41"),
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_JOB_NAME", "heat"),
            ("SLURM_JOB_PARTITION", "debug"),
            ("SLURM_JOB_NODELIST", "node[1-2]"),
            ("SLURM_SUBMIT_DIR", "/home/a"),
            ("SLURM_JOB_START_TIME", "1000"),
            ("SLURM_JOB_END_TIME", "1060"),
        ]))
        .into_iter()
        .collect();
        assert_eq!(m["slurm_job_id"], 42);
        assert_eq!(m["slurm_array_task_id"], 2);
        assert_eq!(m["slurm_job_name"], "heat");
        assert_eq!(m["slurm_nodelist"], "node[1-2]");
        assert_eq!(m["slurm_time_limit_secs"], 60);
        assert_eq!(m.len(), 8);
    }

    #[test]
    fn captured_context_names_host_command_and_library() {
        let c = capture("abc");
        assert!(c["hostname"].as_str().is_some_and(|h| !h.is_empty()));
        assert!(c["command"].as_array().is_some_and(|a| !a.is_empty()));
        assert_eq!(c["simtrack"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(c["simtrack"]["run_id"], "abc");
        assert!(c["cpu"]["count"].as_u64().unwrap() >= 1);
    }
}
