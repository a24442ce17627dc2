//! The loop every test HTTP server shares: a free loopback port, a runtime thread of its own,
//! one async handler per request, stopped when the handle is dropped.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Response};
use hyper_util::rt::TokioIo;

/// A request, read whole.
pub struct Request {
    /// GET, PUT...
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query string ("" when none).
    pub query: String,
    /// Path and query as sent.
    pub path_and_query: String,
    /// Headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// A running server; dropping it stops it.
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves `handler` on a free loopback port.
pub fn serve<F, Fut>(handler: F) -> Served
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    serve_with(handler, None)
}

/// Serves `handler` over HTTPS (the test CA's certificate for 127.0.0.1) on a free loopback
/// port.
pub fn serve_tls<F, Fut>(handler: F) -> Served
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    serve_with(handler, Some(super::tls::ca().acceptor()))
}

fn serve_with<F, Fut>(handler: F, tls: Option<tokio_rustls::TlsAcceptor>) -> Served
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
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
                let handler = handler.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let handler = handler.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let request = Request {
                                    method: parts.method,
                                    path: parts.uri.path().to_string(),
                                    query: parts.uri.query().unwrap_or("").to_string(),
                                    path_and_query: parts
                                        .uri
                                        .path_and_query()
                                        .map(|p| p.as_str().to_string())
                                        .unwrap_or_else(|| "/".into()),
                                    headers: parts.headers,
                                    body,
                                };
                                Ok::<_, Infallible>(handler(request).await)
                            }
                        },
                    );
                    match tls {
                        Some(tls) => {
                            let Ok(stream) = tls.accept(stream).await else {
                                return;
                            };
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        None => {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
    });
    Served {
        base,
        stop: Some(tx),
    }
}
