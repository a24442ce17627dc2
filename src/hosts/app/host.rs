//! One host of an app, reached over SSH: what runs there (containers by label, converge's
//! nginx file), the scripts that change it (each one `sh -s` over the session, built from
//! checked words only), and containers created through the Docker Engine API.

use std::time::Duration;

use super::docker::{self, APP_LABEL, Colour, Const, ContainerName, Word, quote};
use super::nginx;
use super::spec::{AppSpec, Registry, RegistryAuth};
use crate::hosts::engine::{self, EngineError};
use crate::hosts::known_hosts::Verdict;
use crate::hosts::ssh::{Session, SshError, Target};
use crate::model::grammar::{ImageRef, Name};
use crate::model::secret::{Masker, Secret};
use crate::providers::ProviderError;

/// A container of the app, as `docker ps -a` lists it (only names converge could have built).
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Container name.
    pub name: ContainerName,
    /// `running`, `exited`, `created`, ….
    pub state: String,
    /// Its colour (services).
    pub colour: Option<Colour>,
    /// Service or accessory name.
    pub service: String,
    /// `service`, `accessory` or `hook`.
    pub role: String,
    /// Host port on 127.0.0.1 (the proxied service).
    pub port: Option<u16>,
    /// converge's keyed digest of its settings.
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

/// How long one Engine API call may take (a create, a start, a removal).
const ENGINE_TIMEOUT: Duration = Duration::from_secs(60);

fn ssh_error(host: &Target, e: SshError) -> ProviderError {
    ProviderError::Api {
        operation: format!("ssh {}@{}", host.user, host.label()),
        message: e.to_string(),
    }
}

/// A word this file builds from checked values (a filter from the app's name, `--username=`
/// from a user name the spec refused spaces and control characters in).
struct Built<'a>(&'a str);

impl Word for Built<'_> {
    fn word(&self) -> &str {
        self.0
    }
}

impl Host {
    /// Opens `target` (host key checked, login proven). Creates nothing on this machine unless
    /// a new host key is recorded (`options.accept_new`), which is noted in
    /// `options.accepted` for the caller to audit.
    pub async fn open(
        app: &AppSpec,
        target: &Target,
        options: &super::HostOptions,
    ) -> Result<Host, ProviderError> {
        let session = Session::open(
            target.clone(),
            &app.known_hosts,
            app.key.clone(),
            options.accept_new,
        )
        .await
        .map_err(|e| ssh_error(target, e))?;
        if let Some(Verdict::Accepted { host, fingerprints }) = &session.accepted {
            options
                .accepted
                .record(format!("{host} {}", fingerprints.join(", ")));
        }
        Ok(Host {
            session,
            target: target.clone(),
        })
    }

    /// `address:port`.
    pub fn label(&self) -> String {
        self.target.label()
    }

    /// Runs `script`; its output when it exits 0, otherwise an error naming `what` with what
    /// it printed on stderr. `data` is what the script's `converge_data` prints.
    pub async fn sh(
        &self,
        what: &str,
        script: &str,
        data: Option<&[u8]>,
    ) -> Result<String, ProviderError> {
        let out = self
            .session
            .run(script, data)
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

    fn engine_error(&self, what: &str, e: EngineError) -> ProviderError {
        ProviderError::Api {
            operation: format!("{what} on {}", self.label()),
            message: e.to_string(),
        }
    }

    /// Stops container `name` as `docker stop` stops it (its stop signal, then its own grace
    /// period, never a kill first), then runs `body` in its place: an accessory replaced in
    /// place.
    pub async fn replace_container(
        &self,
        name: &ContainerName,
        body: &serde_json::Value,
    ) -> Result<(), ProviderError> {
        let grace = body["StopTimeout"].as_u64().unwrap_or(10);
        let stop = format!("/containers/{}/stop", name.as_str());
        let stopped = engine::call(
            &self.session,
            "POST",
            &stop,
            None,
            ENGINE_TIMEOUT + Duration::from_secs(grace),
        )
        .await
        .map_err(|e| self.engine_error(&format!("stop {name}"), e))?;
        if !matches!(stopped.status, 200..=299 | 304 | 404) {
            return Err(ProviderError::Api {
                operation: format!("stop {name} on {}", self.label()),
                message: format!(
                    "Docker answered {}: {}",
                    stopped.status,
                    String::from_utf8_lossy(&stopped.body).trim()
                ),
            });
        }
        self.run_container(name, body).await
    }

    /// Creates container `name` from `body` (an Engine API create body) and starts it,
    /// replacing any container of that name (a colour that is not live, a hook's leftover).
    pub async fn run_container(
        &self,
        name: &ContainerName,
        body: &serde_json::Value,
    ) -> Result<(), ProviderError> {
        self.remove_container(name).await?;
        let create = engine::path_with_query("/containers/create", &[("name", name.as_str())]);
        engine::call_ok(&self.session, "POST", &create, Some(body), ENGINE_TIMEOUT)
            .await
            .map_err(|e| self.engine_error(&format!("create {name}"), e))?;
        let start = format!("/containers/{}/start", name.as_str());
        engine::call_ok(&self.session, "POST", &start, None, ENGINE_TIMEOUT)
            .await
            .map_err(|e| self.engine_error(&format!("start {name}"), e))?;
        Ok(())
    }

    /// The names of the host's Docker volumes.
    pub async fn volumes(&self) -> Result<Vec<String>, ProviderError> {
        let out = self
            .sh("docker volume ls", "docker volume ls -q", None)
            .await?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Removes container `name` whatever its state (gone already is fine).
    pub async fn remove_container(&self, name: &ContainerName) -> Result<(), ProviderError> {
        let path = format!("/containers/{}?force=1", name.as_str());
        let answer = engine::call(&self.session, "DELETE", &path, None, ENGINE_TIMEOUT)
            .await
            .map_err(|e| self.engine_error(&format!("remove {name}"), e))?;
        match answer.status {
            200..=299 | 404 => Ok(()),
            status => Err(ProviderError::Api {
                operation: format!("remove {name} on {}", self.label()),
                message: format!(
                    "Docker answered {status}: {}",
                    String::from_utf8_lossy(&answer.body).trim()
                ),
            }),
        }
    }

    /// The app's containers.
    pub async fn containers(&self, app: &Name) -> Result<Vec<Listed>, ProviderError> {
        let format = Const(
            "{{.Names}}\t{{.State}}\t{{.Label \"converge.colour\"}}\t{{.Label \"converge.service\"}}\t{{.Label \"converge.role\"}}\t{{.Label \"converge.port\"}}\t{{.Label \"converge.config\"}}\t{{.Image}}",
        );
        let filter = format!("--filter=label={APP_LABEL}={app}");
        let out = self
            .sh(
                "docker ps",
                &format!(
                    "docker ps -a --no-trunc {} --format {}",
                    quote(&Built(&filter)),
                    quote(&format)
                ),
                None,
            )
            .await?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                if f.len() != 8 {
                    return None;
                }
                Some(Listed {
                    name: ContainerName::listed(app, f[0])?,
                    state: f[1].into(),
                    colour: Colour::parse(f[2]),
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
                &format!("if [ -f {path} ]; then echo present; cat -- {path}; fi"),
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

    /// The last `lines` lines a container printed, every secret `masker` knows masked.
    pub async fn logs(&self, name: &ContainerName, lines: usize, masker: &Masker) -> String {
        let out = self
            .session
            .run(
                &format!("docker logs --tail {lines} -- {} 2>&1", quote(name)),
                None,
            )
            .await
            .map(|o| o.stdout)
            .unwrap_or_default();
        masker.mask(out.trim_end())
    }

    /// Logs in to the registry with a throw-away DOCKER_CONFIG (the password over stdin, inside
    /// the script's data) and pulls `images`; the config directory is removed whatever
    /// happens. Without credentials, an image already on the host is not pulled again.
    /// `login`, when given, is the username and password to log in with instead of the app's
    /// own (ECR's token, minted by converge for this pull).
    pub async fn pull(
        &self,
        app: &AppSpec,
        images: &[ImageRef],
        login: Option<(String, Secret)>,
    ) -> Result<(), ProviderError> {
        let (script, data) = pull_script(app.registry.as_ref(), images, login);
        self.sh("pull images", &script, data.as_deref().map(str::as_bytes))
            .await
            .map(|_| ())
    }

    /// Creates the app's network when missing, and (`live`) its live network.
    pub async fn ensure_network(&self, app: &Name, live: bool) -> Result<(), ProviderError> {
        // A network Docker could not create (its address pools used up) fails here, by name,
        // not later as a container that cannot start.
        let mut script = String::from("set -e\n");
        let mut networks = vec![docker::network(app)];
        if live {
            networks.push(docker::live_network(app));
        }
        for n in networks {
            let n = quote(&n);
            script.push_str(&format!(
                "docker network inspect -- {n} >/dev/null 2>&1 || docker network create -- {n} >/dev/null\n"
            ));
        }
        self.sh("create network", &script, None).await.map(|_| ())
    }

    /// Connects `container` to `network` with `aliases` (already connected is fine: a resumed
    /// run).
    pub async fn connect(
        &self,
        network: &ContainerName,
        container: &ContainerName,
        aliases: &[&str],
    ) -> Result<(), ProviderError> {
        let path = format!("/networks/{}/connect", network.as_str());
        let body = serde_json::json!({
            "Container": container.as_str(),
            "EndpointConfig": { "Aliases": aliases },
        });
        let answer = engine::call(&self.session, "POST", &path, Some(&body), ENGINE_TIMEOUT)
            .await
            .map_err(|e| self.engine_error(&format!("connect {container} to {network}"), e))?;
        let message = String::from_utf8_lossy(&answer.body);
        match answer.status {
            200..=299 => Ok(()),
            _ if message.contains("already exists") => Ok(()),
            status => Err(ProviderError::Api {
                operation: format!("connect {container} to {network} on {}", self.label()),
                message: format!("Docker answered {status}: {}", message.trim()),
            }),
        }
    }

    /// Disconnects `container` from `network` (gone, or not connected, is fine).
    pub async fn disconnect(
        &self,
        network: &ContainerName,
        container: &ContainerName,
    ) -> Result<(), ProviderError> {
        let path = format!("/networks/{}/disconnect", network.as_str());
        let body = serde_json::json!({ "Container": container.as_str(), "Force": true });
        let answer = engine::call(&self.session, "POST", &path, Some(&body), ENGINE_TIMEOUT)
            .await
            .map_err(|e| self.engine_error(&format!("disconnect {container} from {network}"), e))?;
        let message = String::from_utf8_lossy(&answer.body);
        match answer.status {
            200..=299 | 404 => Ok(()),
            _ if message.contains("not connected") || message.contains("No such container") => {
                Ok(())
            }
            status => Err(ProviderError::Api {
                operation: format!("disconnect {container} from {network} on {}", self.label()),
                message: format!("Docker answered {status}: {}", message.trim()),
            }),
        }
    }
}

/// The script that pulls `images` from `registry` (logging in first when it has credentials,
/// or with `login`), and the data its `converge_data` prints (the password). Pure: every value
/// in it is a checked word.
pub fn pull_script(
    registry: Option<&Registry>,
    images: &[ImageRef],
    login: Option<(String, Secret)>,
) -> (String, Option<String>) {
    let mut script = String::from("set -e\n");
    let mut data: Option<String> = None;
    let private_config = "d=$(mktemp -d)\ntrap 'rm -rf \"$d\"' EXIT\nexport DOCKER_CONFIG=\"$d\"\n";
    let pull_all = |script: &mut String| {
        for i in images {
            script.push_str(&format!("docker pull -q -- {} >/dev/null\n", quote(i)));
        }
    };
    let credentials = match (registry, login) {
        (Some(r), Some((user, password))) => Some((r, user, password)),
        (
            Some(
                r @ Registry {
                    auth: RegistryAuth::Basic { username, password },
                    ..
                },
            ),
            None,
        ) => Some((r, username.clone(), password.clone())),
        _ => None,
    };
    match (registry, credentials) {
        (_, Some((registry, user, password))) => {
            script.push_str(private_config);
            let server = quote(&registry.server);
            script.push_str(&format!(
                "if ! out=$(converge_data | docker login {} --password-stdin -- {server} 2>&1); then printf 'docker login %s failed: %s\\n' {server} \"$out\" >&2; exit 4; fi\n",
                quote(&Built(&format!("--username={user}"))),
            ));
            pull_all(&mut script);
            data = Some(format!("{}\n", password.expose()));
        }
        (
            Some(Registry {
                server,
                auth: RegistryAuth::Acr,
            }),
            None,
        ) => {
            // The host's own managed identity (AcrPull): an IMDS token exchanged at the
            // registry for an ACR refresh token, which `docker login` takes. converge's own
            // credential (which may push) never reaches the host; each token goes from one
            // program to the next on stdin, never on a command line.
            script.push_str(private_config);
            script.push_str(&format!(
                "server={s}\nimds=\"${{CONVERGE_IMDS_ENDPOINT:-http://169.254.169.254}}\"\nexchange=\"${{CONVERGE_ACR_EXCHANGE_URL:-https://$server/oauth2/exchange}}\"\n\
if ! token=$(curl -sSf -H Metadata:true \"$imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F\" 2>&1); then echo \"the host's managed identity gave no token (IMDS): $token\" >&2; exit 4; fi\n\
if ! answer=$(printf '%s' \"$token\" | sed -n 's/.*\"access_token\" *: *\"\\([^\"]*\\)\".*/\\1/p' | curl -sSf -X POST --data-urlencode grant_type=access_token --data-urlencode \"service=$server\" --data-urlencode access_token@- -- \"$exchange\" 2>&1); then echo \"the ACR token exchange at $exchange failed: $answer\" >&2; exit 4; fi\n\
if ! out=$(printf '%s' \"$answer\" | sed -n 's/.*\"refresh_token\" *: *\"\\([^\"]*\\)\".*/\\1/p' | docker login --username 00000000-0000-0000-0000-000000000000 --password-stdin -- \"$server\" 2>&1); then echo \"docker login $server failed: $out\" >&2; exit 4; fi\n",
                s = quote(server)
            ));
            pull_all(&mut script);
        }
        (Some(_), None) => pull_all(&mut script),
        (None, _) => {
            for i in images {
                let q = quote(i);
                script.push_str(&format!(
                    "docker image inspect -- {q} >/dev/null 2>&1 || docker pull -q -- {q} >/dev/null\n"
                ));
            }
        }
    }
    (script, data)
}
