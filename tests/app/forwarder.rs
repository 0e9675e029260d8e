//! A TCP forwarder between the site and PostgreSQL that a test can cut (listener and connections
//! gone: "connection refused"), stall (connections stay open, no byte gets through: a silent
//! network) and restore, to stage real outages without touching the shared server.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Shared {
    upstream: String,
    accepting: AtomicBool,
    stalled: AtomicBool,
    streams: Mutex<Vec<TcpStream>>,
}

/// A forwarder on 127.0.0.1 to `upstream`.
pub struct Forwarder {
    port: u16,
    shared: Arc<Shared>,
}

impl Forwarder {
    /// Starts forwarding from a free local port to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the forwarder");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            accepting: AtomicBool::new(true),
            stalled: AtomicBool::new(false),
            streams: Mutex::new(Vec::new()),
        });
        accept_in_background(listener, Arc::clone(&shared));
        Forwarder { port, shared }
    }

    /// The local port the site connects to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops listening and closes every forwarded connection: the database is gone.
    pub fn cut(&self) {
        self.shared.accepting.store(false, Ordering::SeqCst);
        // Wakes the accept loop so it drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for stream in self.shared.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // The listener is closed once a connection is refused.
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the forwarder still accepts connections after the cut");
    }

    /// Keeps connections open but lets no byte through: queries and connection checks hang.
    pub fn stall(&self) {
        self.shared.stalled.store(true, Ordering::SeqCst);
    }

    /// Lets bytes through again after `delay`, whatever the test does meanwhile (so a site that
    /// hangs fails the test instead of hanging the run).
    pub fn unstall_after(&self, delay: Duration) {
        let shared = Arc::clone(&self.shared);
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            shared.stalled.store(false, Ordering::SeqCst);
        });
    }

    /// Listens again on the same port and lets bytes through again.
    pub fn restore(&self) {
        self.shared.stalled.store(false, Ordering::SeqCst);
        if !self.shared.accepting.swap(true, Ordering::SeqCst) {
            let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("rebind");
            accept_in_background(listener, Arc::clone(&self.shared));
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.shared.stalled.store(false, Ordering::SeqCst);
        if self.shared.accepting.load(Ordering::SeqCst) {
            self.cut();
        }
    }
}

fn accept_in_background(listener: TcpListener, shared: Arc<Shared>) {
    std::thread::spawn(move || {
        for client in listener.incoming() {
            if !shared.accepting.load(Ordering::SeqCst) {
                return; // drops the listener
            }
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&shared.upstream) else {
                continue;
            };
            {
                let mut streams = shared.streams.lock().unwrap();
                streams.push(client.try_clone().unwrap());
                streams.push(server.try_clone().unwrap());
            }
            pipe(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                &shared,
            );
            pipe(server, client, &shared);
        }
    });
}

/// Copies `from` to `to` until either side closes, holding bytes back while stalled.
fn pipe(mut from: TcpStream, mut to: TcpStream, shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while shared.stalled.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
