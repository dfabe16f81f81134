//! Thin wrappers for the syscalls nix does not cover (openat2, the new
//! mount API, pidfd, close_range, keyctl) and small /proc readers shared
//! by several modules.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An io::Error as carte words its causes: lowercase, without "(os error N)",
/// as in "no such file or directory".
pub fn reason(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => err.to_string(),
    }
}

/// The same for a nix errno.
pub fn errno(err: nix::Error) -> String {
    reason(&io::Error::from(err))
}

/// The same for the calling thread's last error.
pub fn last_error() -> String {
    reason(&io::Error::last_os_error())
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// struct open_how of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2) with RESOLVE_IN_ROOT: `path` is resolved as if `root` were "/",
/// so neither ".." nor a symlink can lead outside it.
pub fn open_in_root(root: BorrowedFd, path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    open_in_root_with(root, path, flags, mode, 0)
}

/// open_in_root that also refuses any symlink on the way (ELOOP).
pub fn open_in_root_no_symlinks(root: BorrowedFd, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    open_in_root_with(root, path, flags, 0, libc::RESOLVE_NO_SYMLINKS)
}

fn open_in_root_with(
    root: BorrowedFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let cpath = cstring(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: if flags & libc::O_CREAT != 0 {
            mode as u64
        } else {
            0
        },
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | resolve,
    };
    loop {
        // SAFETY: cpath and how outlive the call; the kernel reads `size` bytes of how.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                cpath.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just returned this fd to us; nobody else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let err = io::Error::last_os_error();
        // EAGAIN: a rename raced the resolution; retrying is what the man page asks.
        if err.raw_os_error() != Some(libc::EAGAIN) {
            return Err(err);
        }
    }
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// True if `fd` is on a procfs.
pub fn is_procfs(fd: BorrowedFd) -> io::Result<bool> {
    // SAFETY: statfs is plain old data; fstatfs fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a pointer to our own struct.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type as i64 == PROC_SUPER_MAGIC)
}

/// Opens `path` below `proc_root`, which must be a procfs, with neither a
/// magic link nor a mount crossed on the way, and checks that what it got
/// is procfs too: a tmpfs, a bind mount or a symlink laid over part of
/// /proc cannot redirect a sysctl or label write (CVE-2025-52881).
pub fn open_proc_file(proc_root: BorrowedFd, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let not_proc = || io::Error::other("not on procfs");
    if !is_procfs(proc_root)? {
        return Err(not_proc());
    }
    let cpath = cstring(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64,
        mode: 0,
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV,
    };
    // SAFETY: cpath and how outlive the call; the kernel reads `size` bytes of how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            proc_root.as_raw_fd(),
            cpath.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    if !is_procfs(fd.as_fd())? {
        return Err(not_proc());
    }
    Ok(fd)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
/// MOUNT_ATTR_RDONLY of mount_setattr(2) and fsmount(2).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// A detached copy of the mount tree at what `source` refers to
/// (open_tree with OPEN_TREE_CLONE), with the mounts below it when
/// `recursive`. Nothing is resolved by path.
pub fn clone_tree(source: BorrowedFd, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a valid fd and a static empty path.
    let tree =
        unsafe { libc::syscall(libc::SYS_open_tree, source.as_raw_fd(), c"".as_ptr(), flags) };
    if tree < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(tree as RawFd) })
}

/// Attaches the detached mount `tree` (from clone_tree or new_tmpfs) on
/// what `target` refers to, fd to fd (move_mount with both EMPTY_PATHs).
pub fn move_mount_to(tree: BorrowedFd, target: BorrowedFd) -> io::Result<()> {
    // SAFETY: valid fds and static empty paths.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bind-mounts what `source` refers to onto what `target` refers to with
/// open_tree and move_mount: no path, so no /proc and no symlink, is
/// resolved on the way.
pub fn bind_fd(source: BorrowedFd, target: BorrowedFd) -> io::Result<()> {
    let tree = clone_tree(source, false)?;
    move_mount_to(tree.as_fd(), target)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount `target` refers to (and every mount below
/// it when `recursive`): sets `set`, clears `clr` (MOUNT_ATTR_* bits).
pub fn mount_setattr(target: BorrowedFd, set: u64, clr: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    setattr(target, &attr, recursive)
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Idmaps the detached mount `tree` (and every mount below it when
/// `recursive`) with the mapping of the user namespace `userns`
/// (mount_setattr with MOUNT_ATTR_IDMAP).
pub fn mount_setattr_idmap(
    tree: BorrowedFd,
    userns: BorrowedFd,
    recursive: bool,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    setattr(tree, &attr, recursive)
}

fn setattr(target: BorrowedFd, attr: &MountAttr, recursive: bool) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: attr and the empty path outlive the call; size matches the struct.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            target.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this kernel has mount_setattr (Linux 5.12), which idmapped
/// mounts need: a call on no fd fails with EBADF there, ENOSYS elsewhere.
pub fn has_mount_setattr() -> bool {
    // SAFETY: an invalid fd, a static empty path, no attr: nothing is read
    // or changed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            std::ptr::null::<MountAttr>(),
            0usize,
        )
    };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

/// A new tmpfs, detached (fsopen, fsconfig, fsmount), with `options` as
/// key/value mount options and the mount attributes `attrs`
/// (MOUNT_ATTR_*). Attach it with move_mount_to.
pub fn new_tmpfs(options: &[(&str, &str)], attrs: u64) -> io::Result<OwnedFd> {
    const FSCONFIG_SET_FLAG: libc::c_uint = 0;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    // SAFETY: a static NUL-terminated name and integer flags.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), 1 as libc::c_uint) };
    if fs < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    for (key, value) in options {
        let key = CString::new(*key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let value =
            CString::new(*value).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // A key without a value ("noswap") is a flag.
        let (cmd, value) = if value.is_empty() {
            (FSCONFIG_SET_FLAG, std::ptr::null())
        } else {
            (FSCONFIG_SET_STRING, value.as_ptr())
        };
        // SAFETY: a valid fs context fd; key and value outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                cmd,
                key.as_ptr(),
                value,
                0,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: a valid fs context fd, no key or value for CMD_CREATE.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a valid, created fs context fd and integer flags.
    let mnt = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    if mnt < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(mnt as RawFd) })
}

/// The path through which a mount syscall reaches what `fd` refers to.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The calling process's CPU affinity and one CPU in it that it is not
/// running on, if there is one: where a child it forks can run meanwhile.
pub fn other_cpu() -> Option<(libc::cpu_set_t, usize)> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a pointer to our own cpu_set_t and its size.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&mask), &mut mask) } != 0 {
        return None;
    }
    // SAFETY: sched_getcpu takes no arguments.
    let current = unsafe { libc::sched_getcpu() };
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads a bit of our own mask, in range.
        .find(|&cpu| cpu as i32 != current && unsafe { libc::CPU_ISSET(cpu, &mask) })
        .map(|cpu| (mask, cpu))
}

/// Sets the CPU affinity of `pid` (0: the caller).
pub fn set_affinity(pid: i32, mask: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: a pointer to a cpu_set_t the caller owns and its size.
    if unsafe { libc::sched_setaffinity(pid, std::mem::size_of_val(mask), mask) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A mask of every CPU: sched_setaffinity turns it into the CPUs the
/// task's cpuset allows.
pub fn all_cpus() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in 0..libc::CPU_SETSIZE as usize {
        // SAFETY: CPU_SET writes a bit of our own mask; cpu < CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut mask) };
    }
    mask
}

/// A mask of the one CPU `cpu`.
pub fn only_cpu(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; an all-zero one is the empty set.
    let mut mask: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes a bit of our own mask; cpu < CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut mask) };
    mask
}

/// A /proc file read whole. procfs gives no size, so std's reader would
/// start at 32 bytes and double: a read (and a regeneration of the text)
/// per step. One 16 KiB buffer takes most of them in one read.
pub fn read_proc(path: impl AsRef<Path>) -> io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// The processes in `init`'s PID namespace when it is not this process's
/// own (a container with no cgroup to list them: rootless); else `init`.
pub fn pid_ns_members(init: i32) -> Vec<i32> {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(theirs) = ns(&init.to_string()) else {
        return vec![init];
    };
    if ns("self").as_ref() == Some(&theirs) {
        return vec![init];
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![init];
    };
    let mut pids: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| ns(&pid.to_string()).as_ref() == Some(&theirs))
        .collect();
    pids.sort_unstable();
    pids
}

/// pidfd_open(2): a handle that becomes readable when `pid` exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(2): signals the process behind `pidfd`, and no other.
pub fn pidfd_send_signal(pidfd: BorrowedFd, signal: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments and a NULL siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout_ms` (-1: forever) for the process behind `pidfd` to exit.
/// Returns true if it exited.
pub fn pidfd_wait(pidfd: BorrowedFd, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: pfd is a valid pollfd array of length 1.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n >= 0 {
            return Ok(n > 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Closes every fd except those in `keep` (which need not be sorted).
/// Run right after fork, so a child holds nothing of the parent's it does
/// not need: not its lock, not its log file.
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|fd| **fd >= 0)
        .map(|fd| *fd as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut next = 0u32;
    for fd in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if fd > next {
            // SAFETY: closing fds in a range; nothing in this process still
            // uses them (the kept ones are outside every range).
            unsafe { libc::syscall(libc::SYS_close_range, next, fd - 1, 0) };
        }
        next = fd.saturating_add(1);
    }
}

/// Marks every fd from `first` up as close-on-exec.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags; no fd is closed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // A seccomp filter that does not know close_range (runtime-tools'
        // default profile answers EPERM, others ENOSYS), a kernel before
        // 5.9 (ENOSYS) or before 5.11 (EINVAL: no CLOSE_RANGE_CLOEXEC).
        Some(libc::ENOSYS | libc::EPERM | libc::EINVAL) => cloexec_each(first),
        _ => Err(err),
    }
}

/// cloexec_from without close_range: fcntl on every fd number the process
/// may hold. Not /proc/self/fd: in the container that is the image's (or
/// no) /proc, which could hide an fd of carte's.
fn cloexec_each(first: u32) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    // Everything else was closed after fork, so carte's fds are the lowest
    // free numbers, far below either limit; the loop stops at the larger
    // one, and at most at the kernel's default fs.nr_open (not read from
    // /proc, for the same reason as above).
    let top = lim.rlim_cur.max(lim.rlim_max).clamp(1024, 1 << 20);
    for fd in u64::from(first)..top {
        let fd = fd as RawFd;
        // SAFETY: fcntl on an integer fd; an unused number gives EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 || flags & libc::FD_CLOEXEC != 0 {
            continue;
        }
        // SAFETY: as above; only the close-on-exec flag is set.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The first fd of 3..3+`count` the caller of carte did not pass: one that
/// is closed, or close-on-exec. An fd that survived the caller's execve is
/// not close-on-exec, and every fd carte opens is: so an fd in the range
/// with the flag is carte's own (its lock, its state dir, a pipe), which
/// must never reach the container (CVE-2024-21626 class).
pub fn first_unpassed_fd(count: u32) -> Option<RawFd> {
    (3..3 + count as RawFd).find(|&fd| !passed_fd(fd))
}

/// True if `fd` is open and not close-on-exec (see first_unpassed_fd).
pub fn passed_fd(fd: RawFd) -> bool {
    // SAFETY: fcntl on an integer fd; an unused number gives EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags >= 0 && flags & libc::FD_CLOEXEC == 0
}

/// Clears FD_CLOEXEC so `fd` survives exec (for --preserve-fds).
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an integer fd; a bad fd gives EBADF, nothing else.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives the calling process a new anonymous session keyring.
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: cname outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            cname.as_ptr(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What /proc/<pid>/stat says of a process: its state letter and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

/// Parses /proc/<pid>/stat. The comm field may hold spaces and parentheses,
/// so fields are counted from the last ')'.
pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3), start time is field 22: 19 more fields on.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = read_proc(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat(&text)
}

/// True while `pid` is the process that started at `start_time` and has not exited.
pub fn process_alive(pid: i32, start_time: u64) -> bool {
    match proc_stat(pid) {
        Some(stat) => stat.start_time == start_time && stat.state != 'Z' && stat.state != 'X',
        None => false,
    }
}

/// True if /proc/<pid>/cgroup puts `pid` in `cgroup` (or below it) in some
/// hierarchy. The start time counts in clock ticks (10 ms): a pid reused
/// within the same tick is told apart by this.
pub fn process_in_cgroup(pid: i32, cgroup: &str) -> bool {
    let Ok(text) = read_proc(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    in_cgroup(&text, cgroup)
}

/// `in_cgroup` on the text of /proc/<pid>/cgroup.
pub fn in_cgroup(proc_cgroup: &str, cgroup: &str) -> bool {
    let cgroup = cgroup.trim_end_matches('/');
    proc_cgroup.lines().any(|line| {
        line.splitn(3, ':').nth(2).is_some_and(|path| {
            path.strip_prefix(cgroup)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    })
}

/// Whether the working directory lies under the process's root: walking
/// ".." from it must end where ".." no longer moves, and that must be "/".
/// A directory outside the root (a host fd given as process.cwd,
/// CVE-2024-21626) ends at the top of another tree. Unlike getcwd's
/// "(unreachable)" prefix this needs no getcwd, which a seccomp profile may
/// deny, and compares inodes, not names.
pub fn cwd_under_root() -> io::Result<bool> {
    let open_dir = |dir: RawFd, name: &[u8]| -> io::Result<OwnedFd> {
        let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: name outlives the call; the flags open no file for I/O.
        let fd = unsafe {
            libc::openat(
                dir,
                name.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openat just returned this fd and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let id = |fd: &OwnedFd| -> io::Result<(u64, u64)> {
        let st = nix::sys::stat::fstat(fd).map_err(io::Error::from)?;
        Ok((st.st_dev, st.st_ino))
    };
    let root = id(&open_dir(libc::AT_FDCWD, b"/")?)?;
    let mut dir = open_dir(libc::AT_FDCWD, b".")?;
    let mut here = id(&dir)?;
    // PATH_MAX bounds the depth of any directory a path can name.
    for _ in 0..libc::PATH_MAX {
        let parent = open_dir(dir.as_raw_fd(), b"..")?;
        let up = id(&parent)?;
        if up == here {
            return Ok(here == root);
        }
        (dir, here) = (parent, up);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_with_odd_comm() {
        let line = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10 18446744073709551615";
        let stat = parse_proc_stat(line).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.start_time, 98765);
    }

    #[test]
    fn cgroup_membership() {
        let text = "12:pids:/carte/abc\n1:name=systemd:/user.slice\n0::/\n";
        assert!(in_cgroup(text, "/carte/abc"));
        assert!(in_cgroup("3:cpu:/carte/abc/init.scope\n", "/carte/abc"));
        assert!(!in_cgroup(text, "/carte/ab"));
        assert!(!in_cgroup(text, "/carte/abcd"));
        assert!(!in_cgroup("", "/carte/abc"));
        // The "none" driver's empty path: every process is in it.
        assert!(in_cgroup(text, ""));
    }

    #[test]
    fn proc_stat_truncated() {
        assert_eq!(parse_proc_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_proc_stat("garbage"), None);
    }
}
