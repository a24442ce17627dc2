//! A local HTTP server a test controls: `GET /health` answers the status the test sets, and
//! `POST /hook` records webhook bodies.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;

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
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestHttp {
    /// Starts it answering 200 on /health.
    pub fn start() -> TestHttp {
        let shared = Arc::new(Shared::default());
        shared.status.store(200, Ordering::SeqCst);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let s = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let accepted = tokio::select! {
                        a = listener.accept() => a,
                        _ = &mut rx => return,
                    };
                    let Ok((stream, _)) = accepted else { continue };
                    let s = s.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(
                            move |req: hyper::Request<hyper::body::Incoming>| {
                                let s = s.clone();
                                async move {
                                    let method = req.method().clone();
                                    let path = req.uri().path().to_string();
                                    let body = req
                                        .into_body()
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default();
                                    let status = if method == Method::POST && path == "/hook" {
                                        if let Ok(v) = serde_json::from_slice(&body) {
                                            s.hooks.lock().unwrap().push(v);
                                        }
                                        200
                                    } else {
                                        s.probes.fetch_add(1, Ordering::SeqCst);
                                        s.status.load(Ordering::SeqCst)
                                    };
                                    Ok::<_, Infallible>(
                                        Response::builder()
                                            .status(StatusCode::from_u16(status).unwrap())
                                            .body(Full::new(Bytes::from_static(b"ok")))
                                            .unwrap(),
                                    )
                                }
                            },
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        TestHttp {
            base,
            shared,
            stop: Some(tx),
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

impl Drop for TestHttp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
