//! Signal names and numbers as runc accepts them: "9", "KILL", "SIGKILL",
//! any case, and the real-time forms "RTMIN+n" / "RTMAX-n".

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignalError {
    #[error("invalid signal {0:?}")]
    Invalid(String),
}

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The highest signal number Linux knows (SIGRTMAX with glibc's reservation
/// undone is 64).
const SIG_MAX: i32 = 64;
const RT_MIN: i32 = 34;

/// A signal as runc takes it: a number (0 too: `kill ID 0` only checks
/// that init is alive, as kill(2) does), or a name with or without SIG.
pub fn parse(raw: &str) -> Result<i32, SignalError> {
    let invalid = || SignalError::Invalid(raw.to_string());
    if let Ok(n) = raw.parse::<i32>() {
        return if (0..=SIG_MAX).contains(&n) {
            Ok(n)
        } else {
            Err(invalid())
        };
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(candidate, _)| *candidate == name) {
        return Ok(n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        let off = if rest.is_empty() {
            0
        } else {
            rest.parse::<i32>().ok()?
        };
        let n = base + sign * off;
        (RT_MIN..=SIG_MAX).contains(&n).then_some(n)
    };
    let parsed = if let Some(rest) = name.strip_prefix("RTMIN") {
        rt(RT_MIN, rest.strip_prefix('+').unwrap_or(rest), 1)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt(SIG_MAX, rest.strip_prefix('-').unwrap_or(rest), -1)
    } else {
        None
    };
    parsed.ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        for raw in ["9", "KILL", "SIGKILL", "kill", "sigkill"] {
            assert_eq!(parse(raw), Ok(libc::SIGKILL), "{raw}");
        }
        assert_eq!(parse("15"), Ok(libc::SIGTERM));
        assert_eq!(parse("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse("USR1"), Ok(libc::SIGUSR1));
        assert_eq!(parse("10"), Ok(10));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("RTMIN+3"), Ok(37));
        assert_eq!(parse("RTMAX"), Ok(64));
    }

    #[test]
    fn rejects_nonsense() {
        for raw in ["SIG0", "65", "-1", "", "SIG", "FOO", "RTMIN+99"] {
            assert!(parse(raw).is_err(), "{raw}");
        }
    }
}
