//! The real `backoffice` binary as a child process: a folder of its own, a clean environment,
//! and `serve` waited for until it says where it listens. The binary's path comes from the
//! calling test (`env!("CARGO_BIN_EXE_backoffice")`, which only the binary's own tests know).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A new, empty folder under the system's temporary folder.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bo-{tag}-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `bin` run in `dir` with a clean environment: only `PATH` and what the test sets.
pub fn command(bin: &str, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

/// Runs `c` to its end, with `stdin` piped in (or closed), and returns what it wrote.
pub fn run(mut c: Command, stdin: Option<&str>) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Everything a finished command wrote, stdout then stderr.
pub fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `admin create` of `email` ("Ops Admin") with `password` read from standard input, run as `c`
/// (the binary with the test's database and settings); `two_factor` is the option of that name,
/// `None` the command's default. Fails the test with the command's output if it fails.
pub fn create_admin(mut c: Command, email: &str, password: &str, two_factor: Option<&str>) {
    c.args([
        "admin",
        "create",
        "--email",
        email,
        "--name",
        "Ops Admin",
        "--password-stdin",
    ]);
    if let Some(method) = two_factor {
        c.args(["--two-factor", method]);
    }
    let o = run(c, Some(password));
    assert!(o.status.success(), "admin create: {}", output_text(&o));
}

/// A running `backoffice serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// What it printed before it listened (the first start's one-time sign-in details).
    pub stdout: String,
}

/// Starts `c` as `serve` on a free port, unless `c` names its own `BACKOFFICE_LISTEN` (its stderr
/// goes to `stderr`), and waits, at most 30 s, until it listens. Its later stdout is read and
/// dropped so it never blocks on a full pipe.
pub fn serve(mut c: Command, stderr: Stdio) -> Server {
    if !c.get_envs().any(|(k, _)| k == "BACKOFFICE_LISTEN") {
        c.env("BACKOFFICE_LISTEN", "127.0.0.1:0");
    }
    let mut child = c
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut stdout = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = child.kill();
            panic!("server did not start: {stdout}");
        }
        stdout.push_str(&line);
        if let Some(u) = line.trim().strip_prefix("Back Office listening on ") {
            break u.to_string();
        }
    };
    std::thread::spawn(move || for _ in reader.lines() {});
    let addr = url.trim_start_matches("http://").to_string();
    Server {
        child,
        url,
        addr,
        stdout,
    }
}

/// Sends `sig` (e.g. `-TERM`, `-KILL`) to the process.
pub fn signal(child: &Child, sig: &str) {
    Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
}

impl Server {
    /// SIGTERM, then the exit status and what the process wrote to stderr (if it was piped).
    pub fn stop(mut self) -> (ExitStatus, String) {
        signal(&self.child, "-TERM");
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        if let Some(stderr) = self.child.stderr.as_mut() {
            stderr.read_to_string(&mut err).unwrap();
        }
        (status, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
