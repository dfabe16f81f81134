use std::process::ExitCode;

fn main() -> ExitCode {
    carte::cli::main()
}
