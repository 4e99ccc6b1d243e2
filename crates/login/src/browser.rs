//! Opening the sign-in page: a command given by the user, the system browser, or nothing (the
//! caller then prints the URL).

use std::process::{Command, Stdio};

/// Opens a URL in a browser.
pub trait Browser: Send + Sync {
    /// Starts opening `url`; `Err` (with a reason) means it could not, and the URL must be
    /// shown to the user instead. Returns without waiting for the sign-in.
    fn open(&self, url: &str) -> Result<(), String>;
}

/// Runs a user-given command with the URL as its last argument (through `sh -c` on Unix, so
/// the command may carry its own arguments). Its output goes to stderr, never to stdout.
#[derive(Debug, Clone)]
pub struct CommandBrowser {
    command: String,
}

impl CommandBrowser {
    /// A browser that runs `command URL`.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
        }
    }
}

impl Browser for CommandBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        let mut cmd = if cfg!(unix) {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("{} \"$@\"", self.command))
                .arg("lakests-browser")
                .arg(url);
            c
        } else {
            let mut parts = self.command.split_whitespace();
            let program = parts.next().ok_or("the browser command is empty")?;
            let mut c = Command::new(program);
            c.args(parts).arg(url);
            c
        };
        cmd.stdin(Stdio::null()).stdout(stderr_stdio());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run the browser command: {e}"))?;
        // Reaped on a thread so it never lingers as a zombie; a failure is worth a line.
        std::thread::spawn(move || {
            if let Ok(status) = child.wait()
                && !status.success()
            {
                eprintln!("lakests: the browser command exited with {status}");
            }
        });
        Ok(())
    }
}

fn stderr_stdio() -> Stdio {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
            return Stdio::from(fd);
        }
    }
    Stdio::null()
}

/// How long the system browser's launcher is given to report a failure.
const SYSTEM_BROWSER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The desktop's default browser (through the `open` crate). On a Unix machine without a
/// graphical session it refuses at once, so the URL gets printed.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemBrowser;

impl Browser for SystemBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        if cfg!(all(unix, not(target_os = "macos")))
            && std::env::var_os("DISPLAY").is_none()
            && std::env::var_os("WAYLAND_DISPLAY").is_none()
        {
            return Err("no graphical session (neither DISPLAY nor WAYLAND_DISPLAY is set)".into());
        }
        // `open::that` reports a launcher that fails (no browser installed); some launchers
        // only return when the browser closes, so a launcher still running after a moment
        // counts as opened.
        let (tx, rx) = std::sync::mpsc::channel();
        let url = url.to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(open::that(&url));
        });
        match rx.recv_timeout(SYSTEM_BROWSER_WAIT) {
            Ok(Ok(())) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err("the browser launcher failed".into())
            }
        }
    }
}

/// The reason [`NoBrowser`] gives: the URL is printed without an excuse.
pub const NO_BROWSER: &str = "--no-browser";

/// Never opens anything (`--no-browser`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBrowser;

impl Browser for NoBrowser {
    fn open(&self, _url: &str) -> Result<(), String> {
        Err(NO_BROWSER.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_gets_the_url_as_its_last_argument() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("args");
        let b = CommandBrowser::new(format!(
            "printf '%s\\n' first >{0}; printf '%s\\n' >>{0}",
            out.display()
        ));
        b.open("http://127.0.0.1:1/authorize?a=1&b='x y'").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if text.lines().count() >= 2 {
                assert_eq!(
                    text, "first\nhttp://127.0.0.1:1/authorize?a=1&b='x y'\n",
                    "the URL arrives as one argument, unmangled"
                );
                break;
            }
            assert!(std::time::Instant::now() < deadline, "command did not run");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn no_browser_always_asks_for_the_url_to_be_printed() {
        assert!(NoBrowser.open("http://x").is_err());
    }
}
