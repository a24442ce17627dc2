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
const NIC_SPEC: &str = "specification/network/resource-manager/Microsoft.Network/stable/2024-01-01/networkInterface.json";
const VM_SPEC: &str = "specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-03-01/virtualMachine.json";
const PIP_SPEC: &str = "specification/network/resource-manager/Microsoft.Network/stable/2024-01-01/publicIpAddress.json";
const NSG_SPEC: &str = "specification/network/resource-manager/Microsoft.Network/stable/2024-01-01/networkSecurityGroup.json";
const NIC: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/networkInterfaces/{n}";
const PIP: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/publicIPAddresses/{n}";
const NSG: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/networkSecurityGroups/{n}";
const VM: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Compute/virtualMachines/{vm}";
const GROUP: &str = "/subscriptions/{s}/resourcegroups/{g}";
const NETWORKS: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/virtualNetworks";
const NETWORK: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Network/virtualNetworks/{n}";
const REGISTRIES: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ContainerRegistry/registries";
const REGISTRY: &str =
    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ContainerRegistry/registries/{r}";
const COST_QUERY: &str = "/subscriptions/{s}/providers/Microsoft.CostManagement/query";
/// The token the server issues and expects.
pub const TOKEN: &str = "converge-test-token";

/// The OIDC token the fake GitHub Actions endpoint hands out.
pub const GITHUB_TOKEN: &str = "github-oidc-jwt";

/// The access token the IMDS stand-in gives a VM's managed identity.
pub const VM_IDENTITY_TOKEN: &str = "vm-managed-identity-token";

/// The ACR refresh token `/oauth2/exchange` gives for [`VM_IDENTITY_TOKEN`]; a registry that
/// stands in for ACR lets `00000000-0000-0000-0000-000000000000` in with it.
pub const ACR_REFRESH_TOKEN: &str = "acr-refresh-token-for-the-vm";

/// Built-in roles the server knows: name → role definition GUID (Azure's own ids).
pub const ROLES: &[(&str, &str)] = &[
    ("AcrPush", "8311e382-0749-4cb8-b61a-304f252e45ec"),
    ("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d"),
    ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
];

/// Status, headers and JSON body of an answer.
type Answer = (StatusCode, Vec<(String, String)>, Value);

fn csdl() -> &'static super::csdl::Csdl {
    static CSDL: OnceLock<super::csdl::Csdl> = OnceLock::new();
    CSDL.get_or_init(super::csdl::Csdl::load)
}

#[derive(Default)]
struct State {
    applications: BTreeMap<String, Value>,
    service_principals: BTreeMap<String, Value>,
    credentials: BTreeMap<String, Vec<Value>>,
    grants: Vec<String>,
    github_audiences: Vec<String>,
    acr_exchanges: Vec<String>,
    resources: BTreeMap<String, Value>,
    operations: BTreeMap<String, Value>,
    violations: Vec<String>,
    fail_next: Option<(String, String)>,
    throttle_every: usize,
    requests: usize,
    log: Vec<String>,
    /// When each ARM request arrived, beside `log`.
    arrived: Vec<std::time::Instant>,
    /// Indexes into `log` of the requests answered 429.
    throttled: Vec<usize>,
    /// Cost Management rows: [cost, yyyymmdd, tag value].
    cost_rows: Vec<(f64, i64, String)>,
    cost_queries: Vec<Value>,
}

/// The server, on its own runtime thread until dropped.
pub struct AzureServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The same server over plain HTTP (`http://127.0.0.1:PORT`), for a host's curl.
    pub plain: String,
    state: Arc<Mutex<State>>,
    tokens: Arc<AtomicUsize>,
    _served: (Served, Served),
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
        let handler = Arc::new(move |req: super::serve::Request| {
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
        // converge reaches it over HTTPS (azure_identity refuses another authority); a host's
        // curl (its instance metadata service, the ACR exchange) over plain HTTP.
        let h = handler.clone();
        let served = super::serve::serve_tls(move |req| h(req));
        let plain = serve(move |req| handler(req));
        let _ = base_cell.set(served.base.clone());
        AzureServer {
            base: served.base.clone(),
            plain: plain.base.clone(),
            state,
            tokens,
            _served: (served, plain),
        }
    }

    /// The daily cost rows the Cost Management query API answers with (USD, `20261122`,
    /// `converge:address` tag value), two rows per page.
    pub fn set_cost_rows(&self, rows: Vec<(f64, i64, String)>) {
        self.state.lock().unwrap().cost_rows = rows;
    }

    /// Every Cost Management query body received (pages included).
    pub fn cost_queries(&self) -> Vec<Value> {
        self.state.lock().unwrap().cost_queries.clone()
    }

    /// The `service` of each ACR token exchange, in order.
    pub fn acr_exchanges(&self) -> Vec<String> {
        self.state.lock().unwrap().acr_exchanges.clone()
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
            ("CONVERGE_AZURE_GRAPH_URL", self.base.as_str()),
            (
                "SSL_CERT_FILE",
                &super::tls::ca().ca_file.display().to_string(),
            ),
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

    /// Role assignments stored (each as ARM returns it).
    pub fn role_assignments(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .resources
            .values()
            .filter(|r| r["type"] == "Microsoft.Authorization/roleAssignments")
            .cloned()
            .collect()
    }

    /// Applications stored in Graph.
    pub fn applications(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .applications
            .values()
            .cloned()
            .collect()
    }

    /// Federated credentials of an application (by object id).
    pub fn credentials(&self, app: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .credentials
            .get(app)
            .cloned()
            .unwrap_or_default()
    }

    /// Deletes a role assignment out of band.
    pub fn remove_role_assignment(&self, id: &str) {
        self.remove(id);
    }

    /// Deletes a federated credential out of band.
    pub fn remove_credential(&self, app: &str, name: &str) {
        if let Some(list) = self.state.lock().unwrap().credentials.get_mut(app) {
            list.retain(|c| c["name"] != name);
        }
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

    /// For each request answered 429: the request and how long the client waited before it
    /// sent the same request again (`None` when it never did).
    pub fn throttle_retries(&self) -> Vec<(String, Option<std::time::Duration>)> {
        let s = self.state.lock().unwrap();
        s.throttled
            .iter()
            .map(|&i| {
                let again = (i + 1..s.log.len()).find(|&j| s.log[j] == s.log[i]);
                (s.log[i].clone(), again.map(|j| s.arrived[j] - s.arrived[i]))
            })
            .collect()
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
            ("CONVERGE_AZURE_GRAPH_URL", self.base.clone()),
            (
                "SSL_CERT_FILE",
                super::tls::ca().ca_file.display().to_string(),
            ),
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

fn error(status: StatusCode, code: &str, message: &str) -> Answer {
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
) -> Answer {
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
    // The instance metadata service as a VM's managed identity sees it (what a host asks
    // before it exchanges the token at its registry).
    if path == "/metadata/identity/oauth2/token" && method == Method::GET {
        return (
            StatusCode::OK,
            vec![],
            json!({"token_type": "Bearer", "expires_in": "3599", "resource": "https://management.azure.com/", "access_token": VM_IDENTITY_TOKEN}),
        );
    }
    // ACR's token exchange (POST /oauth2/exchange, grant_type=access_token): an AAD access
    // token for a refresh token that `docker login` takes as the password.
    if path == "/oauth2/exchange" && method == Method::POST {
        let form = String::from_utf8_lossy(body).to_string();
        let field = |k: &str| {
            form.split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .map(percent_decode)
        };
        if field("grant_type").as_deref() != Some("access_token")
            || field("access_token").as_deref() != Some(VM_IDENTITY_TOKEN)
            || field("service").is_none_or(|s| s.is_empty())
        {
            return (
                StatusCode::UNAUTHORIZED,
                vec![],
                json!({"errors": [{"code": "UNAUTHORIZED", "message": "bad exchange request"}]}),
            );
        }
        st.lock()
            .unwrap()
            .acr_exchanges
            .push(field("service").unwrap_or_default());
        return (
            StatusCode::OK,
            vec![],
            json!({"refresh_token": ACR_REFRESH_TOKEN}),
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
    s.arrived.push(std::time::Instant::now());
    if auth != format!("Bearer {TOKEN}") {
        return error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "missing or wrong bearer token",
        );
    }
    if s.throttle_every > 0 && s.requests.is_multiple_of(s.throttle_every) {
        let index = s.log.len() - 1;
        s.throttled.push(index);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("Retry-After".into(), "1".into())],
            json!({"error": {"code": "TooManyRequests", "message": "throttled by the test server"}}),
        );
    }
    if let Some(graph_path) = path.strip_prefix("/v1.0/") {
        return graph(&mut s, method, graph_path, query, body);
    }
    if path_matches(COST_QUERY, path) {
        return cost_query(&mut s, base, method, path, query, body);
    }
    if path.contains("/providers/Microsoft.Authorization/") {
        return authorization(&mut s, specs, method, path, query, body);
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
    } else if path_matches(NIC, path) {
        (NIC_SPEC, "nic")
    } else if path_matches(PIP, path) {
        (PIP_SPEC, "pip")
    } else if path_matches(NSG, path) {
        (NSG_SPEC, "nsg")
    } else if path_matches(VM, path) {
        (VM_SPEC, "vm")
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
        NETWORK_SPEC | NIC_SPEC | PIP_SPEC | NSG_SPEC => ["2024-03-01", "2024-01-01"],
        VM_SPEC => ["2024-07-01", "2024-03-01"],
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
        ("pip", Method::PUT) | ("nsg", Method::PUT) => {
            network_part(&mut s, base, kind, path, &key, &group_key, &segments, &body)
        }
        ("nic", Method::PUT) | ("vm", Method::PUT) | ("vm", Method::PATCH) => vm_or_nic(
            &mut s, base, kind, method, path, &key, &group_key, &segments, &body,
        ),
        ("group", Method::GET)
        | ("registry", Method::GET)
        | ("network", Method::GET)
        | ("nic", Method::GET)
        | ("pip", Method::GET)
        | ("nsg", Method::GET)
        | ("vm", Method::GET) => match s.resources.get(&key) {
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
        },
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
        ("registry", Method::DELETE)
        | ("group", Method::DELETE)
        | ("network", Method::DELETE)
        | ("nic", Method::DELETE)
        | ("pip", Method::DELETE)
        | ("nsg", Method::DELETE)
        | ("vm", Method::DELETE) => {
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

fn graph(s: &mut State, method: &Method, path: &str, query: &str, body: &[u8]) -> Answer {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let parts: Vec<&str> = path.split('/').collect();
    let check = |s: &mut State, entity: &str, required: bool| -> Option<Answer> {
        let problems = csdl().check(entity, &body, required);
        if problems.is_empty() {
            return None;
        }
        let text = format!("{method} /v1.0/{path}: {}", problems.join("; "));
        s.violations.push(text.clone());
        Some(error(StatusCode::BAD_REQUEST, "Request_BadRequest", &text))
    };
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{path}' does not exist."),
        )
    };
    match (method.clone(), parts.as_slice()) {
        (Method::POST, ["applications"]) => {
            if let Some(bad) = check(s, "application", false) {
                return bad;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let app = json!({"id": id, "appId": uuid::Uuid::new_v4().to_string(), "displayName": body["displayName"]});
            s.applications.insert(id, app.clone());
            (StatusCode::CREATED, vec![], app)
        }
        (Method::GET, ["applications", id]) => match s.applications.get(*id) {
            Some(a) => (StatusCode::OK, vec![], a.clone()),
            None => not_found(),
        },
        (Method::PATCH, ["applications", id]) => {
            if let Some(bad) = check(s, "application", false) {
                return bad;
            }
            match s.applications.get_mut(*id) {
                Some(a) => {
                    if let Some(name) = body.get("displayName") {
                        a["displayName"] = name.clone();
                    }
                    (StatusCode::NO_CONTENT, vec![], Value::Null)
                }
                None => not_found(),
            }
        }
        (Method::DELETE, ["applications", id]) => {
            if s.applications.remove(*id).is_none() {
                return not_found();
            }
            s.credentials.remove(*id);
            (StatusCode::NO_CONTENT, vec![], Value::Null)
        }
        (Method::POST, ["applications", id, "federatedIdentityCredentials"]) => {
            if let Some(bad) = check(s, "federatedIdentityCredential", true) {
                return bad;
            }
            if !s.applications.contains_key(*id) {
                return not_found();
            }
            let mut c = body.clone();
            c["id"] = json!(uuid::Uuid::new_v4().to_string());
            s.credentials
                .entry(id.to_string())
                .or_default()
                .push(c.clone());
            (StatusCode::CREATED, vec![], c)
        }
        (Method::GET, ["applications", id, "federatedIdentityCredentials"]) => {
            if !s.applications.contains_key(*id) {
                return not_found();
            }
            let list = s.credentials.get(*id).cloned().unwrap_or_default();
            (StatusCode::OK, vec![], json!({"value": list}))
        }
        (Method::DELETE, ["applications", id, "federatedIdentityCredentials", cid]) => {
            let list = s.credentials.entry(id.to_string()).or_default();
            let before = list.len();
            list.retain(|c| c["id"] != *cid);
            if list.len() == before {
                not_found()
            } else {
                (StatusCode::NO_CONTENT, vec![], Value::Null)
            }
        }
        (Method::POST, ["servicePrincipals"]) => {
            if let Some(bad) = check(s, "servicePrincipal", false) {
                return bad;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let sp = json!({"id": id, "appId": body["appId"]});
            s.service_principals.insert(id, sp.clone());
            (StatusCode::CREATED, vec![], sp)
        }
        (Method::GET, ["servicePrincipals"]) => {
            let filter = percent_decode(
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("$filter="))
                    .unwrap_or(""),
            );
            let app_id = filter.split('\'').nth(1).unwrap_or("").to_string();
            let found: Vec<Value> = s
                .service_principals
                .values()
                .filter(|sp| sp["appId"] == app_id.as_str())
                .cloned()
                .collect();
            (StatusCode::OK, vec![], json!({"value": found}))
        }
        (Method::DELETE, ["servicePrincipals", id]) => {
            if s.service_principals.remove(*id).is_none() {
                not_found()
            } else {
                (StatusCode::NO_CONTENT, vec![], Value::Null)
            }
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("no Graph route for {method} /v1.0/{path}"),
        ),
    }
}

fn authorization(
    s: &mut State,
    specs: &Specs,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Answer {
    const SPEC: &str = "specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/authorization-RoleAssignmentsCalls.json";
    let api_version = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="))
        .unwrap_or("");
    if api_version != "2022-04-01" {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            &format!("api-version `{api_version}` is not supported here"),
        );
    }
    let filter = percent_decode(
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("$filter="))
            .unwrap_or(""),
    );
    let quoted = filter.split('\'').nth(1).unwrap_or("").to_string();
    let subscription = path.split('/').nth(2).unwrap_or("");
    let (scope, rest) = path
        .split_once("/providers/Microsoft.Authorization/")
        .unwrap();
    let definition_id = |guid: &str| {
        format!(
            "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        )
    };
    let definition = |name: &str, guid: &str| {
        json!({
            "id": definition_id(guid), "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {"roleName": name, "type": "BuiltInRole"},
        })
    };
    match (
        method.clone(),
        rest.split('/').collect::<Vec<_>>().as_slice(),
    ) {
        (Method::GET, ["roleDefinitions"]) => {
            let found: Vec<Value> = ROLES
                .iter()
                .filter(|(n, _)| *n == quoted)
                .map(|(n, g)| definition(n, g))
                .collect();
            (StatusCode::OK, vec![], json!({"value": found}))
        }
        (Method::GET, ["roleDefinitions", guid]) => match ROLES.iter().find(|(_, g)| g == guid) {
            Some((n, g)) => (StatusCode::OK, vec![], definition(n, g)),
            None => error(
                StatusCode::NOT_FOUND,
                "RoleDefinitionDoesNotExist",
                "The specified role definition does not exist.",
            ),
        },
        (Method::GET, ["roleAssignments"]) => {
            let found: Vec<Value> = s
                .resources
                .values()
                .filter(|r| r["type"] == "Microsoft.Authorization/roleAssignments")
                .filter(|r| {
                    r["properties"]["scope"]
                        .as_str()
                        .is_some_and(|sc| sc.eq_ignore_ascii_case(scope))
                })
                .filter(|r| quoted.is_empty() || r["properties"]["principalId"] == quoted.as_str())
                .cloned()
                .collect();
            (StatusCode::OK, vec![], json!({"value": found}))
        }
        (Method::PUT, ["roleAssignments", name]) => {
            let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            if let Err(errors) = specs.validate_body(SPEC, "PUT", path, &body) {
                let text = format!("PUT {path}: {}", errors.join("; "));
                s.violations.push(text.clone());
                return error(StatusCode::BAD_REQUEST, "InvalidRequestContent", &text);
            }
            let props = &body["properties"];
            let duplicate = s.resources.values().any(|r| {
                r["type"] == "Microsoft.Authorization/roleAssignments"
                    && r["name"] != *name
                    && r["properties"]["scope"]
                        .as_str()
                        .is_some_and(|sc| sc.eq_ignore_ascii_case(scope))
                    && r["properties"]["roleDefinitionId"] == props["roleDefinitionId"]
                    && r["properties"]["principalId"] == props["principalId"]
            });
            if duplicate {
                return error(
                    StatusCode::CONFLICT,
                    "RoleAssignmentExists",
                    "The role assignment already exists.",
                );
            }
            let r = json!({
                "id": path, "name": name, "type": "Microsoft.Authorization/roleAssignments",
                "properties": {
                    "roleDefinitionId": props["roleDefinitionId"], "principalId": props["principalId"],
                    "principalType": props["principalType"], "scope": scope,
                },
            });
            s.resources.insert(path.to_ascii_lowercase(), r.clone());
            (StatusCode::CREATED, vec![], r)
        }
        (Method::DELETE, ["roleAssignments", _]) => {
            match s.resources.remove(&path.to_ascii_lowercase()) {
                Some(r) => (StatusCode::OK, vec![], r),
                None => (StatusCode::NO_CONTENT, vec![], Value::Null),
            }
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &format!("no authorization route for {method} {path}"),
        ),
    }
}

/// Stores `r` at `key` and answers as ARM's long-running PUT: 201 (200 when it `existed`) with an
/// `Azure-AsyncOperation` that has already succeeded.
fn stored(s: &mut State, base: &str, key: &str, existed: bool, r: Value) -> Answer {
    s.resources.insert(key.to_string(), r.clone());
    let op = uuid::Uuid::new_v4().to_string();
    s.operations
        .insert(op.clone(), json!({"id": op, "status": "Succeeded"}));
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

/// PUT of a public IP address (a Standard static one gets an address at once) or a network
/// security group (its rules get ids), answered as ARM's long-running PUT.
#[allow(clippy::too_many_arguments)]
fn network_part(
    s: &mut State,
    base: &str,
    kind: &str,
    path: &str,
    key: &str,
    group_key: &str,
    segments: &[&str],
    body: &Value,
) -> Answer {
    if !s.resources.contains_key(group_key) {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            &format!("Resource group '{}' could not be found.", segments[3]),
        );
    }
    let existed = s.resources.contains_key(key);
    let mut r = body.clone();
    r["id"] = json!(path);
    r["name"] = json!(segments[7]);
    r["properties"]["provisioningState"] = json!("Succeeded");
    if kind == "pip" {
        r["type"] = json!("Microsoft.Network/publicIPAddresses");
        let address = match s.resources.get(key) {
            Some(old) => old["properties"]["ipAddress"].clone(),
            None => {
                let n = s
                    .resources
                    .values()
                    .filter(|r| r["type"] == "Microsoft.Network/publicIPAddresses")
                    .count();
                json!(format!("203.0.113.{}", 10 + n))
            }
        };
        r["properties"]["ipAddress"] = address;
    } else {
        r["type"] = json!("Microsoft.Network/networkSecurityGroups");
        if let Some(rules) = r["properties"]["securityRules"].as_array_mut() {
            for rule in rules {
                let name = rule["name"].as_str().unwrap_or("rule").to_string();
                rule["id"] = json!(format!("{path}/securityRules/{name}"));
                rule["properties"]["provisioningState"] = json!("Succeeded");
            }
        }
    }
    stored(s, base, key, existed, r)
}

/// PUT of a network interface or VM, PATCH of a VM: stored as Azure shows them, answered 201/200
/// with an `Azure-AsyncOperation` to poll.
#[allow(clippy::too_many_arguments)]
fn vm_or_nic(
    s: &mut State,
    base: &str,
    kind: &str,
    method: &Method,
    path: &str,
    key: &str,
    group_key: &str,
    segments: &[&str],
    body: &Value,
) -> Answer {
    if !s.resources.contains_key(group_key) {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            &format!("Resource group '{}' could not be found.", segments[3]),
        );
    }
    let existed = s.resources.contains_key(key);
    let r = match (kind, method.clone()) {
        ("nic", _) => {
            let n = s
                .resources
                .values()
                .filter(|r| r["type"] == "Microsoft.Network/networkInterfaces")
                .count();
            let mut cfg = body["properties"]["ipConfigurations"][0].clone();
            cfg["properties"]["privateIPAddress"] = json!(format!("10.10.1.{}", 4 + n));
            cfg["id"] = json!(format!(
                "{path}/ipConfigurations/{}",
                cfg["name"].as_str().unwrap_or("ipconfig1")
            ));
            for (field, what) in [
                (
                    &cfg["properties"]["publicIPAddress"]["id"],
                    "public IP address",
                ),
                (
                    &body["properties"]["networkSecurityGroup"]["id"],
                    "network security group",
                ),
            ] {
                if let Some(id) = field.as_str()
                    && !s.resources.contains_key(&id.to_ascii_lowercase())
                {
                    return error(
                        StatusCode::NOT_FOUND,
                        "InvalidResourceReference",
                        &format!(
                            "The {what} {id} referenced by the network interface was not found."
                        ),
                    );
                }
            }
            let mut nic = json!({
                "id": path, "name": segments[7], "type": "Microsoft.Network/networkInterfaces",
                "location": body["location"], "tags": body.get("tags").cloned().unwrap_or(json!({})),
                "properties": {"ipConfigurations": [cfg], "provisioningState": "Succeeded"},
            });
            if !body["properties"]["networkSecurityGroup"].is_null() {
                nic["properties"]["networkSecurityGroup"] =
                    body["properties"]["networkSecurityGroup"].clone();
            }
            nic
        }
        ("vm", Method::PUT) => {
            let nic = body["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
                .as_str()
                .unwrap_or("");
            if !s.resources.contains_key(&nic.to_ascii_lowercase()) {
                return error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("Resource {nic} not found."),
                );
            }
            let mut r = body.clone();
            r["id"] = json!(path);
            r["name"] = json!(segments[7]);
            r["type"] = json!("Microsoft.Compute/virtualMachines");
            r["properties"]["provisioningState"] = json!("Succeeded");
            r["properties"]["vmId"] = json!(uuid::Uuid::new_v4().to_string());
            if body["identity"]["type"] == "SystemAssigned" {
                r["identity"]["principalId"] = json!(uuid::Uuid::new_v4().to_string());
                r["identity"]["tenantId"] = json!("11111111-1111-1111-1111-111111111111");
            }
            r
        }
        _ => {
            let Some(mut r) = s.resources.get(key).cloned() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    &format!("The Resource '{path}' was not found."),
                );
            };
            if let Some(tags) = body.get("tags") {
                r["tags"] = tags.clone();
            }
            if let Some(size) = body["properties"]["hardwareProfile"]["vmSize"].as_str() {
                r["properties"]["hardwareProfile"]["vmSize"] = json!(size);
            }
            match body["identity"]["type"].as_str() {
                Some("SystemAssigned") if r["identity"]["principalId"].is_null() => {
                    r["identity"] = json!({"type": "SystemAssigned", "principalId": uuid::Uuid::new_v4().to_string()});
                }
                Some("None") => {
                    r["identity"] = json!({"type": "None"});
                }
                _ => {}
            }
            r
        }
    };
    stored(s, base, key, existed, r)
}

/// Checks a Cost Management `QueryDefinition` (2023-03-01). The shared spec corpus has no
/// Cost Management file, so these are its rules written out: required `type`, `timeframe` and
/// `dataset`; the enums; `timePeriod.from`/`to` as date-times when `timeframe` is `Custom`;
/// aggregations with `name` and `function: Sum`; groupings of `type` Dimension or TagKey with a
/// `name`; a tag filter with `name`, `operator: In` and at least one value.
fn check_query_definition(q: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let mut one_of = |at: &str, v: &Value, allowed: &[&str]| {
        if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
            errors.push(format!("{at}: {v} is not one of {allowed:?}"));
        }
    };
    one_of(
        "type",
        &q["type"],
        &["Usage", "ActualCost", "AmortizedCost"],
    );
    one_of(
        "timeframe",
        &q["timeframe"],
        &[
            "MonthToDate",
            "BillingMonthToDate",
            "TheLastMonth",
            "TheLastBillingMonth",
            "WeekToDate",
            "Custom",
        ],
    );
    one_of(
        "dataset.granularity",
        &q["dataset"]["granularity"],
        &["Daily", "None"],
    );
    for (name, agg) in q["dataset"]["aggregation"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if !agg["name"].is_string() {
            errors.push(format!("dataset.aggregation.{name}.name is required"));
        }
        if agg["function"] != "Sum" {
            errors.push(format!("dataset.aggregation.{name}.function must be Sum"));
        }
    }
    for g in q["dataset"]["grouping"].as_array().into_iter().flatten() {
        if !matches!(g["type"].as_str(), Some("Dimension" | "TagKey")) || !g["name"].is_string() {
            errors.push(format!(
                "dataset.grouping: {g} needs type Dimension|TagKey and a name"
            ));
        }
    }
    let tags = &q["dataset"]["filter"]["tags"];
    if !tags.is_null()
        && (!tags["name"].is_string()
            || tags["operator"] != "In"
            || tags["values"].as_array().is_none_or(|v| v.is_empty()))
    {
        errors.push(format!(
            "dataset.filter.tags: {tags} needs name, operator In and values"
        ));
    }
    if q["timeframe"] == "Custom" {
        for k in ["from", "to"] {
            let v = q["timePeriod"][k].as_str().unwrap_or("");
            if chrono::DateTime::parse_from_rfc3339(v).is_err() {
                errors.push(format!("timePeriod.{k}: `{v}` is not a date-time"));
            }
        }
    }
    if let Some(extra) = q.as_object().and_then(|o| {
        o.keys()
            .find(|k| !["type", "timeframe", "timePeriod", "dataset"].contains(&k.as_str()))
    }) {
        errors.push(format!("unknown property `{extra}`"));
    }
    errors
}

fn cost_query(
    s: &mut State,
    base: &str,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Answer {
    if *method != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "POST only",
        );
    }
    if !query.split('&').any(|kv| kv == "api-version=2023-03-01") {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            "api-version 2023-03-01 expected",
        );
    }
    let q: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                &e.to_string(),
            );
        }
    };
    let errors = check_query_definition(&q);
    if !errors.is_empty() {
        let text = format!("POST {path}: {}", errors.join("; "));
        s.violations.push(text.clone());
        return error(StatusCode::BAD_REQUEST, "BadRequest", &text);
    }
    s.cost_queries.push(q.clone());
    let day = |k: &str| -> i64 {
        q["timePeriod"][k]
            .as_str()
            .unwrap_or("")
            .get(..10)
            .unwrap_or("")
            .replace('-', "")
            .parse()
            .unwrap_or(0)
    };
    let (from, to) = (day("from"), day("to"));
    let rows: Vec<Value> = s
        .cost_rows
        .iter()
        .filter(|(_, d, _)| *d >= from && *d <= to)
        .map(|(cost, d, tag)| json!([cost, d, "converge:address", tag, "USD"]))
        .collect();
    let skip: usize = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("$skiptoken="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = rows.iter().skip(skip).take(2).cloned().collect();
    let next = (skip + 2 < rows.len()).then(|| {
        format!(
            "{base}{path}?api-version=2023-03-01&$skiptoken={}",
            skip + 2
        )
    });
    (
        StatusCode::OK,
        vec![],
        json!({
            "id": format!("{path}/00000000-0000-0000-0000-000000000000"),
            "name": "00000000-0000-0000-0000-000000000000",
            "type": "Microsoft.CostManagement/query",
            "properties": {
                "nextLink": next,
                "columns": [
                    {"name": "Cost", "type": "Number"},
                    {"name": "UsageDate", "type": "Number"},
                    {"name": "TagKey", "type": "String"},
                    {"name": "TagValue", "type": "String"},
                    {"name": "Currency", "type": "String"}
                ],
                "rows": page
            }
        }),
    )
}
