//! A container's files (a compose file's `secrets` and `configs`): written on the host below
//! the deploy user's home (a 0700 directory), owned by the container's user with their mode by
//! Docker itself (an archive put through a never-started helper container of the same image,
//! which knows the image's users), and mounted read-only. A secret travels over ssh's stdin
//! inside the archive, never on a command line.

use super::super::spec::FileContent;
use super::*;
use crate::hosts::engine;
use crate::model::grammar::HostPath;

/// How long an archive may take to reach the host.
const ARCHIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// The directory of a container's files, below the deploy user's home.
fn files_dir(app: &Name, container: &ContainerName) -> String {
    // Both are names converge built (letters, digits, `-`): nothing to quote inside "".
    format!("$HOME/.converge/files/{app}/{container}")
}

/// The numeric owner a `user` names (`UID` or `UID:GID`); `None` for a user name, which Docker
/// looks up in the image.
fn numeric_owner(user: Option<&str>) -> Option<(u64, u64)> {
    let Some(user) = user else {
        return Some((0, 0));
    };
    let (u, g) = user.split_once(':').unwrap_or((user, user));
    Some((u.parse().ok()?, g.parse().ok()?))
}

fn failed(what: &str, e: impl std::fmt::Display) -> TargetError {
    TargetError::StepFailed(format!("{what}: {e}"))
}

impl HostTarget<'_> {
    /// Puts `c`'s files for container `name` on `host` (replacing what an earlier start left)
    /// and returns the binds that mount them read-only.
    pub(super) async fn put_files(
        &self,
        host: &Host,
        name: &ContainerName,
        c: &Container,
    ) -> Result<Vec<String>, TargetError> {
        if c.files.is_empty() {
            return Ok(Vec::new());
        }
        let dir = host
            .sh(
                "files",
                &format!(
                    "umask 077\nd=\"{}\"\nrm -rf \"$d\" && mkdir -p \"$d\" && printf %s \"$d\"\n",
                    files_dir(&self.app.name, name)
                ),
                None,
            )
            .await
            .map_err(call)?;
        // The host's answer is untrusted: it becomes part of a bind only if it is a plain path.
        let dir = HostPath::try_from(dir.trim())
            .map_err(|e| failed("the host's files directory cannot be used", e))?;
        if dir.as_str().contains(':') {
            return Err(failed(
                "the host's files directory cannot be used",
                "it holds `:`, which would change what the bind mounts",
            ));
        }
        let owner = numeric_owner(c.user.as_deref());
        let mut archive = tar::Builder::new(Vec::new());
        let mut binds = Vec::new();
        for (i, (path, f)) in c.files.iter().enumerate() {
            let secret;
            let bytes: &[u8] = match &f.content {
                FileContent::Text(t) => t.as_bytes(),
                FileContent::Secret(s) => {
                    secret = self.secret_value(s).await?;
                    secret.expose().as_bytes()
                }
            };
            let file = format!("file-{i}");
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            header.set_mode(f.mode);
            let (uid, gid) = owner.unwrap_or((0, 0));
            header.set_uid(uid);
            header.set_gid(gid);
            header.set_mtime(0);
            archive
                .append_data(&mut header, &file, bytes)
                .map_err(|e| failed("building the files' archive", e))?;
            binds.push(format!("{dir}/{file}:{path}:ro"));
        }
        let archive = archive
            .into_inner()
            .map_err(|e| failed("building the files' archive", e))?;
        let helper = docker::files_helper_name(name);
        host.remove_container(&helper).await.map_err(call)?;
        let mut labels = serde_json::Map::new();
        labels.insert(docker::APP_LABEL.into(), self.app.name.as_str().into());
        labels.insert("converge.role".into(), "files".into());
        let body = serde_json::json!({
            "Image": c.image.as_str(),
            "User": c.user.clone().unwrap_or_default(),
            "Cmd": ["/converge-files"],
            "Labels": labels,
            "HostConfig": { "Binds": [format!("{dir}:/converge-files")], "NetworkMode": "none" },
        });
        let create = engine::path_with_query("/containers/create", &[("name", helper.as_str())]);
        let created = engine::call_ok(&host.session, "POST", &create, Some(&body), ARCHIVE_TIMEOUT)
            .await
            .map_err(|e| failed(&format!("creating {helper} on {}", host.label()), e));
        let put = match created {
            Ok(_) => {
                // A user name is looked up in the image by Docker (`copyUIDGID`); numbers are
                // the archive's own.
                let mut query = vec![("path", "/converge-files")];
                if owner.is_none() {
                    query.push(("copyUIDGID", "1"));
                }
                let put = engine::path_with_query(
                    &format!("/containers/{}/archive", helper.as_str()),
                    &query,
                );
                engine::call_with(
                    &host.session,
                    "PUT",
                    &put,
                    ("application/x-tar", &archive),
                    ARCHIVE_TIMEOUT,
                )
                .await
                .map_err(|e| failed(&format!("putting {name}'s files on {}", host.label()), e))
                .and_then(|a| match a.status {
                    200..=299 => Ok(()),
                    status => Err(failed(
                        &format!("putting {name}'s files on {}", host.label()),
                        format!(
                            "Docker answered {status}: {}",
                            String::from_utf8_lossy(&a.body).trim()
                        ),
                    )),
                })
            }
            Err(e) => Err(e),
        };
        host.remove_container(&helper).await.map_err(call)?;
        put?;
        Ok(binds)
    }
}

/// Removes the files of containers converge removed.
pub(super) async fn remove_files(app: &Name, host: &Host, removed: &[ContainerName]) {
    for name in removed {
        let _ = host
            .sh(
                "remove files",
                &format!("rm -rf \"{}\"\n", files_dir(app, name)),
                None,
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::numeric_owner;

    #[test]
    fn a_numeric_user_owns_its_files_a_named_one_is_looked_up_and_none_is_root() {
        assert_eq!(numeric_owner(None), Some((0, 0)));
        assert_eq!(numeric_owner(Some("10001")), Some((10001, 10001)));
        assert_eq!(numeric_owner(Some("10001:20")), Some((10001, 20)));
        assert_eq!(numeric_owner(Some("app")), None);
        assert_eq!(numeric_owner(Some("app:1")), None);
    }
}
