//! carte's man pages and shell completions, rendered from its clap
//! definitions (carte::cli::Cli) so they cannot drift from the real flags.

use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

/// carte's version without the build's commit: the pages must not change
/// with each commit, or the committed copies would always be stale.
fn version() -> &'static str {
    let first = carte::cli::VERSION.lines().next().unwrap_or_default();
    first.strip_prefix("version ").unwrap_or(first)
}

/// carte's command tree, built (subcommands named "carte-<verb>").
fn command() -> clap::Command {
    let mut cmd = carte::cli::Cli::command().version(version());
    cmd.build();
    cmd
}

fn man_page(cmd: clap::Command) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .source(format!("carte {}", version()))
        .manual("System Manager's Manual")
        .render(&mut out)?;
    Ok(out)
}

/// Every generated file: its path under the repository and its bytes.
pub fn render_all() -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let cmd = command();
    let mut files = vec![(PathBuf::from("man/carte.8"), man_page(cmd.clone())?)];
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" || sub.is_hide_set() {
            continue;
        }
        let name = sub.get_display_name().unwrap_or(sub.get_name()).to_string();
        files.push((
            PathBuf::from(format!("man/{name}.8")),
            man_page(sub.clone())?,
        ));
    }
    for (shell, file) in [
        (Shell::Bash, "carte.bash"),
        (Shell::Zsh, "_carte"),
        (Shell::Fish, "carte.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command(), "carte", &mut out);
        files.push((PathBuf::from("completions").join(file), out));
    }
    Ok(files)
}

/// Writes every generated file under `repo`; returns their paths.
pub fn write_all(repo: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, bytes) in render_all()? {
        let path = repo.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())))?;
        written.push(rel);
    }
    Ok(written)
}
