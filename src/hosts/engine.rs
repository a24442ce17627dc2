//! The Docker Engine API of a host, reached over the SSH session as `docker -H ssh://` reaches
//! it: `docker system dial-stdio` on the host carries one HTTP/1.1 exchange per call. Bodies
//! are JSON Docker reads itself, so what a container gets (environment, command, mounts) is
//! data, never text a shell on the host interprets; they travel over ssh's stdin, never on a
//! command line.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ssh::{Session, SshError};

/// The Engine API version converge speaks (Docker 20.10 and later).
pub const API_VERSION: &str = "v1.41";

/// Why an Engine API call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The session could not carry the call.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The exchange broke off or did not come back in time.
    #[error("the Docker Engine API on the host: {0}")]
    Transport(String),
    /// Docker answered with an error.
    #[error("Docker answered {status} to {call}: {message}")]
    Status {
        /// The call (`POST /containers/create`).
        call: String,
        /// HTTP status.
        status: u16,
        /// Docker's message.
        message: String,
    },
}

/// An answer from the Engine API.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body (chunked transfer decoded).
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// `path` with each query value percent-encoded: `/containers/create?name=X`.
pub fn path_with_query(path: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect();
    format!("{path}?{}", q.join("&"))
}

/// One call: `method path` (below the API version) with an optional JSON body, answered within
/// `timeout`. Any status is returned; [`call_ok`] turns 4xx/5xx into an error.
pub async fn call(
    session: &Session,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<Answer, EngineError> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    call_with(
        session,
        method,
        path,
        ("application/json", body.as_bytes()),
        timeout,
    )
    .await
}

/// [`call`] with a body of another type (`application/x-tar` for an archive).
pub async fn call_with(
    session: &Session,
    method: &str,
    path: &str,
    (content_type, body): (&str, &[u8]),
    timeout: Duration,
) -> Result<Answer, EngineError> {
    let mut head = format!(
        "{method} /{API_VERSION}{path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: converge\r\nConnection: close\r\n"
    );
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    let mut child = session.dial_docker()?;
    let mut stdin = child.stdin.take();
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| EngineError::Transport("no stdout from ssh".into()))?;
    let exchange = async {
        if let Some(pipe) = stdin.as_mut() {
            pipe.write_all(&request)
                .await
                .map_err(|e| EngineError::Transport(format!("writing the request: {e}")))?;
            pipe.flush().await.ok();
        }
        // The input stays open until the answer is in: dial-stdio ends the exchange when its
        // input closes.
        let mut raw = Vec::new();
        stdout
            .read_to_end(&mut raw)
            .await
            .map_err(|e| EngineError::Transport(format!("reading the answer: {e}")))?;
        Ok::<_, EngineError>(raw)
    };
    let raw = match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => {
            let _ = child.kill().await;
            return Err(EngineError::Transport(format!(
                "no answer to {method} {path} within {}",
                humantime::format_duration(timeout)
            )));
        }
    };
    drop(stdin);
    let raw = match raw {
        Ok(r) if !r.is_empty() => r,
        other => {
            let done = child.wait_with_output().await.ok();
            let stderr = done
                .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                .unwrap_or_default();
            return Err(match other {
                Err(e) => e,
                Ok(_) => EngineError::Transport(format!(
                    "no answer to {method} {path}{}",
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {stderr}")
                    }
                )),
            });
        }
    };
    let _ = child.kill().await;
    parse(&raw).map_err(|e| EngineError::Transport(e.to_string()))
}

/// [`call`], with a 4xx or 5xx answer as an error carrying Docker's message.
pub async fn call_ok(
    session: &Session,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<Answer, EngineError> {
    let answer = call(session, method, path, body, timeout).await?;
    if answer.status >= 400 {
        let message = answer
            .json()
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).trim().to_string());
        let path = path.split('?').next().unwrap_or(path);
        return Err(EngineError::Status {
            call: format!("{method} {path}"),
            status: answer.status,
            message,
        });
    }
    Ok(answer)
}

/// Why the Engine's answer is not a whole HTTP response.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadAnswer(String);

impl From<&str> for BadAnswer {
    fn from(why: &str) -> BadAnswer {
        BadAnswer(why.to_string())
    }
}

/// Parses one HTTP/1.1 response read to the end of the connection.
fn parse(raw: &[u8]) -> Result<Answer, BadAnswer> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("the answer ended in its headers".into()),
        Err(e) => return Err(BadAnswer(format!("not an HTTP answer: {e}"))),
    };
    let status = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let rest = &raw[head..];
    let body = if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        dechunk(rest)?
    } else if let Some(n) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        rest.get(..n)
            .ok_or("the answer is shorter than its Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Answer { status, body })
}

/// Decodes a chunked body.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, BadAnswer> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk has no size line")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| BadAnswer(format!("bad chunk size `{size_text}`")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).ok_or("a chunk was cut short")?);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_with_a_length_chunked_or_to_the_end() {
        let a =
            parse(b"HTTP/1.1 201 Created\r\nContent-Length: 9\r\n\r\n{\"Id\":1}\nEXTRA").unwrap();
        assert_eq!(
            (a.status, a.body.as_slice()),
            (201, b"{\"Id\":1}\n".as_slice())
        );
        let a = parse(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"me\r\n9\r\nssage\":1}\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(a.status, 404);
        assert_eq!(a.json()["message"], 1);
        let a = parse(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!((a.status, a.body.len()), (204, 0));
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            path_with_query("/containers/create", &[("name", "a b&c")]),
            "/containers/create?name=a%20b%26c"
        );
    }
}
