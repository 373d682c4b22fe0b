//! The `handler` binary as real processes (`*_process.rs`): the command in a clean environment,
//! a free port, a child stopped when dropped, and polling until a URL answers.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The `handler` binary run in `dir` with nothing from the test's environment but `PATH`, and
/// its data in `dir/data` (`DATA_DIR`).
pub fn handler(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_handler"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir.join("data"));
    command
}

/// A loopback port the OS just handed out (and that is free again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that is killed when dropped (also when a test fails half-way).
pub struct Running(Child);

impl Running {
    pub fn spawn(command: &mut Command) -> Self {
        Self(command.spawn().expect("start handler"))
    }

    /// The child's standard error, when it was piped.
    pub fn stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.0.stderr.take()
    }

    /// Stops the process as the host does (SIGTERM), killing it after 10 s; its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.0.kill();
                return self.0.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A blocking client that never goes through a proxy.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// `GET url`: the status and body, `None` when nothing answers.
pub fn get(url: &str) -> Option<(u16, String)> {
    let response = client().get(url).send().ok()?;
    Some((response.status().as_u16(), response.text().ok()?))
}

/// Polls `url` until it answers with a status `accept`s (failing after `within`); that answer.
pub fn wait_for(url: &str, within: Duration, accept: impl Fn(u16) -> bool) -> (u16, String) {
    let started = Instant::now();
    loop {
        if let Some(answer) = get(url).filter(|(status, _)| accept(*status)) {
            return answer;
        }
        assert!(
            started.elapsed() < within,
            "{url} never answered as expected within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
