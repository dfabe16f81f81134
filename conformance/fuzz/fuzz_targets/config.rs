//! config.json as `create` reads it: parse and validate (config::from_bytes),
//! then the checks create makes before it makes anything (capability
//! names, the seccomp filter compiled to BPF). Any input must give Ok or a
//! clean error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::quiet_logging();
    let Ok(spec) = carte::config::from_bytes(data, "config.json") else {
        return;
    };
    let process = spec.process().as_ref();
    let _ = carte::capabilities::resolve(process.and_then(|p| p.capabilities().as_ref()));
    let _ = carte::cloned_binary::needed_for(&spec);
    if let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        let _ = carte::seccomp::compile(seccomp);
    }
});

#[path = "common.rs"]
mod common;
