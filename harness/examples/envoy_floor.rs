//! The whole-process floor of `cargo bench --bench speed`: the least a
//! program can do to prove a module in Envoy. It boots Envoy with the
//! static bootstrap it is given (listener, the module from a local file, a
//! cluster to an echo server the bench runs), waits for the first 200 that
//! carries the module's `x-stamp` header, then stops Envoy and exits.
//!
//! `envoy_floor ENVOY BOOTSTRAP LISTENER`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [envoy, bootstrap, listener] = &args[..] else {
        eprintln!("usage: envoy_floor ENVOY BOOTSTRAP LISTENER");
        return ExitCode::from(2);
    };
    let mut child = match Command::new(envoy)
        .args(["-c", bootstrap, "--disable-hot-restart", "--concurrency", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("cannot start {envoy}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let answered = loop {
        if stamped_ok(listener) {
            break true;
        }
        if started.elapsed() > Duration::from_secs(30) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // Stopping is part of the floor: `plugproof run` stops its Envoy too.
    let _ = child.kill();
    let _ = child.wait();
    if answered {
        ExitCode::SUCCESS
    } else {
        eprintln!("Envoy gave no stamped 200 on {listener} within 30 s");
        ExitCode::FAILURE
    }
}

/// One HTTP/1.1 request: a 200 with an `x-stamp` header?
fn stamped_ok(listener: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(listener) else { return false };
    let request = "GET / HTTP/1.1\r\nhost: floor.example.com\r\nconnection: close\r\n\r\n";
    let mut response = Vec::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_end(&mut response).is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.starts_with("http/1.1 200") && head.lines().any(|line| line.starts_with("x-stamp:"))
}
