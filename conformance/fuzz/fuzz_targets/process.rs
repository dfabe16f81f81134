//! The `exec --process FILE` object: parsed and checked as `exec` does
//! (config::process_from_bytes), then the pre-fork checks exec makes on it
//! (capability names, LSM fields, whether it may hold CAP_SYS_PTRACE).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::quiet_logging();
    let Ok(process) = carte::config::process_from_bytes(data, "process.json") else {
        return;
    };
    let _ = carte::capabilities::resolve(process.capabilities().as_ref());
    let _ = carte::lsm::check(&process, None);
    let _ = carte::cloned_binary::grants_ptrace(Some(&process));
});

#[path = "common.rs"]
mod common;
