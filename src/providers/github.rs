//! The GitHub REST API calls `plan --comment` makes: find the pull request comment carrying a
//! marker (every page of comments), edit it in place, or create it.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, LINK, USER_AGENT};

/// A GitHub API call failed.
#[derive(Debug, thiserror::Error)]
#[error("GitHub API {operation}: {message}")]
pub struct GitHubError {
    /// e.g. `GET /repos/o/r/issues/7/comments`.
    pub operation: String,
    /// Status and message, or the transport error.
    pub message: String,
}

/// What was done with the comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentOutcome {
    /// A new comment (its id).
    Created(u64),
    /// The existing comment was edited (its id).
    Updated(u64),
}

/// A client for one repository.
pub struct GitHub {
    http: reqwest::Client,
    api: String,
    repository: String,
    token: String,
}

impl GitHub {
    /// `api` is `GITHUB_API_URL` (`https://api.github.com`, or Enterprise Server's
    /// `https://HOST/api/v3`); `repository` is `owner/name`.
    pub fn new(api: &str, repository: &str, token: &str) -> GitHub {
        GitHub {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            api: api.trim_end_matches('/').to_string(),
            repository: repository.to_string(),
            token: token.to_string(),
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header(USER_AGENT, concat!("converge/", env!("CARGO_PKG_VERSION")))
    }

    async fn send(
        &self,
        operation: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(serde_json::Value, Option<String>), GitHubError> {
        let fail = |message: String| GitHubError {
            operation: operation.to_string(),
            message,
        };
        let response = request.send().await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let next = response
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            let message = body["message"].as_str().unwrap_or("");
            return Err(fail(format!("HTTP {status} {message}")));
        }
        Ok((body, next))
    }

    /// Edits the comment on issue/PR `number` whose body contains `marker`, or creates one.
    pub async fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<CommentOutcome, GitHubError> {
        let list = format!("/repos/{}/issues/{number}/comments", self.repository);
        let mut url = Some(format!("{}{list}?per_page=100", self.api));
        let mut found = None;
        while let Some(page) = url.take() {
            let (comments, next) = self
                .send(
                    &format!("GET {list}"),
                    self.request(reqwest::Method::GET, &page),
                )
                .await?;
            found = comments.as_array().into_iter().flatten().find_map(|c| {
                c["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(marker))
                    .then(|| c["id"].as_u64())
                    .flatten()
            });
            if found.is_some() {
                break;
            }
            url = next;
        }
        let payload = serde_json::json!({ "body": body });
        match found {
            Some(id) => {
                let path = format!("/repos/{}/issues/comments/{id}", self.repository);
                self.send(
                    &format!("PATCH {path}"),
                    self.request(reqwest::Method::PATCH, &format!("{}{path}", self.api))
                        .json(&payload),
                )
                .await?;
                Ok(CommentOutcome::Updated(id))
            }
            None => {
                let (created, _) = self
                    .send(
                        &format!("POST {list}"),
                        self.request(reqwest::Method::POST, &format!("{}{list}", self.api))
                            .json(&payload),
                    )
                    .await?;
                Ok(CommentOutcome::Created(created["id"].as_u64().unwrap_or(0)))
            }
        }
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let h = r#"<https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=3>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=2")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="prev""#), None);
    }
}
