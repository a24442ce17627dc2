//! A local HTTP server a test controls: `GET /health` answers the status the test sets, and
//! `POST /hook` records webhook bodies.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};

use super::serve::{Served, serve};

#[derive(Default)]
struct Shared {
    status: AtomicU16,
    probes: AtomicUsize,
    hooks: Mutex<Vec<serde_json::Value>>,
}

/// The server, on its own runtime thread until dropped.
pub struct TestHttp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Arc<Shared>,
    _served: Served,
}

impl TestHttp {
    /// Starts it answering 200 on /health.
    pub fn start() -> TestHttp {
        let shared = Arc::new(Shared::default());
        shared.status.store(200, Ordering::SeqCst);
        let s = shared.clone();
        let served = serve(move |req| {
            let s = s.clone();
            async move {
                let status = if req.method == Method::POST && req.path == "/hook" {
                    if let Ok(v) = serde_json::from_slice(&req.body) {
                        s.hooks.lock().unwrap().push(v);
                    }
                    200
                } else {
                    s.probes.fetch_add(1, Ordering::SeqCst);
                    s.status.load(Ordering::SeqCst)
                };
                Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .body(Full::new(Bytes::from_static(b"ok")))
                    .unwrap()
            }
        });
        TestHttp {
            base: served.base.clone(),
            shared,
            _served: served,
        }
    }

    /// Makes /health answer `status` from now on.
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// How many health probes arrived.
    pub fn probes(&self) -> usize {
        self.shared.probes.load(Ordering::SeqCst)
    }

    /// Webhook bodies received.
    pub fn hooks(&self) -> Vec<serde_json::Value> {
        self.shared.hooks.lock().unwrap().clone()
    }
}
