//! Thin wrappers over Linux facilities the load client needs: one monotonic clock for both
//! publish stamps and receive times, a `timerfd` for sub-millisecond publish wake-ups, `/proc`
//! readings (per-core busy time, a server's RSS and CPU), CPU pinning, and sockets bound to a
//! chosen loopback source address.
//!
//! Why a timerfd: `mio::Poll::poll` rounds its timeout up to whole milliseconds, so an
//! open-loop publisher at 2,000/s would send in 1 ms bursts and add up to 1 ms of its own
//! lateness to every latency sample. An absolute CLOCK_MONOTONIC timerfd registered in the same
//! poll wakes the loop at the intended send time.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Nanoseconds on CLOCK_MONOTONIC. Publishers and subscribers live in this one process, so a
/// stamp taken at send and a reading taken at receive are on the same clock.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Unix time in seconds, for signature timestamps.
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A non-blocking CLOCK_MONOTONIC timerfd, armed with absolute deadlines.
pub struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    pub fn new() -> io::Result<TimerFd> {
        // SAFETY: plain syscall with constant flags; the result is checked before use.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own exclusively.
        Ok(TimerFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Fire once at `deadline_ns` (CLOCK_MONOTONIC). A deadline in the past fires at once.
    pub fn arm_at(&self, deadline_ns: u64) -> io::Result<()> {
        // 0 would disarm the timer; 1 ns is "already due".
        let d = deadline_ns.max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (d / 1_000_000_000) as libc::time_t,
                tv_nsec: (d % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid fd and a valid itimerspec; the old value pointer may be null.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Consume the expiration count so the edge-triggered registration can fire again.
    pub fn drain(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reading at most 8 bytes into an 8-byte buffer from a valid fd.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Busy and total jiffies of one core from `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreTimes {
    pub busy: u64,
    pub total: u64,
}

/// Parse the `cpuN` lines of `/proc/stat`. Busy = total − idle − iowait (so softirq time spent
/// on loopback traffic counts, which `/proc/<pid>/stat` would miss).
pub fn parse_proc_stat(text: &str) -> Vec<CoreTimes> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let Some(name) = it.next() else { continue };
        if !name.starts_with("cpu") || name == "cpu" {
            continue;
        }
        let v: Vec<u64> = it.filter_map(|x| x.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal [guest guest_nice] — guest time is
        // already included in user/nice, so only the first eight are summed.
        let total: u64 = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        out.push(CoreTimes {
            busy: total.saturating_sub(idle),
            total,
        });
    }
    out
}

pub fn read_core_times() -> Vec<CoreTimes> {
    std::fs::read_to_string("/proc/stat")
        .map(|s| parse_proc_stat(&s))
        .unwrap_or_default()
}

pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// `VmRSS` of a process in KiB (`/proc/<pid>/status`).
pub fn read_vmrss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vmrss_kib(&s)
}

pub fn parse_vmrss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process in clock ticks (`/proc/<pid>/stat`, fields 14 and 15). Reported
/// only as a cross-check: it undercounts loopback work done in softirq.
pub fn read_proc_cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_cpu_ticks(&s)
}

pub fn parse_proc_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name may contain spaces and parentheses: split after the LAST ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut f = rest.split_ascii_whitespace();
    // After ')': field 3 (state) is the first; utime is field 14, i.e. the 12th here.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// This process's own CPU time (user + system) in microseconds.
pub fn self_cpu_us() -> u64 {
    // SAFETY: a zeroed rusage is a valid out-parameter for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid and writable.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| (t.tv_sec as u64) * 1_000_000 + t.tv_usec as u64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Pin the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it (cpu is bounds-checked by the
    // kernel ABI macro against CPU_SETSIZE below).
    unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cpu index too large",
            ));
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

pub fn stderr_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

/// Start a non-blocking connect to `dst`, optionally from source address `src` (port chosen by
/// the kernel at connect time). Binding a source IP is what lets one process exceed the
/// ~28k ephemeral ports of one (source, destination) pair: 127.0.0.2–.255 route on `lo`.
pub fn connect_nonblocking(
    dst: SocketAddr,
    src: Option<IpAddr>,
) -> io::Result<mio::net::TcpStream> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let sock = Socket::new(Domain::for_address(dst), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    if let Some(ip) = src {
        // IP_BIND_ADDRESS_NO_PORT: defer the port choice to connect(), so the port only has to
        // be unique per 4-tuple instead of per source address.
        let one: libc::c_int = 1;
        // SAFETY: valid socket fd, option value points to a c_int of the given size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        sock.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
    }
    match sock.connect(&SockAddr::from(dst)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(std::net::TcpStream::from(
        sock,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_parsing() {
        let text = "cpu  10 0 10 80 0 0 0 0 0 0\n\
                    cpu0 5 1 4 40 10 0 2 0 0 0\n\
                    cpu1 0 0 0 100 0 0 0 0 7 7\n\
                    intr 1 2 3\n";
        assert_eq!(
            parse_proc_stat(text),
            vec![
                CoreTimes {
                    busy: 12,
                    total: 62
                },
                CoreTimes {
                    busy: 0,
                    total: 100
                }
            ]
        );
    }

    #[test]
    fn status_and_stat_parsing() {
        assert_eq!(
            parse_vmrss_kib("Name:\tx\nVmRSS:\t  1234 kB\nVmSwap: 0 kB\n"),
            Some(1234)
        );
        assert_eq!(parse_vmrss_kib("Name: x\n"), None);
        let stat = "42 (a b) c)) S 1 1 1 0 -1 4194560 10 0 0 0 7 3 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_proc_cpu_ticks(stat), Some(10));
        assert_eq!(parse_proc_cpu_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn monotonic_clock_and_timerfd() {
        let a = now_ns();
        let t = TimerFd::new().unwrap();
        t.arm_at(a).unwrap();
        t.drain();
        assert!(now_ns() >= a);
        assert!(read_vmrss_kib(std::process::id()).unwrap_or(0) > 0);
        assert!(!read_core_times().is_empty());
    }
}
