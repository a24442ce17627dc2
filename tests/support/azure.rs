//! A local Azure for tests: the Microsoft Entra token endpoint and Azure Resource Manager for
//! resource groups and container registries, in memory, answering as Azure does (201/200 on
//! PUT, `Azure-AsyncOperation` and `Location` long-running operations, 404 error bodies, 429
//! with `Retry-After`), and validating every request body against the official specification
//! (`support::swagger`). A body the specification rejects is answered 400 and recorded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::serve::{Served, serve};
use super::swagger::{Specs, path_matches};

const RESOURCES_SPEC: &str =
    "specification/resources/resource-manager/Microsoft.Resources/stable/2024-03-01/resources.json";
const ACR_SPEC: &str = "specification/containerregistry/resource-manager/Microsoft.ContainerRegistry/stable/2023-07-01/containerregistry.json";
const NETWORK_SPEC: &str = "specification/network/resource-manager/Microsoft.Network/stable/2024-01-01/virtualNetwork.json";
const GROUP: &str = "/subscriptions/{s}/resourcegroups/{g}";
const NETWORKS: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/virtualNetworks";
const NETWORK: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/virtualNetworks/{n}";
const REGISTRIES: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ContainerRegistry/registries";
const REGISTRY: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ContainerRegistry/registries/{r}";
/// The token the server issues and expects.
pub const TOKEN: &str = "converge-test-token";

/// The OIDC token the fake GitHub Actions endpoint hands out.
pub const GITHUB_TOKEN: &str = "github-oidc-jwt";

#[derive(Default)]
struct State {
    grants: Vec<String>,
    github_audiences: Vec<String>,
    resources: BTreeMap<String, Value>,
    operations: BTreeMap<String, Value>,
    violations: Vec<String>,
    fail_next: Option<(String, String)>,
    throttle_every: usize,
    requests: usize,
    log: Vec<String>,
}

/// The server, on its own runtime thread until dropped.
pub struct AzureServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<Mutex<State>>,
    tokens: Arc<AtomicUsize>,
    _served: Served,
}

impl AzureServer {
    /// Starts it.
    pub fn start() -> AzureServer {
        let state = Arc::new(Mutex::new(State::default()));
        let tokens = Arc::new(AtomicUsize::new(0));
        let specs = Arc::new(Specs::load());
        // Operation URLs name the server itself; its address is known once it listens.
        let base_cell: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
        let (st, tk, b) = (state.clone(), tokens.clone(), base_cell.clone());
        let served = serve(move |req| {
            let (st, tk, b, specs) = (st.clone(), tk.clone(), b.clone(), specs.clone());
            async move {
                let auth = req
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let base = b.get().cloned().unwrap_or_default();
                let (status, headers, body) = handle(
                    &st,
                    &tk,
                    &specs,
                    &base,
                    &req.method,
                    &req.path,
                    &req.query,
                    &auth,
                    &req.body,
                );
                let mut r = Response::builder()
                    .status(status)
                    .header("content-type", "application/json");
                for (k, v) in headers {
                    r = r.header(k, v);
                }
                let text = if body.is_null() {
                    String::new()
                } else {
                    body.to_string()
                };
                r.body(Full::new(Bytes::from(text))).unwrap()
            }
        });
        let _ = base_cell.set(served.base.clone());
        AzureServer {
            base: served.base.clone(),
            state,
            tokens,
            _served: served,
        }
    }

    /// Environment for a converge process using this server: a service principal with a
    /// secret, the authority host and the ARM endpoint pointing here.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AZURE_TENANT_ID", "11111111-1111-1111-1111-111111111111"),
            ("AZURE_CLIENT_ID", "22222222-2222-2222-2222-222222222222"),
            ("AZURE_CLIENT_SECRET", "test-secret"),
            ("AZURE_AUTHORITY_HOST", self.base.as_str()),
            ("CONVERGE_AZURE_RESOURCE_MANAGER_URL", self.base.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// A stored resource by id (case-insensitive).
    pub fn resource(&self, id: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .resources
            .get(&id.to_ascii_lowercase())
            .cloned()
    }

    /// Ids of every stored resource.
    pub fn ids(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .resources
            .values()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect()
    }

    /// Changes a stored resource as the portal would (a JSON merge at the top level and in
    /// `properties`/`sku`).
    pub fn edit(&self, id: &str, patch: Value) {
        let mut st = self.state.lock().unwrap();
        let r = st
            .resources
            .get_mut(&id.to_ascii_lowercase())
            .expect("resource exists");
        merge(r, &patch);
    }

    /// Deletes a stored resource out of band.
    pub fn remove(&self, id: &str) {
        self.state
            .lock()
            .unwrap()
            .resources
            .remove(&id.to_ascii_lowercase());
    }

    /// Makes the next long-running operation end `Failed` with this code and message.
    pub fn fail_next_operation(&self, code: &str, message: &str) {
        self.state.lock().unwrap().fail_next = Some((code.into(), message.into()));
    }

    /// Answers every `n`th ARM request with 429 and `Retry-After: 1` (0 turns it off).
    pub fn throttle_every(&self, n: usize) {
        self.state.lock().unwrap().throttle_every = n;
    }

    /// Request bodies the specification rejected (a test expects none).
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    /// `METHOD path` of every ARM request, in order.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// How each issued token was asked for: `client_secret` or `client_assertion`.
    pub fn grants(&self) -> Vec<String> {
        self.state.lock().unwrap().grants.clone()
    }

    /// Audiences GitHub OIDC tokens were requested for.
    pub fn github_audiences(&self) -> Vec<String> {
        self.state.lock().unwrap().github_audiences.clone()
    }

    /// Environment of a GitHub Actions job with `id-token: write` and no secret at all.
    pub fn github_actions_env(&self) -> Vec<(String, String)> {
        [
            (
                "AZURE_TENANT_ID",
                "11111111-1111-1111-1111-111111111111".to_string(),
            ),
            (
                "AZURE_CLIENT_ID",
                "22222222-2222-2222-2222-222222222222".to_string(),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                format!("{}/github/token?api-version=2.0", self.base),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                "gh-request-token".to_string(),
            ),
            ("AZURE_AUTHORITY_HOST", self.base.clone()),
            ("CONVERGE_AZURE_RESOURCE_MANAGER_URL", self.base.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Tokens issued.
    pub fn tokens_issued(&self) -> usize {
        self.tokens.load(Ordering::SeqCst)
    }
}

fn percent_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(&v.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn merge(target: &mut Value, patch: &Value) {
    if let (Value::Object(t), Value::Object(p)) = (target, patch) {
        for (k, v) in p {
            match (t.get_mut(k), v) {
                (Some(existing @ Value::Object(_)), Value::Object(_)) if k != "tags" => {
                    merge(existing, v)
                }
                _ => {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

fn error(
    status: StatusCode,
    code: &str,
    message: &str,
) -> (StatusCode, Vec<(String, String)>, Value) {
    (
        status,
        vec![],
        json!({"error": {"code": code, "message": message}}),
    )
}

#[allow(clippy::too_many_arguments)]
fn handle(
    st: &Mutex<State>,
    tokens: &AtomicUsize,
    specs: &Specs,
    base: &str,
    method: &Method,
    path: &str,
    query: &str,
    auth: &str,
    body: &[u8],
) -> (StatusCode, Vec<(String, String)>, Value) {
    if path == "/github/token" && method == Method::GET {
        let mut s = st.lock().unwrap();
        let audience = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("audience="))
            .map(percent_decode)
            .unwrap_or_default();
        s.github_audiences.push(audience);
        if auth != "Bearer gh-request-token" {
            return error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "bad ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            );
        }
        return (
            StatusCode::OK,
            vec![],
            json!({"count": 1, "value": GITHUB_TOKEN}),
        );
    }
    if path.ends_with("/oauth2/v2.0/token") && method == Method::POST {
        let form = String::from_utf8_lossy(body).to_string();
        let field = |k: &str| {
            form.split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .map(percent_decode)
        };
        let grant = if field("client_secret").as_deref() == Some("test-secret") {
            "client_secret"
        } else if field("client_assertion").as_deref() == Some(GITHUB_TOKEN) {
            "client_assertion"
        } else {
            return (
                StatusCode::UNAUTHORIZED,
                vec![],
                json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret or assertion provided."}),
            );
        };
        st.lock().unwrap().grants.push(grant.to_string());
        tokens.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::OK,
            vec![],
            json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": TOKEN}),
        );
    }
    let mut s = st.lock().unwrap();
    s.requests += 1;
    s.log.push(format!("{method} {path}"));
    if auth != format!("Bearer {TOKEN}") {
        return error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "missing or wrong bearer token",
        );
    }
    if s.throttle_every > 0 && s.requests.is_multiple_of(s.throttle_every) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("Retry-After".into(), "1".into())],
            json!({"error": {"code": "TooManyRequests", "message": "throttled by the test server"}}),
        );
    }
    if let Some(op) = path.strip_prefix("/operations/") {
        return match s.operations.get(op) {
            Some(status) => (StatusCode::OK, vec![], status.clone()),
            None => error(StatusCode::NOT_FOUND, "NotFound", "no such operation"),
        };
    }
    if path.starts_with("/operationresults/") {
        return (StatusCode::OK, vec![], Value::Null);
    }
    let api_version = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="))
        .unwrap_or("");
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContent",
                    &e.to_string(),
                );
            }
        }
    };
    let key = path.to_ascii_lowercase();
    let (spec, kind) = if path_matches(GROUP, path) {
        (RESOURCES_SPEC, "group")
    } else if path_matches(REGISTRY, path) {
        (ACR_SPEC, "registry")
    } else if path_matches(REGISTRIES, path) {
        (ACR_SPEC, "registries")
    } else if path_matches(NETWORK, path) {
        (NETWORK_SPEC, "network")
    } else if path_matches(NETWORKS, path) {
        (NETWORK_SPEC, "registries")
    } else {
        return error(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            &format!("no route for {path}"),
        );
    };
    let wanted = match spec {
        RESOURCES_SPEC => ["2021-04-01", "2024-03-01"],
        NETWORK_SPEC => ["2024-03-01", "2024-01-01"],
        _ => ["2023-07-01", "2023-07-01"],
    };
    if !wanted.contains(&api_version) {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            &format!("api-version `{api_version}` is not supported here"),
        );
    }
    if matches!(*method, Method::PUT | Method::PATCH)
        && let Err(errors) = specs.validate_body(spec, method.as_str(), path, &body)
    {
        let text = format!("{method} {path}: {}", errors.join("; "));
        s.violations.push(text.clone());
        return error(StatusCode::BAD_REQUEST, "InvalidRequestContent", &text);
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let group_key = format!(
        "/subscriptions/{}/resourcegroups/{}",
        segments[1], segments[3]
    )
    .to_ascii_lowercase();
    match (kind, method.clone()) {
        ("group", Method::GET) | ("registry", Method::GET) | ("network", Method::GET) => {
            match s.resources.get(&key) {
                Some(r) => (StatusCode::OK, vec![], r.clone()),
                None if kind == "group" => error(
                    StatusCode::NOT_FOUND,
                    "ResourceGroupNotFound",
                    &format!("Resource group '{}' could not be found.", segments[3]),
                ),
                None => error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    &format!("The Resource '{path}' was not found."),
                ),
            }
        }
        ("registries", Method::GET) => {
            let prefix = format!("{key}/");
            let value: Vec<Value> = s
                .resources
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(_, v)| v.clone())
                .collect();
            (StatusCode::OK, vec![], json!({ "value": value }))
        }
        ("group", Method::PUT) => {
            let existed = s.resources.contains_key(&key);
            let r = json!({
                "id": format!("/subscriptions/{}/resourceGroups/{}", segments[1], segments[3]),
                "name": segments[3], "type": "Microsoft.Resources/resourceGroups",
                "location": body["location"], "tags": body.get("tags").cloned().unwrap_or(json!({})),
                "properties": {"provisioningState": "Succeeded"},
            });
            s.resources.insert(key, r.clone());
            (
                if existed {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                },
                vec![],
                r,
            )
        }
        ("registry", Method::PUT) => {
            if !s.resources.contains_key(&group_key) {
                return error(
                    StatusCode::NOT_FOUND,
                    "ResourceGroupNotFound",
                    &format!("Resource group '{}' could not be found.", segments[3]),
                );
            }
            let existed = s.resources.contains_key(&key);
            let name = segments[7];
            let sku = body["sku"]["name"].clone();
            let mut r = json!({
                "id": path, "name": name, "type": "Microsoft.ContainerRegistry/registries",
                "location": body["location"], "tags": body.get("tags").cloned().unwrap_or(json!({})),
                "sku": {"name": sku, "tier": sku},
                "properties": {
                    "loginServer": format!("{}.azurecr.io", name.to_ascii_lowercase()),
                    "adminUserEnabled": body["properties"]["adminUserEnabled"].as_bool().unwrap_or(false),
                    "publicNetworkAccess": body["properties"]["publicNetworkAccess"].as_str().unwrap_or("Enabled"),
                    "provisioningState": "Creating",
                },
            });
            let op = uuid::Uuid::new_v4().to_string();
            let outcome = match s.fail_next.take() {
                Some((code, message)) => {
                    json!({"id": op, "status": "Failed", "error": {"code": code, "message": message}})
                }
                None => {
                    let mut done = r.clone();
                    done["properties"]["provisioningState"] = json!("Succeeded");
                    s.resources.insert(key, done);
                    json!({"id": op, "status": "Succeeded"})
                }
            };
            s.operations.insert(op.clone(), outcome);
            r["properties"]["provisioningState"] =
                json!(if existed { "Updating" } else { "Creating" });
            (
                if existed {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                },
                vec![
                    (
                        "Azure-AsyncOperation".into(),
                        format!("{base}/operations/{op}"),
                    ),
                    ("Retry-After".into(), "0".into()),
                ],
                r,
            )
        }
        ("registry", Method::PATCH) => {
            let Some(r) = s.resources.get_mut(&key) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    &format!("The Resource '{path}' was not found."),
                );
            };
            if let Some(tags) = body.get("tags") {
                r["tags"] = tags.clone();
            }
            if let Some(sku) = body["sku"]["name"].as_str() {
                r["sku"] = json!({"name": sku, "tier": sku});
            }
            if let Some(props) = body.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    r["properties"][k] = v.clone();
                }
            }
            (StatusCode::OK, vec![], r.clone())
        }
        ("network", Method::PUT) => {
            if !s.resources.contains_key(&group_key) {
                return error(
                    StatusCode::NOT_FOUND,
                    "ResourceGroupNotFound",
                    &format!("Resource group '{}' could not be found.", segments[3]),
                );
            }
            let existed = s.resources.contains_key(&key);
            let subnets: Vec<Value> = body["properties"]["subnets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|sn| {
                    json!({
                        "id": format!("{path}/subnets/{}", sn["name"].as_str().unwrap_or("")),
                        "name": sn["name"],
                        "type": "Microsoft.Network/virtualNetworks/subnets",
                        "properties": {"addressPrefix": sn["properties"]["addressPrefix"], "provisioningState": "Succeeded"},
                    })
                })
                .collect();
            let r = json!({
                "id": path, "name": segments[7], "type": "Microsoft.Network/virtualNetworks",
                "location": body["location"], "tags": body.get("tags").cloned().unwrap_or(json!({})),
                "properties": {
                    "addressSpace": body["properties"]["addressSpace"],
                    "subnets": subnets,
                    "provisioningState": "Succeeded",
                },
            });
            s.resources.insert(key, r.clone());
            let op = uuid::Uuid::new_v4().to_string();
            s.operations
                .insert(op.clone(), json!({"id": op, "status": "Succeeded"}));
            let mut answer = r;
            answer["properties"]["provisioningState"] = json!("Updating");
            (
                if existed {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                },
                vec![
                    (
                        "Azure-AsyncOperation".into(),
                        format!("{base}/operations/{op}"),
                    ),
                    ("Retry-After".into(), "0".into()),
                ],
                answer,
            )
        }
        ("registry", Method::DELETE) | ("group", Method::DELETE) | ("network", Method::DELETE) => {
            if s.resources.remove(&key).is_none() {
                return (
                    if kind == "group" {
                        StatusCode::NOT_FOUND
                    } else {
                        StatusCode::NO_CONTENT
                    },
                    vec![],
                    Value::Null,
                );
            }
            if kind == "group" {
                let prefix = format!("{key}/");
                s.resources.retain(|k, _| !k.starts_with(&prefix));
            }
            let op = uuid::Uuid::new_v4();
            (
                StatusCode::ACCEPTED,
                vec![
                    ("Location".into(), format!("{base}/operationresults/{op}")),
                    ("Retry-After".into(), "0".into()),
                ],
                Value::Null,
            )
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("{method} {path}"),
        ),
    }
}
