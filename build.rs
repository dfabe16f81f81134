//! Builds the exec trampoline (src/trampoline/trampoline.rs): a no_std,
//! static, non-PIE program of a few KiB that carte embeds and runs from a
//! sealed memfd to exec the user's program (see src/cloned_binary.rs).
//! It is compiled by the same rustc, for the same target, with no crates.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    commit();
    trampoline();
}

/// CARTE_COMMIT for `carte --version`: `git describe --always --dirty`
/// when built from a git checkout, the CARTE_COMMIT variable when set
/// (a source package has no .git), else "unknown". The script reruns when
/// HEAD or the branch it names moves, not on every edit: "-dirty" is as of
/// the last commit or checkout (keeps builds incremental).
fn commit() {
    println!("cargo:rerun-if-env-changed=CARTE_COMMIT");
    if let Some(c) = env::var("CARTE_COMMIT").ok().filter(|c| !c.is_empty()) {
        println!("cargo:rustc-env=CARTE_COMMIT={c}");
        return;
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let commit = git(&["describe", "--always", "--dirty"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CARTE_COMMIT={commit}");
    // A worktree's HEAD lives under .git/worktrees/<name>, its branch under
    // the common dir: ask git where both are.
    if let Some(head) = git(&["rev-parse", "--path-format=absolute", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    // A packed ref has no file of its own (and a missing path would rerun
    // the script on every build): then watch packed-refs.
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let loose = git(&["rev-parse", "--path-format=absolute", "--git-path", &branch]);
        let packed = git(&[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "packed-refs",
        ]);
        if let Some(r) = loose.filter(|r| Path::new(r).exists()).or(packed) {
            println!("cargo:rerun-if-changed={r}");
        }
    }
}

fn trampoline() {
    let src = "src/trampoline/trampoline.rs";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=src/trampoline/reasons.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("trampoline");
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let mut cmd = Command::new(rustc);
    cmd.args([
        "--edition=2021",
        "--crate-type=bin",
        "--crate-name=carte_trampoline",
    ])
    .args(["--target", &target])
    .args([
        "-C",
        "opt-level=s",
        "-C",
        "panic=abort",
        "-C",
        "debuginfo=0",
    ])
    .args(["-C", "relocation-model=static", "-C", "strip=symbols"])
    // No C runtime and no libc: _start is the trampoline's own.
    .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
    .args([
        "-C",
        "link-arg=-static",
        "-C",
        "link-arg=-Wl,--build-id=none",
    ])
    .arg("-o")
    .arg(&out)
    .arg(src);
    if let Some(linker) = env::var_os("RUSTC_LINKER") {
        cmd.arg("-C").arg({
            let mut a = std::ffi::OsString::from("linker=");
            a.push(linker);
            a
        });
    }
    let status = cmd.status().expect("run rustc for the trampoline");
    assert!(status.success(), "building the exec trampoline failed");
}
