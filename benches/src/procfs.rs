//! What the scale bench reads from Linux about processes and sockets: CPU
//! time, another process's RSS, the file-descriptor limit, and the TCP
//! connections to one port.

use std::collections::HashSet;
use std::io;
use std::time::Duration;

/// This process's CPU time (user + system) so far, from `getrusage`.
pub fn self_cpu() -> Duration {
    let (user, system) = self_cpu_split();
    user + system
}

/// This process's user and system CPU time so far, from `getrusage`.
pub fn self_cpu_split() -> (Duration, Duration) {
    // SAFETY: `getrusage` only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// Another process's CPU time (user + system), from `/proc/<pid>/stat`
/// (clock ticks: 10 ms steps).
pub fn pid_cpu(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("odd /proc/<pid>/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
    let ticks = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("no utime/stime"))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_nanos(total * 1_000_000_000 / hz))
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
pub fn pid_status_kib(pid: u32, name: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            rest.trim().strip_suffix("kB")?.trim().parse().ok()
        })
        .ok_or_else(|| io::Error::other(format!("no {name} in /proc/{pid}/status")))
}

/// Resets another process's peak RSS (`VmHWM`) to its current RSS.
pub fn pid_reset_peak(pid: u32) -> io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// Raises the soft limit on open files to the hard limit; returns the
/// soft limit now in force.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur as u64;
            }
        }
        limit.rlim_cur as u64
    }
}

/// The peer ports of every TCP socket (any state, `TIME_WAIT` included:
/// a closed connection stays listed for a minute) with one end on `port`,
/// from `/proc/net/tcp` and `/proc/net/tcp6`: one entry per connection to
/// a server listening on `port`.
pub fn connections_to(port: u16) -> HashSet<u16> {
    let mut peers = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut fields = line.split_whitespace();
            let (Some(_), Some(local), Some(remote)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let port_of = |addr: &str| {
                addr.rsplit_once(':')
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            };
            let (Some(local), Some(remote)) = (port_of(local), port_of(remote)) else {
                continue;
            };
            if remote == port {
                peers.insert(local);
            } else if local == port && remote != 0 {
                peers.insert(remote);
            }
        }
    }
    peers
}

/// `ActiveOpens` of `/proc/net/snmp`: TCP connections this network
/// namespace opened so far (every process in it, not only this one).
pub fn tcp_active_opens() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let names: Vec<&str> = tcp.next()?.split_whitespace().collect();
    let values: Vec<&str> = tcp.next()?.split_whitespace().collect();
    let at = names.iter().position(|n| *n == "ActiveOpens")?;
    values.get(at)?.parse().ok()
}
