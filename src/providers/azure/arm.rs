//! A small Azure Resource Manager client: PUT create-or-update, GET, PATCH, DELETE and list,
//! with long-running operations followed through `Azure-AsyncOperation` / `Location` until a
//! terminal status (a `Failed` or `Canceled` operation is an error with ARM's code and
//! message), 429 and 5xx retried honouring `Retry-After`, and a timeout on every request.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::{Method, StatusCode};
use serde_json::Value as Json;

use crate::providers::ProviderError;

/// Attempts per request on 429 and 5xx.
const ATTEMPTS: u32 = 8;
/// How long a long-running operation may take before converge gives up on it.
const LRO_LIMIT: Duration = Duration::from_secs(30 * 60);

/// An ARM endpoint with a credential.
pub struct Arm {
    http: reqwest::Client,
    endpoint: String,
    scope: String,
    credential: Arc<dyn TokenCredential>,
}

impl Arm {
    /// ARM at `endpoint` (public cloud: `https://management.azure.com`), tokens for `scope`.
    pub fn new(endpoint: &str, scope: &str, credential: Arc<dyn TokenCredential>) -> Arm {
        Arm {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            scope: scope.to_string(),
            credential,
        }
    }

    /// A bearer token for this endpoint's scope.
    pub async fn token(&self) -> Result<String, ProviderError> {
        let token = self
            .credential
            .get_token(&[self.scope.as_str()], None)
            .await
            .map_err(|e| ProviderError::Invalid(format!("Azure sign-in failed: {e}")))?;
        Ok(token.token.secret().to_string())
    }

    /// One request with retries; returns the status, headers and JSON body.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Json>,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Json), ProviderError> {
        let operation = format!("{method} {}", url.split('?').next().unwrap_or(url));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(self.token().await?);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await;
            let (status, headers, text) = match response {
                Ok(r) => {
                    let status = r.status();
                    let headers = r.headers().clone();
                    (status, headers, r.text().await.unwrap_or_default())
                }
                Err(e) if attempt < ATTEMPTS => {
                    tracing::debug!("{operation}: {e}; retrying");
                    tokio::time::sleep(backoff(attempt, None)).await;
                    continue;
                }
                Err(e) => return Err(api(&operation, format!("request failed: {e}"))),
            };
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                && attempt < ATTEMPTS
            {
                let wait = backoff(attempt, retry_after(&headers));
                tracing::debug!("{operation}: {status}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                continue;
            }
            let json: Json = if text.trim().is_empty() {
                Json::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Json::String(text))
            };
            return Ok((status, headers, json));
        }
    }

    fn url(&self, id: &str, api_version: &str) -> String {
        if api_version.is_empty() {
            format!("{}{id}", self.endpoint)
        } else if id.contains('?') {
            format!("{}{id}&api-version={api_version}", self.endpoint)
        } else {
            format!("{}{id}?api-version={api_version}", self.endpoint)
        }
    }

    /// POST a new object (Microsoft Graph creates); returns what was created.
    pub async fn post(&self, path: &str, body: &Json) -> Result<Json, ProviderError> {
        let what = format!("POST {path}");
        let (status, _, response) = self
            .send(Method::POST, &self.url(path, ""), Some(body))
            .await?;
        if !status.is_success() {
            return Err(arm_error(&what, status, &response));
        }
        Ok(response)
    }

    /// POST to a `nextLink` the API returned; refused unless it is on this endpoint, so the
    /// bearer token never goes elsewhere.
    pub async fn post_link(&self, link: &str, body: &Json) -> Result<Json, ProviderError> {
        if !link.starts_with(&format!("{}/", self.endpoint)) {
            return Err(ProviderError::Invalid(format!(
                "refusing to follow nextLink {link}: it is not on {}",
                self.endpoint
            )));
        }
        let what = format!("POST {}", link.split('?').next().unwrap_or(link));
        let (status, _, response) = self.send(Method::POST, link, Some(body)).await?;
        if !status.is_success() {
            return Err(arm_error(&what, status, &response));
        }
        Ok(response)
    }

    /// PUT or PATCH without a long-running operation (Graph, role assignments).
    pub async fn put_plain(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: &Json,
    ) -> Result<Json, ProviderError> {
        let what = format!("{method} {path}");
        let (status, _, response) = self
            .send(method, &self.url(path, api_version), Some(body))
            .await?;
        if !status.is_success() {
            return Err(arm_error(&what, status, &response));
        }
        Ok(response)
    }

    /// GET a resource: `None` on 404 (deleted out of band).
    pub async fn get(&self, id: &str, api_version: &str) -> Result<Option<Json>, ProviderError> {
        let (status, _, body) = self
            .send(Method::GET, &self.url(id, api_version), None)
            .await?;
        match status {
            s if s.is_success() => Ok(Some(body)),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(arm_error(&format!("GET {id}"), s, &body)),
        }
    }

    /// GET a collection, following `nextLink`.
    pub async fn list(&self, id: &str, api_version: &str) -> Result<Vec<Json>, ProviderError> {
        let mut out = Vec::new();
        let mut url = self.url(id, api_version);
        loop {
            let (status, _, body) = self.send(Method::GET, &url, None).await?;
            if status == StatusCode::NOT_FOUND {
                return Ok(out);
            }
            if !status.is_success() {
                return Err(arm_error(&format!("GET {id}"), status, &body));
            }
            out.extend(body["value"].as_array().cloned().unwrap_or_default());
            match body["nextLink"].as_str() {
                Some(next) if !next.is_empty() => url = next.to_string(),
                _ => return Ok(out),
            }
        }
    }

    /// PUT (create or update) or PATCH, then follow the operation to its end and GET the result.
    pub async fn write(
        &self,
        method: Method,
        id: &str,
        api_version: &str,
        body: &Json,
    ) -> Result<Json, ProviderError> {
        let what = format!("{method} {id}");
        let (status, headers, response) = self
            .send(method, &self.url(id, api_version), Some(body))
            .await?;
        if !status.is_success() {
            return Err(arm_error(&what, status, &response));
        }
        if let Some(op) = header(&headers, "azure-asyncoperation").or_else(|| {
            (status == StatusCode::ACCEPTED)
                .then(|| header(&headers, "location"))
                .flatten()
        }) {
            self.wait(&what, &op, retry_after(&headers)).await?;
        }
        match self.get(id, api_version).await? {
            Some(r) => Ok(r),
            None => Err(api(
                &what,
                "the resource is not there after the operation succeeded".into(),
            )),
        }
    }

    /// DELETE and wait until it is gone; deleting what is not there succeeds.
    pub async fn delete(&self, id: &str, api_version: &str) -> Result<(), ProviderError> {
        let what = format!("DELETE {id}");
        let (status, headers, body) = self
            .send(Method::DELETE, &self.url(id, api_version), None)
            .await?;
        match status {
            StatusCode::NOT_FOUND | StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            StatusCode::ACCEPTED => {
                if let Some(op) = header(&headers, "azure-asyncoperation")
                    .or_else(|| header(&headers, "location"))
                {
                    self.wait(&what, &op, retry_after(&headers)).await?;
                }
                Ok(())
            }
            s => Err(arm_error(&what, s, &body)),
        }
    }

    /// Polls an operation URL until Succeeded (Ok), Failed or Canceled (ARM's error).
    async fn wait(
        &self,
        what: &str,
        url: &str,
        first: Option<Duration>,
    ) -> Result<(), ProviderError> {
        let started = std::time::Instant::now();
        let mut pause = first.unwrap_or(Duration::from_secs(1));
        loop {
            tokio::time::sleep(pause.min(Duration::from_secs(30))).await;
            let (status, headers, body) = self.send(Method::GET, url, None).await?;
            if !status.is_success() && status != StatusCode::ACCEPTED {
                return Err(arm_error(what, status, &body));
            }
            match body["status"].as_str() {
                Some(s) if s.eq_ignore_ascii_case("Succeeded") => return Ok(()),
                Some(s)
                    if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") =>
                {
                    let code = body["error"]["code"].as_str().unwrap_or(s);
                    let message = body["error"]["message"].as_str().unwrap_or("no message");
                    return Err(api(what, format!("operation {s}: {code}: {message}")));
                }
                // A Location poll answers 200 with the final body (or nothing) when done.
                None if status == StatusCode::OK || status == StatusCode::NO_CONTENT => {
                    return Ok(());
                }
                _ => {}
            }
            if started.elapsed() > LRO_LIMIT {
                return Err(api(
                    what,
                    format!("operation still running after {LRO_LIMIT:?}"),
                ));
            }
            pause = retry_after(&headers).unwrap_or(Duration::from_secs(5));
        }
    }
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    header(headers, "retry-after")?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    retry_after.unwrap_or_else(|| {
        Duration::from_millis(200 * 2u64.pow(attempt.min(7))).min(Duration::from_secs(20))
    })
}

fn api(operation: &str, message: String) -> ProviderError {
    ProviderError::Api {
        operation: operation.to_string(),
        message,
    }
}

/// ARM's `{error: {code, message}}` as a provider error.
fn arm_error(operation: &str, status: StatusCode, body: &Json) -> ProviderError {
    let code = body["error"]["code"].as_str().unwrap_or("");
    let message = body["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string());
    api(operation, format!("{status}: {code}: {message}"))
}
