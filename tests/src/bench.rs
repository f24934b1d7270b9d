//! Helpers shared by the benchmark binaries in `src/bin`: knobs from the environment, percentiles,
//! and the CPU time of the processes under load (read from `/proc`).

use std::time::Duration;

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The `q` quantile of `sorted`, in milliseconds.
pub fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
}

/// CPU ticks (user + system, plus exited children's) of each watched process, by name: those in
/// `BENCH_WATCH` (`name:pid,...`) and, summed, every process called `postgres`.
pub fn cpu_ticks() -> Vec<(String, u64)> {
    fn ticks(stat: &str) -> Option<u64> {
        // Fields after the parenthesised command name; utime is the 14th field overall.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11..15)?.iter().filter_map(|f| f.parse::<u64>().ok()).sum())
    }
    let mut watched: Vec<(String, u64)> = std::env::var("BENCH_WATCH")
        .unwrap_or_default()
        .split(',')
        .filter_map(|entry| entry.split_once(':'))
        .map(|(name, pid)| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            (name.to_owned(), ticks(&stat).unwrap_or(0))
        })
        .collect();
    let postgres: u64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| stat.contains("(postgres)"))
        .filter_map(|stat| ticks(&stat))
        .sum();
    watched.push(("postgres".to_owned(), postgres));
    // This load generator shares the same cores.
    let own = std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| ticks(&stat)).unwrap_or(0);
    watched.push(("load generator".to_owned(), own));
    watched
}

/// CPU seconds used between two `cpu_ticks` readings, by name.
pub fn cpu_seconds(before: &[(String, u64)], after: &[(String, u64)]) -> Vec<(String, f64)> {
    let hz = 100.0; // USER_HZ on Linux
    before
        .iter()
        .zip(after)
        .map(|((name, then), (_, now))| (name.clone(), now.saturating_sub(*then) as f64 / hz))
        .collect()
}

/// CPU used between two `cpu_ticks` readings, in µs per message.
pub fn cpu_rows(before: &[(String, u64)], after: &[(String, u64)], messages: usize) -> Vec<String> {
    cpu_seconds(before, after)
        .into_iter()
        .map(|(name, seconds)| format!("{name} {seconds:.1} s = {:.0} µs/msg", seconds * 1e6 / messages as f64))
        .collect()
}
