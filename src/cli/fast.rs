//! The command lines that callers send most (podman, conmon, containerd:
//! create, start, state, kill, delete, run, exec, pause, resume), read
//! without clap.
//!
//! clap builds its whole command tree, all verbs and their help, before
//! it reads one argument: about 0.2 ms of a 0.6 ms `carte state`, most of
//! it faulting in clap's text. This reader takes only plain forms it can
//! read exactly as clap does, and gives up (None) on anything else: help,
//! version, an unknown or repeated flag, a value that looks like a flag,
//! `--`, an empty or non-UTF-8 argument. clap then parses the line, so every
//! message, exit code and corner case stays clap's. The tests check that
//! each line read here reads the same through clap.

use std::ffi::OsString;
use std::path::PathBuf;

use super::exec::ExecArgs;
use super::{Cli, Command, CreateArgs, LogFormat};

/// The whole command line (program name first), or None for clap.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Option<Cli> {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.into_string().ok())
        .collect::<Option<_>>()?;
    if args.iter().any(|a| a == "--" || a.is_empty()) {
        return None;
    }
    let mut words = Words {
        args: &args,
        at: 0,
        seen: Vec::new(),
    };
    let mut cli = Cli {
        root: None,
        log: None,
        log_format: LogFormat::Text,
        debug: false,
        systemd_cgroup: false,
        rootless: None,
        version: (),
        command: Command::Features,
    };
    let verb = loop {
        let word = words.next()?;
        if !word.starts_with('-') {
            break word;
        }
        match words.flag(word, &["--root", "--log", "--log-format", "--rootless"])? {
            ("--root", Some(v)) => cli.root = Some(PathBuf::from(v)),
            ("--log", Some(v)) => cli.log = Some(PathBuf::from(v)),
            ("--log-format", Some("text")) => cli.log_format = LogFormat::Text,
            ("--log-format", Some("json")) => cli.log_format = LogFormat::Json,
            ("--rootless", Some(v)) => cli.rootless = Some(v.to_string()),
            ("--debug", None) => cli.debug = true,
            ("--systemd-cgroup", None) => cli.systemd_cgroup = true,
            _ => return None,
        }
    };
    words.seen.clear();
    cli.command = match verb {
        "start" | "state" | "pause" | "resume" => {
            let id = words.only_id()?;
            match verb {
                "start" => Command::Start { id },
                "state" => Command::State { id },
                "pause" => Command::Pause { id },
                _ => Command::Resume { id },
            }
        }
        "kill" => kill(&mut words)?,
        "delete" => {
            let (force, mut ids) = words.switch_and_ids("-f", "--force")?;
            if ids.len() != 1 {
                return None;
            }
            Command::Delete {
                force,
                id: ids.remove(0),
            }
        }
        "create" | "run" => {
            let mut detach = false;
            let mut create = CreateArgs {
                bundle: PathBuf::from("."),
                pid_file: None,
                console_socket: None,
                preserve_fds: 0,
                no_pivot: false,
                no_new_keyring: false,
                id: String::new(),
            };
            let mut ids = Vec::new();
            while let Some(word) = words.next() {
                if !word.starts_with('-') {
                    ids.push(id(word)?);
                    continue;
                }
                let word = match word {
                    "-b" => "--bundle",
                    "-d" if verb == "run" => "--detach",
                    w => w,
                };
                let valued = [
                    "--bundle",
                    "--pid-file",
                    "--console-socket",
                    "--preserve-fds",
                ];
                match words.flag(word, &valued)? {
                    ("--bundle", Some(v)) => create.bundle = PathBuf::from(v),
                    ("--pid-file", Some(v)) => create.pid_file = Some(PathBuf::from(v)),
                    ("--console-socket", Some(v)) => create.console_socket = Some(PathBuf::from(v)),
                    ("--preserve-fds", Some(v)) => create.preserve_fds = number(v)?,
                    ("--no-pivot", None) => create.no_pivot = true,
                    ("--no-new-keyring", None) => create.no_new_keyring = true,
                    ("--detach", None) if verb == "run" => detach = true,
                    _ => return None,
                }
            }
            if ids.len() != 1 {
                return None;
            }
            create.id = ids.remove(0);
            if verb == "run" {
                Command::Run {
                    detach,
                    keep: false,
                    create,
                }
            } else {
                Command::Create(create)
            }
        }
        "exec" => Command::Exec(exec(&mut words)?),
        _ => return None,
    };
    Some(cli)
}

/// The arguments left to read, and the flags seen (each may come once).
struct Words<'a> {
    args: &'a [String],
    at: usize,
    seen: Vec<&'a str>,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let word = self.args.get(self.at)?;
        self.at += 1;
        Some(word)
    }

    /// A long flag (`--name`, or `--name value` and `--name=value` for
    /// one in `valued`), seen for the first time.
    fn flag(&mut self, word: &'a str, valued: &[&str]) -> Option<(&'a str, Option<&'a str>)> {
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (word, None),
        };
        if !name.starts_with("--") || self.seen.contains(&name) {
            return None;
        }
        self.seen.push(name);
        if !valued.contains(&name) {
            return inline.is_none().then_some((name, None));
        }
        let value = match inline {
            Some(value) => value,
            None => self.next()?,
        };
        // clap reads "--root -x" as a missing value, and "" is no path.
        if value.is_empty() || value.starts_with('-') {
            return None;
        }
        Some((name, Some(value)))
    }

    /// Positional ids, and whether a bool flag (`short` or `long`, at most
    /// once) is among them.
    fn switch_and_ids(&mut self, short: &str, long: &str) -> Option<(bool, Vec<String>)> {
        let mut on = false;
        let mut ids = Vec::new();
        while let Some(word) = self.next() {
            if word == short || word == long {
                if on {
                    return None;
                }
                on = true;
            } else {
                ids.push(id(word)?);
            }
        }
        Some((on, ids))
    }

    /// Exactly one positional id and nothing else.
    fn only_id(&mut self) -> Option<String> {
        let first = id(self.next()?)?;
        self.next().is_none().then_some(first)
    }
}

fn id(word: &str) -> Option<String> {
    (!word.starts_with('-') && !word.is_empty()).then(|| word.to_string())
}

/// Plain decimal digits only: clap's own reading of "+1" or " 1" is left
/// to clap.
fn number(value: &str) -> Option<u32> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn kill(words: &mut Words) -> Option<Command> {
    let (all, positional) = words.switch_and_ids("-a", "--all")?;
    let mut positional = positional.into_iter();
    let id = positional.next()?;
    let signal = positional.next().unwrap_or_else(|| "SIGTERM".to_string());
    if positional.next().is_some() {
        return None;
    }
    Some(Command::Kill { all, id, signal })
}

fn exec(words: &mut Words) -> Option<ExecArgs> {
    let mut args = ExecArgs {
        process: None,
        cwd: None,
        env: Vec::new(),
        user: None,
        additional_gids: Vec::new(),
        cap: Vec::new(),
        tty: false,
        console_socket: None,
        detach: false,
        pid_file: None,
        preserve_fds: 0,
        no_new_privs: false,
        apparmor: None,
        process_label: None,
        ignore_paused: false,
        cgroup: Vec::new(),
        id: String::new(),
        command: Vec::new(),
    };
    let mut id_seen = false;
    while let Some(word) = words.next() {
        if !word.starts_with('-') {
            if id_seen {
                // The command: everything from here on, as it is.
                args.command.push(word.to_string());
                args.command.extend(words.args[words.at..].iter().cloned());
                break;
            }
            args.id = id(word)?;
            id_seen = true;
            continue;
        }
        let word = match word {
            "-p" => "--process",
            "-e" => "--env",
            "-u" => "--user",
            "-g" => "--additional-gids",
            "-c" => "--cap",
            "-t" => "--tty",
            "-d" => "--detach",
            w => w,
        };
        // Repeatable ones are taken before `flag`, which allows one each.
        let repeatable = ["--env", "--additional-gids", "--cap"];
        let (name, inline) = word.split_once('=').unwrap_or((word, ""));
        if repeatable.contains(&name) {
            let value = if word.contains('=') {
                inline
            } else {
                words.next()?
            };
            if value.is_empty() || value.starts_with('-') {
                return None;
            }
            match name {
                "--env" => args.env.push(value.to_string()),
                "--cap" => args.cap.push(value.to_string()),
                _ => args.additional_gids.push(number(value)?),
            }
            continue;
        }
        let valued = [
            "--process",
            "--cwd",
            "--user",
            "--console-socket",
            "--pid-file",
            "--preserve-fds",
            "--apparmor",
            "--process-label",
        ];
        match words.flag(word, &valued)? {
            ("--process", Some(v)) => args.process = Some(PathBuf::from(v)),
            ("--cwd", Some(v)) => args.cwd = Some(PathBuf::from(v)),
            ("--user", Some(v)) => args.user = Some(v.to_string()),
            ("--console-socket", Some(v)) => args.console_socket = Some(PathBuf::from(v)),
            ("--pid-file", Some(v)) => args.pid_file = Some(PathBuf::from(v)),
            ("--preserve-fds", Some(v)) => args.preserve_fds = number(v)?,
            ("--apparmor", Some(v)) => args.apparmor = Some(v.to_string()),
            ("--process-label", Some(v)) => args.process_label = Some(v.to_string()),
            ("--tty", None) => args.tty = true,
            ("--detach", None) => args.detach = true,
            ("--no-new-privs", None) => args.no_new_privs = true,
            ("--ignore-paused", None) => args.ignore_paused = true,
            _ => return None,
        }
    }
    id_seen.then_some(args)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn line(text: &str) -> Vec<OsString> {
        std::iter::once("carte")
            .chain(text.split(' ').filter(|w| !w.is_empty()))
            .map(OsString::from)
            .collect()
    }

    /// Each line read here reads the same through clap.
    #[test]
    fn same_as_clap() {
        let lines = [
            // conmon and podman (../shared/CALLERS.md)
            "--log-format=json --log /l create --bundle /b --pid-file /p id1",
            "--log-format=json --log /l create --bundle /b --pid-file /p --console-socket /s id1",
            "start id1",
            "delete --force id1",
            "--log-format=json --log /l exec --pid-file /p --process /x --detach id1",
            "--log-format=json --log /l exec --pid-file /p --process /x --detach --tty --console-socket /s id1",
            "kill id1 9",
            "kill id1 15",
            "pause id1",
            "resume id1",
            // containerd's shim
            "--root /r --log /l --log-format json create --bundle /b --pid-file /p id1",
            "--root /r --log /l --log-format json create --bundle /b --pid-file /p --console-socket /s id1",
            "--root /r --log /l --log-format json start id1",
            "--root /r --log /l --log-format json delete id1",
            "--root /r --log /l --log-format json delete --force id1",
            "--root /r --log /l --log-format json exec --process /x --detach --pid-file /p id1",
            "--root /r --log /l --log-format json exec --process /x --console-socket /s --detach --pid-file /p id1",
            "--root /r --log /l --log-format json kill id1 9",
            "--root /r --log /l --log-format json kill --all id1 9",
            "--root /r --log /l --log-format json pause id1",
            // other forms
            "--root=/r --debug --systemd-cgroup --rootless false state id1",
            "--rootless=auto --log-format text state id1",
            "run -b /b id1",
            "run -d --bundle=/b --preserve-fds 3 --no-pivot --no-new-keyring id1",
            "run id1 --detach",
            "create id1 --bundle /b",
            "kill -a id1",
            "kill id1 KILL -a",
            "kill --all id1 SIGKILL",
            "delete -f id1",
            "delete id1 -f",
            "exec id1 sh -c true",
            "exec -t -e A=1 -e B=2 --env=C=3 -u 1:2 -g 5 -g 6 --additional-gids=7 -c CAP_KILL --cap CAP_CHOWN id1 ls",
            "exec --cwd /tmp --no-new-privs --ignore-paused --apparmor p --process-label l --preserve-fds 2 id1 ls -l --help",
            "exec -d id1 sh",
        ];
        for text in lines {
            let fast = parse(line(text)).unwrap_or_else(|| panic!("not read: {text}"));
            let clap = Cli::try_parse_from(line(text)).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{text}");
        }
    }

    /// What is left to clap: its errors, help and forms read differently.
    #[test]
    fn left_to_clap() {
        for text in [
            "",
            "--help",
            "-h",
            "--version",
            "-V",
            "-v",
            "state",
            "state a b",
            "state --help",
            "state -- id1",
            "exec id1 ls -- -x",
            "--root /r",
            "--root",
            "--root -x state id1",
            "--root= state id1",
            "--root /a --root /b state id1",
            "--debug --debug state id1",
            "--debug=1 state id1",
            "--log-format xml state id1",
            "--log-format JSON state id1",
            "state id1 --root /r",
            "list",
            "features",
            "spec",
            "ps id1",
            "events id1",
            "update --resources=/x id1",
            "kill",
            "kill id1 9 9",
            "kill id1 -9",
            "kill -a -a id1",
            "delete",
            "delete id1 id2",
            "delete -ff id1",
            "delete -f --force id1",
            "create",
            "create -b",
            "create -b/b id1",
            "create --bundle /a --bundle /b id1",
            "create --preserve-fds +1 id1",
            "create --preserve-fds x id1",
            "create -d id1",
            "create id1 id2",
            "run --detach --detach id1",
            "exec",
            "exec -t",
            "exec id1 -x",
            "exec -g x id1",
            "exec --tty=1 id1",
            "exec -td id1",
            "nosuchverb id1",
            "-x state id1",
        ] {
            assert!(parse(line(text)).is_none(), "{text}");
        }
    }
}
