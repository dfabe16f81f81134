//! The command line, runc's: global flags before the verb, then one verb.
//! Each verb lives in its own file and stays thin over the library.

mod create;
mod delete;
mod events;
mod exec;
mod fast;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::logging;

/// What `carte --version` prints after "carte ", in runc's shape: docker
/// takes the runtime's name and version from the line holding "version",
/// and its commit from "commit:" (so no other line may say "version").
/// carte links no libseccomp: the seccomp line says what filters it.
pub const VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("CARTE_COMMIT"),
    "\nspec: 1.3.0",
    "\nseccomp: built in (seccompiler)"
);

#[derive(Parser, Debug)]
#[command(
    name = "carte",
    version = VERSION,
    disable_version_flag = true,
    about = "A low-level OCI container runtime, a drop-in for runc"
)]
pub struct Cli {
    /// Print the version (-v, as runc; -V and --version too)
    #[arg(short = 'v', long, short_alias = 'V', action = clap::ArgAction::Version)]
    pub version: (),
    /// Directory for container state (default /run/carte, or
    /// $XDG_RUNTIME_DIR/carte when not root)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Write log lines to FILE (JSON or text, see --log-format)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log each phase with its duration
    #[arg(long)]
    pub debug: bool,
    /// create and run: make the cgroup a systemd transient scope
    /// (cgroupsPath "slice:prefix:name"); later verbs follow state.json
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (rootless when not root, or when
    /// root of a user namespace that does not map every id)
    #[arg(long, value_name = "true|false|auto")]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Output of list and ps.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags shared by create and run.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Path to the bundle (the directory holding config.json)
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's init pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Pass N extra file descriptors (3 .. 3+N-1) on to the container
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Use MS_MOVE and chroot instead of pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
    /// The container id
    pub id: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container: set it up and leave it waiting for start
    Create(CreateArgs),
    /// Run the user's process of a created container
    Start { id: String },
    /// Print the OCI state of a container as JSON
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init
    Kill {
        /// Signal every process in the container
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped container (with --force, any container)
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container, wait for it and pass on its exit status
    Run {
        /// Return once the container is started
        #[arg(short, long)]
        detach: bool,
        /// Do not delete the container after it exits
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Run a new process in a running container
    Exec(exec::ExecArgs),
    /// List the containers under --root
    List {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Only the ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of a running container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// The processes of a container
    Ps {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Arguments for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Change the resource limits of a container
    Update(update::UpdateArgs),
    /// Print the container's cgroup statistics and OOM events as JSON
    Events {
        /// Print the statistics once and exit
        #[arg(long)]
        stats: bool,
        /// Time between two statistics (Go duration: 5s, 500ms)
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Print what this carte supports (runtime-spec features.md)
    Features,
    /// Write a default config.json
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for running without root
        #[arg(long)]
        rootless: bool,
    },
}

impl Cli {
    pub fn state_root(&self) -> PathBuf {
        if let Some(root) = &self.root {
            return root.clone();
        }
        crate::rootless::default_state_root()
    }

    /// The cgroup driver `create` and `run` use.
    fn cgroup_driver(&self) -> crate::cgroups::Driver {
        if self.systemd_cgroup {
            crate::cgroups::Driver::Systemd
        } else {
            crate::cgroups::Driver::Cgroupfs
        }
    }

    /// Flags carte can't honour yet are refused, never silently accepted.
    fn check_unsupported(&self) -> anyhow::Result<()> {
        crate::rootless::Flag::parse(self.rootless.as_deref())?;
        Ok(())
    }

    /// The rootless decisions, for the verbs that make a container; the
    /// others follow what its state.json recorded.
    fn rootless(&self) -> anyhow::Result<crate::rootless::Rootless> {
        let flag = crate::rootless::Flag::parse(self.rootless.as_deref())?;
        Ok(crate::rootless::Rootless::detect(flag))
    }
}

/// Writes a verb's output. A reader that went away (`carte list | head`)
/// is not an error: Rust ignores SIGPIPE, and carte must not panic on it.
pub(crate) fn output(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

pub fn main() -> ExitCode {
    // The usual lines without clap's start-up cost; the rest through clap.
    let cli = fast::parse(std::env::args_os()).unwrap_or_else(Cli::parse);
    let format = match cli.log_format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    if let Err(e) = logging::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("carte: {e}");
        return ExitCode::FAILURE;
    }
    match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            // Each error's message already holds its cause: print it once.
            let msg = e.to_string();
            logging::error(&msg);
            eprintln!("carte: {msg}");
            // A failed exec exits 255, as runc's does.
            if matches!(cli.command, Command::Exec(_)) {
                ExitCode::from(255)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn dispatch(cli: &Cli) -> anyhow::Result<ExitCode> {
    cli.check_unsupported()?;
    let root = cli.state_root();
    match &cli.command {
        Command::Create(args) => create::run(&root, args, cli.cgroup_driver(), cli.rootless()?),
        Command::Start { id } => start::run(&root, id),
        Command::State { id } => state::run(&root, id),
        Command::Kill { all, id, signal } => kill::run(&root, id, signal, *all),
        Command::Delete { force, id } => delete::run(&root, id, *force),
        Command::Run {
            detach,
            keep,
            create,
        } => run::run(
            &root,
            create,
            *detach,
            *keep,
            cli.cgroup_driver(),
            cli.rootless()?,
        ),
        Command::Exec(args) => exec::run(&root, args),
        Command::Update(args) => update::run(&root, args),
        Command::Events {
            stats,
            interval,
            id,
        } => events::run(&root, id, *stats, interval),
        Command::Features => features::run(),
        Command::List { format, quiet } => list::run(&root, *format, *quiet),
        Command::Pause { id } => pause::run(&root, id, true),
        Command::Resume { id } => pause::run(&root, id, false),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps::run(&root, id, *format, ps_args),
        Command::Spec { bundle, rootless } => spec::run(bundle, *rootless),
    }
}
