//! Wall-clock times as users and batch systems write them (`--until`,
//! `squeue -o %e`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An `--until` time: RFC 3339 (`2026-12-01T05:30:00Z`, with an offset),
/// or without one (`2026-12-01T05:30:00`, as Slurm prints it) in local
/// time.
pub(crate) fn parse_time(text: &str) -> Result<SystemTime, String> {
    if let Ok(time) = humantime::parse_rfc3339(text) {
        return Ok(time);
    }
    let bad = || format!("`{text}` is not a time like 2026-12-01T05:30:00[Z]");
    let (date, clock) = text.split_once(['T', ' ']).ok_or_else(bad)?;
    let numbers =
        |s: &str, sep: char| -> Option<Vec<i32>> { s.split(sep).map(|n| n.parse().ok()).collect() };
    let (Some(d), Some(c)) = (numbers(date, '-'), numbers(clock, ':')) else {
        return Err(bad());
    };
    let (&[year, month, day], &[hour, minute, second]) = (&d[..], &c[..]) else {
        return Err(bad());
    };
    // SAFETY: `tm` is zero-initialised plain data that `mktime` reads and
    // normalises; it has no pointers that must be valid.
    let seconds = unsafe {
        let mut tm = std::mem::zeroed::<libc::tm>();
        tm.tm_year = year - 1900;
        tm.tm_mon = month - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = minute;
        tm.tm_sec = second;
        tm.tm_isdst = -1;
        libc::mktime(&mut tm)
    };
    let seconds = u64::try_from(seconds).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::from_secs(seconds))
}
