//! Integration test harness: real bundles, a private --root per test, and
//! leak checks. Set CARTE_BIN to run the same tests against another runtime
//! (runc), which is how the tests themselves were checked.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod host;
#[allow(unused_imports)]
pub use host::{format_list, host, skip};

pub fn carte_bin() -> PathBuf {
    std::env::var_os("CARTE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_carte")))
}

/// True when the suite runs against runc, to skip the places where carte
/// follows the spec and runc does not.
pub fn is_runc() -> bool {
    carte_bin().file_name().is_some_and(|n| n == "runc")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The busybox rootfs, built once per test binary.
pub fn base_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = repo().join("target/test-rootfs");
        let status = Command::new(repo().join("bundle-examples/mkrootfs.sh"))
            .arg(&dir)
            .status()
            .expect("run mkrootfs.sh");
        assert!(status.success(), "mkrootfs.sh failed");
        dir
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// What one carte call printed, and how it ended.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.ok(),
            "expected success, got {:?}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// A failure with exactly one line on stderr that holds each of `needles`.
    #[track_caller]
    pub fn assert_fails_with(&self, needles: &[&str]) -> &Self {
        assert!(
            !self.ok(),
            "expected failure, got success\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        if is_runc() {
            return self;
        }
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line, got: {:?}",
            self.stderr
        );
        for needle in needles {
            assert!(
                lines[0].contains(needle),
                "error line {:?} lacks {needle:?}",
                lines[0]
            );
        }
        self
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// One test's world: a private dir with a state root and bundles. Dropping
/// it force-deletes every container it made and removes the dir, so a
/// failing test cleans up too.
pub struct TestEnv {
    pub dir: PathBuf,
    pub root: PathBuf,
    ids: std::sync::Mutex<Vec<String>>,
    name: String,
}

impl TestEnv {
    pub fn new(name: &str) -> TestEnv {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("t-{name}-{}-{n}", std::process::id());
        let dir = PathBuf::from("/tmp/carte-tests").join(&name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let root = dir.join("state");
        TestEnv {
            dir,
            root,
            ids: Default::default(),
            name,
        }
    }

    /// A container id unique to this test; remembered for cleanup.
    pub fn id(&self, suffix: &str) -> String {
        let id = format!("{}-{suffix}", self.name);
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// A bundle with a copy of the busybox rootfs and a default config.
    pub fn bundle(&self, name: &str) -> Bundle {
        let dir = self.dir.join(name);
        fs::create_dir_all(&dir).unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(base_rootfs())
            .arg(dir.join("rootfs"))
            .status()
            .unwrap();
        assert!(status.success());
        let bundle = Bundle {
            dir,
            config: default_config(),
        };
        bundle.write();
        bundle
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(carte_bin());
        cmd.arg("--root").arg(&self.root).args(args);
        cmd
    }

    /// Runs carte with stdout and stderr in files: a container's init
    /// inherits them, so pipes would stay open as long as it lives.
    pub fn carte(&self, args: &[&str]) -> Out {
        self.carte_cmd(self.command(args))
    }

    pub fn carte_cmd(&self, cmd: Command) -> Out {
        self.carte_cmd_input(cmd, None)
    }

    /// `carte` with `input` on its stdin (`update --resources -`).
    pub fn carte_with_input(&self, args: &[&str], input: &[u8]) -> Out {
        self.carte_cmd_input(self.command(args), Some(input))
    }

    fn carte_cmd_input(&self, mut cmd: Command, input: Option<&[u8]>) -> Out {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let out_path = self.dir.join(format!("out-{n}"));
        let err_path = self.dir.join(format!("err-{n}"));
        let stdin = match input {
            Some(data) => {
                let in_path = self.dir.join(format!("in-{n}"));
                fs::write(&in_path, data).unwrap();
                Stdio::from(File::open(&in_path).unwrap())
            }
            None => Stdio::null(),
        };
        cmd.stdin(stdin)
            .stdout(File::create(&out_path).unwrap())
            .stderr(File::create(&err_path).unwrap());
        let status = cmd.status().expect("spawn carte");
        Out {
            status,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// `carte_cmd`, but waits at most `secs`: a hang is a failure, not a
    /// stuck suite (carte is killed).
    #[track_caller]
    pub fn carte_within(&self, mut cmd: Command, secs: u64) -> Out {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let out_path = self.dir.join(format!("out-{n}"));
        let err_path = self.dir.join(format!("err-{n}"));
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).unwrap())
            .stderr(File::create(&err_path).unwrap())
            .spawn()
            .expect("spawn carte");
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} hung for {secs} s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Out {
            status,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `run` of the bundle's process to completion.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Out {
        bundle.write();
        self.carte(&["run", "--bundle", bundle.path(), id])
    }

    /// Runs `script` with sh inside a container made from `bundle`, and
    /// returns its stdout; panics with the details if it fails.
    #[track_caller]
    pub fn sh(&self, bundle: &mut Bundle, script: &str) -> String {
        bundle.config["process"]["args"] = json!(["sh", "-c", script]);
        let id = self.id(&format!("sh{}", COUNTER.fetch_add(1, Ordering::SeqCst)));
        let out = self.run(bundle, &id);
        out.assert_ok();
        self.assert_no_leaks(&id);
        out.stdout
    }

    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.carte(&["state", id]);
        out.ok()
            .then(|| serde_json::from_str(&out.stdout).expect("state is JSON"))
    }

    pub fn status(&self, id: &str) -> Option<String> {
        self.state(id)
            .map(|s| s["status"].as_str().unwrap().to_string())
    }

    /// Polls until the container reaches `status` (or 10 s pass).
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.status(id).as_deref() == Some(status) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "container {id} never reached {status}; now {:?}",
            self.status(id)
        );
    }

    /// Nothing of container `id` is left: no state dir, no cgroup, no mount
    /// under this test's dir, no process rooted in it.
    #[track_caller]
    pub fn assert_no_leaks(&self, id: &str) {
        assert!(
            !self.root.join(id).exists(),
            "state dir of {id} left behind"
        );
        for rel in [format!("carte/{id}"), id.to_string()] {
            let left = host().cgroup_dirs(&rel);
            assert!(left.is_empty(), "cgroups left behind: {left:?}");
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dir = self.dir.to_string_lossy();
        assert!(
            !mounts.contains(dir.as_ref()),
            "mounts left under {dir}:\n{mounts}"
        );
        let procs = processes_of(id);
        assert!(procs.is_empty(), "processes of {id} left: {procs:?}");
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for id in self.ids.lock().unwrap().iter() {
            let _ = self
                .command(&["delete", "--force", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            // Keep the files of a failed test, but never a container.
            eprintln!("test files kept in {}", self.dir.display());
        }
    }
}

/// Pids of processes in container `id`'s cgroup, found through
/// /proc/<pid>/cgroup (a container's /proc/<pid>/root reads "/" from the
/// host once it has pivoted, so paths can't tell).
pub fn processes_of(id: &str) -> Vec<i32> {
    let needle = format!("/{id}\n");
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if fs::read_to_string(entry.path().join("cgroup")).is_ok_and(|c| c.contains(&needle)) {
            out.push(pid);
        }
    }
    out
}

pub struct Bundle {
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn write(&self) {
        fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }
}

pub const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// runc's `spec` defaults, less the terminal and cgroup mount.
pub fn default_config() -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "carte-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// `key=value` lines printed by a container, as a lookup.
pub fn kv(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The hex mask /proc/<pid>/status shows for a set of capability numbers.
pub fn cap_mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1 << c)))
}

/// A console socket at `path`, as conmon and the containerd shim give one:
/// accepts one connection and returns the pty master it receives.
pub fn console_socket(path: &Path) -> std::thread::JoinHandle<std::os::fd::OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::io::IoSliceMut;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("a pty master over SCM_RIGHTS");
        // SAFETY: the fd was just received over SCM_RIGHTS and is ours.
        unsafe { OwnedFd::from_raw_fd(fd) }
    })
}
