//! The generator's own CPU use, from `/proc/self/stat`: a run where it was busier than 90 % of
//! its threads measured the generator, not the server (`docs/design-decisions.md` 34).

/// Linux clock ticks per second (`getconf CLK_TCK`), assumed rather than asked for.
pub(super) const CLOCK_TICKS_PER_S: f64 = 100.0;
/// Above this share of its threads' CPU the generator, not the server, was measured.
pub(super) const CPU_LIMIT: f64 = 0.9;

/// CPU time of this process so far (user + system), in clock ticks, from `/proc/self/stat`;
/// `None` where that file does not exist.
pub(super) fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_ticks(&stat)
}

/// CPU time of process `pid` so far (user + system, every thread), in clock ticks; `None`
/// when it cannot be read (the process is gone, or no `/proc`).
pub(super) fn pid_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat)
}

/// CPU ticks of each watched process, in the order given.
pub(super) fn watched_ticks(watch: &[(String, u32)]) -> Vec<Option<u64>> {
    watch.iter().map(|(_, pid)| pid_ticks(*pid)).collect()
}

/// CPU seconds per watched name over a phase (several PIDs under one name are summed; a name
/// with any PID unreadable gets `None`), in the order the names first appear.
pub(super) fn watched_seconds(
    watch: &[(String, u32)],
    start: &[Option<u64>],
    end: &[Option<u64>],
) -> Vec<(String, Option<f64>)> {
    let mut out: Vec<(String, Option<f64>)> = Vec::new();
    for (((name, _), a), b) in watch.iter().zip(start).zip(end) {
        let secs = match (a, b) {
            (Some(a), Some(b)) => Some(b.saturating_sub(*a) as f64 / CLOCK_TICKS_PER_S),
            _ => None,
        };
        match out.iter_mut().find(|(known, _)| known == name) {
            Some((_, total)) => *total = total.zip(secs).map(|(t, s)| t + s),
            None => out.push((name.clone(), secs)),
        }
    }
    out
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted from the last `)`.
pub(super) fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
}
