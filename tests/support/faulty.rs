//! A fault-injecting HTTP proxy in front of moto, as a throttling storm looks to a client:
//! a share of calls answered with the protocol's own throttling error, some with 503, the rest
//! forwarded. Faulted calls never reach moto, as with real throttling.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::serve::{self, Served, serve};

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
    _served: Served,
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
        let faults = Arc::new(Faults {
            upstream: upstream.trim_end_matches('/').to_string(),
            throttle,
            unavailable,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            stats: stats.clone(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let served = serve(move |req| {
            let faults = faults.clone();
            async move { faults.handle(req).await }
        });
        FaultyProxy {
            endpoint: served.base.clone(),
            stats,
            _served: served,
            seed,
        }
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap().clone()
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
    async fn handle(&self, req: serve::Request) -> Response<Full<Bytes>> {
        let (protocol, operation) = match req.headers.get("x-amz-target") {
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
                form_action(&req.body).unwrap_or_else(|| req.path.clone()),
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
        self.forward(req).await
    }

    async fn forward(&self, req: serve::Request) -> Response<Full<Bytes>> {
        let mut upstream = Request::builder()
            .method(req.method.clone())
            .uri(format!("{}{}", self.upstream, req.path_and_query));
        for (name, value) in &req.headers {
            if name != "host" && name != "content-length" {
                upstream = upstream.header(name, value);
            }
        }
        let response = match self
            .client
            .request(upstream.body(Full::new(req.body)).unwrap())
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
