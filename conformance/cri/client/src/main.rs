//! The CRI suite's client: it talks runtime.v1 to containerd's socket as
//! the kubelet does, with pods on the `carte` runtime handler, and checks
//! from inside each container (ExecSync) what the request asked for.
//!
//! `carte-cri-client run socket=S carte=BIN carte-root=DIR logs=DIR
//! cgroup-parent=/P bridge=NAME image=REF` prints `ok - ` / `not ok - `
//! lines; `carte-cri-client cleanup socket=S` stops and removes every pod.

mod cri;
mod host;
mod scenarios;

use std::collections::HashMap;
use std::process::ExitCode;

pub struct Args {
    pub socket: String,
    pub carte: String,
    pub carte_root: String,
    pub logs: String,
    pub cgroup_parent: String,
    pub bridge: String,
    pub image: String,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let kv: HashMap<&str, &str> = args.iter().filter_map(|a| a.split_once('=')).collect();
    let get = |k: &str| -> Result<String, String> {
        kv.get(k)
            .map(|v| v.to_string())
            .ok_or_else(|| format!("missing {k}=..."))
    };
    Ok(Args {
        socket: get("socket")?,
        carte: get("carte").unwrap_or_default(),
        carte_root: get("carte-root").unwrap_or_default(),
        logs: get("logs").unwrap_or_default(),
        cgroup_parent: get("cgroup-parent").unwrap_or_default(),
        bridge: get("bridge").unwrap_or_default(),
        image: get("image").unwrap_or_default(),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (verb, rest) = match argv.split_first() {
        Some((v, rest)) => (v.as_str(), rest),
        None => ("", &[][..]),
    };
    let args = match parse(rest) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("carte-cri-client: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match cri::connect(&args.socket).await {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("carte-cri-client: connect {}: {e}", args.socket);
            return ExitCode::from(1);
        }
    };
    match verb {
        "run" => {
            let failed = scenarios::run(rt, args).await;
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        "cleanup" => {
            cri::remove_all_pods(rt).await;
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: carte-cri-client run|cleanup socket=PATH ...");
            ExitCode::from(2)
        }
    }
}
