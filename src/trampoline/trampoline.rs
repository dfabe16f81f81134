//! carte's exec trampoline: a tiny static program, built by build.rs and
//! embedded in carte, that carte runs from a sealed memfd to exec the
//! user's program (CVE-2019-5736, see src/cloned_binary.rs). The process
//! that execs the user's program is then this image, not carte's: an
//! image that is `#!/proc/self/exe` runs the trampoline again, whose exe
//! is a sealed, per-container memfd, never the host's carte binary.
//!
//! argv: [REPORT, PATH, ARG0, ARG1, ...], the environment as given.
//! REPORT is the decimal fd on which carte waits for the hang-up at
//! execve, then `E` if it is carte's init pipe (a failure goes there as an
//! Error message), `q` if it is plain text that carte will print itself,
//! or nothing for plain text that may have no reader left (then it goes to
//! stderr too, as init's own failures do). The fd is made close-on-exec,
//! then PATH is exec'd with ARG0...; on failure the cause is reported and
//! the exit status is 127.
//!
//! No libc and no allocation: raw syscalls only. The loops read through
//! read_volatile so that LLVM does not turn them into calls to strlen or
//! memcpy, which nothing here provides.
#![no_std]
#![no_main]

#[cfg(not(target_arch = "x86_64"))]
compile_error!("the trampoline makes x86_64 syscalls only");

use core::arch::{asm, naked_asm};
use core::ptr::read_volatile;

include!("reasons.rs");

const SYS_WRITEV: usize = 20;
const SYS_EXECVE: usize = 59;
const SYS_FCNTL: usize = 72;
const SYS_RT_SIGPROCMASK: usize = 14;
const SYS_EXIT_GROUP: usize = 231;
const F_SETFD: usize = 2;
const FD_CLOEXEC: usize = 1;
const SIG_BLOCK: usize = 0;
const SIGPIPE_BIT: usize = 1 << (13 - 1);
const EXIT_CANNOT_EXEC: usize = 127;

/// Entry: the kernel leaves argc, argv and envp at the (16-byte aligned)
/// stack pointer.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    naked_asm!("mov rdi, rsp", "call {main}", "ud2", main = sym main)
}

/// # Safety
/// Called once, from _start, with the initial stack pointer.
unsafe extern "C" fn main(sp: *const usize) -> ! {
    // SAFETY: the initial stack holds argc, then argc argv pointers and a
    // NULL, then the environment pointers and a NULL.
    unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const u8;
        let envp = argv.add(argc + 1);
        if argc < 3 {
            exit(EXIT_CANNOT_EXEC);
        }
        let Some((fd, mode)) = parse_report(*argv) else {
            exit(EXIT_CANNOT_EXEC)
        };
        // Until this succeeds the fd would outlive the exec, and carte
        // would wait for a hang-up that never comes.
        let rc = syscall3(SYS_FCNTL, fd, F_SETFD, FD_CLOEXEC);
        let path = *argv.add(1);
        let errno = if rc < 0 {
            -rc
        } else {
            -syscall3(SYS_EXECVE, path as usize, argv.add(2) as usize, envp as usize)
        };
        // A reader that is gone must not end us with SIGPIPE before the
        // other report is written.
        let set: usize = SIGPIPE_BIT;
        syscall4(SYS_RT_SIGPROCMASK, SIG_BLOCK, &set as *const usize as usize, 0, 8);
        let mut digits = [0u8; 20];
        let reason = reason_of(errno as i32, &mut digits);
        let what: &[u8] = if rc < 0 { b"mark the report fd close-on-exec before " } else { b"" };
        let path = cstr(path);
        // An init pipe's reader reports it; after `start` (the exec fifo),
        // the container's stderr may be the only one left to tell.
        if mode == Mode::TextAndStderr {
            let parts: [&[u8]; 7] = [b"carte: ", what, b"exec \"", path, b"\": ", reason, b"\n"];
            writev(2, &parts);
        }
        let parts: [&[u8]; 6] = [if mode == Mode::Tagged { b"E" } else { b"" }, what, b"exec \"", path, b"\": ", reason];
        writev(fd, &parts);
        exit(EXIT_CANNOT_EXEC)
    }
}

#[derive(PartialEq)]
enum Mode {
    TextAndStderr,
    Text,
    Tagged,
}

/// "7", "7q" or "7E": the fd and how to report on it.
///
/// # Safety
/// `arg` points to a NUL-terminated string.
unsafe fn parse_report(arg: *const u8) -> Option<(usize, Mode)> {
    let mut fd: usize = 0;
    let mut i = 0;
    loop {
        // SAFETY: arg is NUL-terminated; reading stops at the NUL.
        let c = unsafe { read_volatile(arg.add(i)) };
        // SAFETY: called only where byte i is not the NUL, so i + 1 is
        // still within the string.
        let last = || unsafe { read_volatile(arg.add(i + 1)) } == 0;
        match c {
            b'0'..=b'9' if i < 9 => fd = fd * 10 + (c - b'0') as usize,
            b'E' if i > 0 && last() => return Some((fd, Mode::Tagged)),
            b'q' if i > 0 && last() => return Some((fd, Mode::Text)),
            0 if i > 0 => return Some((fd, Mode::TextAndStderr)),
            _ => return None,
        }
        i += 1;
    }
}

/// The text for an errno as carte words it, or "errno N".
fn reason_of(errno: i32, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = 0;
    while i < REASONS.len() {
        if REASONS[i].0 == errno {
            return REASONS[i].1.as_bytes();
        }
        i += 1;
    }
    let mut n = errno.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    at -= 6;
    let prefix = b"errno ";
    let mut k = 0;
    while k < prefix.len() {
        digits[at + k] = prefix[k];
        k += 1;
    }
    &digits[at..]
}

/// The bytes of a C string, without its NUL.
///
/// # Safety
/// `p` points to a NUL-terminated string that lives for `'a`.
unsafe fn cstr<'a>(p: *const u8) -> &'a [u8] {
    let mut n = 0;
    // SAFETY: p is NUL-terminated.
    while unsafe { read_volatile(p.add(n)) } != 0 {
        n += 1;
    }
    // SAFETY: the n bytes before the NUL are initialised and live as long
    // as the process (they are on the initial stack).
    unsafe { core::slice::from_raw_parts(p, n) }
}

#[repr(C)]
struct Iovec {
    base: *const u8,
    len: usize,
}

/// One writev: one message on a SOCK_SEQPACKET pipe.
fn writev<const N: usize>(fd: usize, parts: &[&[u8]; N]) {
    let mut iov = [const {
        Iovec {
            base: core::ptr::null(),
            len: 0,
        }
    }; N];
    let mut i = 0;
    while i < N {
        iov[i] = Iovec {
            base: parts[i].as_ptr(),
            len: parts[i].len(),
        };
        i += 1;
    }
    // SAFETY: iov points at N iovecs over live slices.
    unsafe { syscall3(SYS_WRITEV, fd, iov.as_ptr() as usize, N) };
}

fn exit(code: usize) -> ! {
    // SAFETY: exit_group ends the process and does not return.
    unsafe {
        syscall3(SYS_EXIT_GROUP, code, 0, 0);
        asm!("ud2", options(noreturn))
    }
}

unsafe fn syscall3(nr: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a syscall and arguments it may make.
    unsafe {
        asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

unsafe fn syscall4(nr: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: as syscall3.
    unsafe {
        asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             in("r10") d, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(EXIT_CANNOT_EXEC)
}

/// The prebuilt libcore refers to it (it was built with unwinding); with
/// panic=abort nothing ever calls it.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
