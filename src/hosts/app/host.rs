//! One host of an app, reached over SSH: what runs there (containers by label, converge's
//! nginx file) and the scripts that change it, each run as one `ssh` command.

use std::sync::Mutex;

use super::docker::{self, APP_LABEL, quote};
use super::nginx;
use super::spec::AppSpec;
use crate::hosts::known_hosts::Verdict;
use crate::hosts::ssh::{Session, SshError, Target};
use crate::providers::ProviderError;

/// A container of the app, as `docker ps -a` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Container name.
    pub name: String,
    /// `running`, `exited`, `created`, ….
    pub state: String,
    /// `blue` or `green` (services).
    pub colour: String,
    /// Service or accessory name.
    pub service: String,
    /// `service`, `accessory` or `hook`.
    pub role: String,
    /// Host port on 127.0.0.1 (the proxied service).
    pub port: Option<u16>,
    /// converge's digest of its settings.
    pub config: String,
    /// Its image reference.
    pub image: String,
}

/// An open host.
pub struct Host {
    /// The session.
    pub session: Session,
    /// Where it is.
    pub target: Target,
}

/// Host keys recorded with `--accept-new-host-keys` in this process, for the audit trail.
pub static ACCEPTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn ssh_error(host: &Target, e: SshError) -> ProviderError {
    ProviderError::Api {
        operation: format!("ssh {}@{}:{}", host.user, host.address, host.port),
        message: e.to_string(),
    }
}

impl Host {
    /// Opens `target` (host key checked, login proven).
    pub async fn open(
        app: &AppSpec,
        target: &Target,
        accept_new: bool,
    ) -> Result<Host, ProviderError> {
        if let Some(dir) = app.known_hosts.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                ProviderError::Invalid(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let session = Session::open(
            target.clone(),
            &app.known_hosts,
            app.key.clone(),
            accept_new,
        )
        .await
        .map_err(|e| ssh_error(target, e))?;
        if let Some(Verdict::Accepted { host, fingerprints }) = &session.accepted {
            ACCEPTED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("{host} {}", fingerprints.join(", ")));
        }
        Ok(Host {
            session,
            target: target.clone(),
        })
    }

    /// `user@address:port`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.target.address, self.target.port)
    }

    /// Runs `script`; its output when it exits 0, otherwise an error naming `what` with what
    /// it printed on stderr.
    pub async fn sh(
        &self,
        what: &str,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<String, ProviderError> {
        let out = self
            .session
            .run(script, stdin)
            .await
            .map_err(|e| ssh_error(&self.target, e))?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(ProviderError::Api {
                operation: format!("{} on {}", what, self.label()),
                message: format!(
                    "exit {}: {}",
                    out.code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "by signal".into()),
                    out.stderr.trim()
                ),
            })
        }
    }

    /// The app's containers.
    pub async fn containers(&self, app: &str) -> Result<Vec<Listed>, ProviderError> {
        let format = "{{.Names}}\t{{.State}}\t{{.Label \"converge.colour\"}}\t{{.Label \"converge.service\"}}\t{{.Label \"converge.role\"}}\t{{.Label \"converge.port\"}}\t{{.Label \"converge.config\"}}\t{{.Image}}";
        let out = self
            .sh(
                "docker ps",
                &format!(
                    "docker ps -a --no-trunc --filter {} --format {}",
                    quote(&format!("label={APP_LABEL}={app}")),
                    quote(format)
                ),
                None,
            )
            .await?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() == 8).then(|| Listed {
                    name: f[0].into(),
                    state: f[1].into(),
                    colour: f[2].into(),
                    service: f[3].into(),
                    role: f[4].into(),
                    port: f[5].parse().ok(),
                    config: f[6].into(),
                    image: f[7].into(),
                })
            })
            .collect())
    }

    /// Host ports converge containers of every app hold (labels), running or not.
    pub async fn ports_in_use(&self) -> Result<Vec<u16>, ProviderError> {
        let out = self
            .sh(
                "docker ps",
                "docker ps -a --filter label=converge.port --format '{{.Label \"converge.port\"}}'",
                None,
            )
            .await?;
        Ok(out.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// converge's nginx file for the app, if there is one.
    pub async fn nginx_file(&self, app: &AppSpec) -> Result<Option<String>, ProviderError> {
        let path = quote(&nginx::path(&app.name, &app.nginx));
        let out = self
            .sh(
                "read nginx file",
                &format!("if [ -f {path} ]; then echo present; cat {path}; fi"),
                None,
            )
            .await?;
        Ok(out.strip_prefix("present\n").map(str::to_string))
    }

    /// nginx's worker pids.
    pub async fn nginx_workers(&self, app: &AppSpec) -> Result<Vec<u32>, ProviderError> {
        let out = self
            .sh(
                "list nginx workers",
                &nginx::workers_script(&app.nginx),
                None,
            )
            .await
            .unwrap_or_default();
        Ok(out
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }

    /// The last `lines` lines a container printed, with `secrets` masked.
    pub async fn logs(&self, name: &str, lines: usize, secrets: &[String]) -> String {
        let out = self
            .session
            .run(
                &format!("docker logs --tail {lines} {} 2>&1", quote(name)),
                None,
            )
            .await
            .map(|o| o.stdout)
            .unwrap_or_default();
        let mut out = out.trim_end().to_string();
        for s in secrets.iter().filter(|s| s.len() >= 4) {
            out = out.replace(s.as_str(), crate::model::SENSITIVE_TEXT);
        }
        out
    }

    /// Writes `content` to `path` (0600, the deploy user's) atomically.
    pub async fn write_private(&self, path: &str, content: &str) -> Result<(), ProviderError> {
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or(".");
        self.sh(
            "write env file",
            &format!(
                "umask 077 && mkdir -p {d} && cat > {p}.tmp && mv {p}.tmp {p}",
                d = quote(dir),
                p = quote(path)
            ),
            Some(content.as_bytes()),
        )
        .await
        .map(|_| ())
    }

    /// Logs in to the registry with a throw-away DOCKER_CONFIG (the password over stdin) and
    /// pulls `images`; the config directory is removed whatever happens. Without credentials,
    /// an image already on the host is not pulled again.
    /// `login`, when given, is the username and password to log in with instead of the app's
    /// own (ECR's token, fetched by converge for this pull).
    pub async fn pull(
        &self,
        app: &AppSpec,
        images: &[String],
        login: Option<(String, String)>,
    ) -> Result<(), ProviderError> {
        let mut script = String::from("set -e\n");
        let mut stdin = None;
        let registry = match (&app.registry, login) {
            (Some((server, _)), Some(pair)) => Some((server.clone(), Some(pair))),
            (r, _) => r.clone(),
        };
        match &registry {
            Some((server, Some((user, password)))) => {
                script.push_str(
                    "d=$(mktemp -d)\ntrap 'rm -rf \"$d\"' EXIT\nexport DOCKER_CONFIG=\"$d\"\n",
                );
                script.push_str(&format!(
                    "if ! out=$(docker login --username {} --password-stdin {} 2>&1); then printf 'docker login %s failed: %s\\n' {} \"$out\" >&2; exit 4; fi\n",
                    quote(user),
                    quote(server),
                    quote(server)
                ));
                for i in images {
                    script.push_str(&format!("docker pull -q {} >/dev/null\n", quote(i)));
                }
                stdin = Some(format!("{password}\n"));
            }
            Some((server, None)) if app.acr => {
                // The host's own managed identity (AcrPull): an IMDS token exchanged at the
                // registry for an ACR refresh token, which `docker login` takes. converge's own
                // credential (which may push) never reaches the host.
                script.push_str(
                    "d=$(mktemp -d)\ntrap 'rm -rf \"$d\"' EXIT\nexport DOCKER_CONFIG=\"$d\"\n",
                );
                script.push_str(&format!(
                    "server={s}\nimds=\"${{CONVERGE_IMDS_ENDPOINT:-http://169.254.169.254}}\"\nexchange=\"${{CONVERGE_ACR_EXCHANGE_URL:-https://$server/oauth2/exchange}}\"\n\
if ! token=$(curl -sSf -H Metadata:true \"$imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F\" 2>&1); then echo \"the host's managed identity gave no token (IMDS): $token\" >&2; exit 4; fi\n\
aad=$(printf '%s' \"$token\" | sed -n 's/.*\"access_token\" *: *\"\\([^\"]*\\)\".*/\\1/p')\n\
if ! answer=$(curl -sSf -X POST --data-urlencode grant_type=access_token --data-urlencode \"service=$server\" --data-urlencode \"access_token=$aad\" \"$exchange\" 2>&1); then echo \"the ACR token exchange at $exchange failed: $answer\" >&2; exit 4; fi\n\
refresh=$(printf '%s' \"$answer\" | sed -n 's/.*\"refresh_token\" *: *\"\\([^\"]*\\)\".*/\\1/p')\n\
if ! out=$(printf '%s\\n' \"$refresh\" | docker login --username 00000000-0000-0000-0000-000000000000 --password-stdin \"$server\" 2>&1); then echo \"docker login $server failed: $out\" >&2; exit 4; fi\n",
                    s = quote(server)
                ));
                for i in images {
                    script.push_str(&format!("docker pull -q {} >/dev/null\n", quote(i)));
                }
            }
            Some((_, None)) => {
                for i in images {
                    script.push_str(&format!("docker pull -q {} >/dev/null\n", quote(i)));
                }
            }
            None => {
                for i in images {
                    let q = quote(i);
                    script.push_str(&format!(
                        "docker image inspect {q} >/dev/null 2>&1 || docker pull -q {q} >/dev/null\n"
                    ));
                }
            }
        }
        self.sh("pull images", &script, stdin.as_deref().map(str::as_bytes))
            .await
            .map(|_| ())
    }

    /// Creates the app's network when missing.
    pub async fn ensure_network(&self, app: &str) -> Result<(), ProviderError> {
        let n = quote(&docker::network(app));
        self.sh(
            "create network",
            &format!(
                "docker network inspect {n} >/dev/null 2>&1 || docker network create {n} >/dev/null"
            ),
            None,
        )
        .await
        .map(|_| ())
    }
}
