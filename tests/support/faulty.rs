//! A fault-injecting HTTP proxy in front of moto, as a throttling storm looks to a client:
//! a share of calls answered with the protocol's own throttling error, some with 503, the rest
//! forwarded. Faulted calls never reach moto, as with real throttling.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// What the proxy did, per operation (`CreateService`, `CreateRole`...).
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Calls passed on to moto.
    pub forwarded: BTreeMap<String, usize>,
    /// Calls answered with a throttling error.
    pub throttled: usize,
    /// Calls answered with 503.
    pub unavailable: usize,
}

impl Stats {
    /// How many `operation` calls reached moto.
    pub fn forwarded(&self, operation: &str) -> usize {
        self.forwarded.get(operation).copied().unwrap_or(0)
    }
}

/// The proxy, serving on its own runtime thread until dropped.
pub struct FaultyProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    stats: Arc<Mutex<Stats>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The random seed, printed so a failing run can be replayed.
    pub seed: u64,
}

struct Faults {
    upstream: String,
    throttle: f64,
    unavailable: f64,
    rng: Mutex<fastrand::Rng>,
    stats: Arc<Mutex<Stats>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl FaultyProxy {
    /// Proxies to `upstream`, answering `throttle` of the calls with throttling errors and
    /// `unavailable` of them with 503.
    pub fn start(upstream: &str, throttle: f64, unavailable: f64) -> FaultyProxy {
        let seed = std::env::var("CONVERGE_TEST_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..));
        eprintln!("fault-injecting proxy: seed {seed} (set CONVERGE_TEST_FAULT_SEED to replay)");
        let stats = Arc::new(Mutex::new(Stats::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let faults = Arc::new(Faults {
            upstream: upstream.trim_end_matches('/').to_string(),
            throttle,
            unavailable,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            stats: stats.clone(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(listener, faults, stop_rx));
        });
        FaultyProxy {
            endpoint: format!("http://{addr}"),
            stats,
            stop: Some(stop_tx),
            seed,
        }
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap().clone()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    faults: Arc<Faults>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let faults = faults.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let faults = faults.clone();
                async move { Ok::<_, Infallible>(faults.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The AWS wire protocol of a request, which decides how a throttling error looks.
enum Protocol {
    /// awsJson (ECS, ECR, tagging): `X-Amz-Target: Service.Operation`.
    Json,
    /// awsQuery (IAM, EC2): a form body with `Action=Operation`.
    Query,
}

impl Faults {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let (protocol, operation) = match parts.headers.get("x-amz-target") {
            Some(target) => (
                Protocol::Json,
                target
                    .to_str()
                    .unwrap_or_default()
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            None => (
                Protocol::Query,
                form_action(&body).unwrap_or_else(|| parts.uri.path().to_string()),
            ),
        };
        let roll = self.rng.lock().unwrap().f64();
        if roll < self.throttle {
            self.stats.lock().unwrap().throttled += 1;
            return throttled(protocol);
        }
        if roll < self.throttle + self.unavailable {
            self.stats.lock().unwrap().unavailable += 1;
            return Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body(Full::new(Bytes::from_static(b"Service Unavailable")))
                .unwrap();
        }
        *self
            .stats
            .lock()
            .unwrap()
            .forwarded
            .entry(operation)
            .or_default() += 1;
        self.forward(parts, body).await
    }

    async fn forward(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut upstream = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path}", self.upstream));
        for (name, value) in &parts.headers {
            if name != "host" && name != "content-length" {
                upstream = upstream.header(name, value);
            }
        }
        let response = match self
            .client
            .request(upstream.body(Full::new(body)).unwrap())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Response::builder()
                    .status(StatusCode::BAD_GATEWAY)
                    .body(Full::new(Bytes::from(format!("proxy: {e}"))))
                    .unwrap();
            }
        };
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut out = Response::builder().status(parts.status);
        for (name, value) in &parts.headers {
            if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                out = out.header(name, value);
            }
        }
        out.body(Full::new(body)).unwrap()
    }
}

fn form_action(body: &[u8]) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(str::to_string)
}

/// The throttling error each protocol's real services send.
fn throttled(protocol: Protocol) -> Response<Full<Bytes>> {
    match protocol {
        Protocol::Json => Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-errortype", "ThrottlingException")
            .body(Full::new(Bytes::from_static(
                br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            )))
            .unwrap(),
        Protocol::Query => Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header("content-type", "text/xml")
            .body(Full::new(Bytes::from_static(
                b"<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>",
            )))
            .unwrap(),
    }
}
