//! Writes man/carte.8, man/carte-<verb>.8 and completions/{carte.bash,
//! _carte,carte.fish} from carte's clap definitions.
//! `cargo run -p carte-gen-docs [-- REPO]` (REPO defaults to the workspace).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let repo = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."));
    match carte_gen_docs::write_all(&repo) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("carte-gen-docs: {e}");
            ExitCode::FAILURE
        }
    }
}
