//! Backups before migrations: each accessory's declared `backup.run` executed inside it on the
//! hosts of the first batch (where the pre_traffic hooks run), its standard output stored as
//! it is in a 0600 file under the deploy user's `~/.converge/backups/<app>/<accessory>/`,
//! named by time and revision, the newest `keep` kept. The command's words reach `docker
//! exec` as an argument list built by `xargs -0` from the script's data, never as shell text.

use super::*;
use crate::model::backup::{Backup, Pruned};

/// The directory of an accessory's backups, below the deploy user's home.
pub fn backup_dir(app: &Name, accessory: &Name) -> String {
    format!("$HOME/.converge/backups/{app}/{accessory}")
}

/// The script that takes one backup into `<dir>/<file>` and keeps the newest `keep`: it prints
/// the file's path, size and SHA-256, then one `pruned PATH` line per file removed. Exit 3:
/// the command failed (its stderr's end on stderr); exit 4: it printed nothing.
fn script(
    app: &Name,
    accessory: &Name,
    container: &ContainerName,
    file: &str,
    keep: usize,
    timeout: Duration,
) -> String {
    // `app` and `accessory` are names (letters, digits, `-`), `file` is converge's own
    // `<UTC time>-<colour>-<rollout id>.backup`: none needs quoting inside double quotes.
    format!(
        r#"set -u
umask 077
d="{dir}"
mkdir -p -- "$d" || exit 5
f="$d/{file}"
rm -f -- "$f.partial" "$f.err"
converge_data | timeout --kill-after=10 {secs} xargs -0 -x -- docker exec -- {container} >"$f.partial" 2>"$f.err"
rc=$?
if [ "$rc" -ne 0 ]; then
  tail -c 2000 -- "$f.err" >&2
  rm -f -- "$f.partial" "$f.err"
  if [ "$rc" -eq 124 ]; then echo "it ran past its timeout of {secs}s" >&2; fi
  exit 3
fi
rm -f -- "$f.err"
if [ ! -s "$f.partial" ]; then
  rm -f -- "$f.partial"
  echo "it printed nothing" >&2
  exit 4
fi
chmod 600 -- "$f.partial"
mv -- "$f.partial" "$f"
printf '%s\n' "$f"
wc -c <"$f"
sha256sum -- "$f" | cut -d' ' -f1
ls -1 -- "$d" | grep '\.backup$' | sort -r | tail -n +{next} | while read -r old; do
  rm -f -- "$d/$old" && printf 'pruned %s\n' "$d/$old"
done
"#,
        dir = backup_dir(app, accessory),
        secs = timeout.as_secs().max(1),
        container = quote(container),
        next = keep + 1,
    )
}

/// What the script printed when it succeeded: the file, its size and digest, and the files
/// pruned (an answer that is not that shape is an error naming the host).
fn parse(out: &str, host: &str) -> Result<(String, u64, String, Vec<String>), String> {
    let mut lines = out.lines();
    let mut next = |what: &str| {
        lines
            .next()
            .map(|l| l.trim().to_string())
            .ok_or_else(|| format!("{host} printed no {what} for the backup"))
    };
    let path = next("path")?;
    let size = next("size")?;
    let size: u64 = size
        .parse()
        .map_err(|_| format!("{host} printed a size that is not a number"))?;
    let sha256 = next("digest")?;
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{host} printed a SHA-256 that is not one"));
    }
    let pruned = lines
        .filter_map(|l| l.strip_prefix("pruned "))
        .map(str::to_string)
        .collect();
    Ok((path, size, sha256, pruned))
}

impl HostTarget<'_> {
    /// Streams backup `file` of `accessory` from `host` to `dest` (`<prefix><app>/<accessory>/
    /// <file>`), checking that what S3 received has the digest the host computed: the object's
    /// `s3://` URL, or why not.
    async fn copy(
        &self,
        host: &Host,
        accessory: &Name,
        file: &str,
        dest: &super::super::spec::S3Copy,
        sha256: &str,
    ) -> Result<String, String> {
        let aws = self
            .aws
            .ok_or("`copy_to.s3` needs the environment's aws provider for its credentials")?;
        let key = format!("{}{}/{accessory}/{file}", dest.prefix, self.app.name);
        let url = format!("s3://{}/{key}", dest.bucket);
        // `file` is converge's own name and the directory its own: nothing here needs quoting.
        let script = format!(
            "exec cat -- \"{}/{file}\"",
            backup_dir(&self.app.name, accessory)
        );
        let mut child = host
            .session
            .stream(&script)
            .await
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("ssh gave no output to read")?;
        let uploaded = aws.s3().upload(&dest.bucket, &key, stdout).await;
        let status = child.wait_with_output().await.map_err(|e| e.to_string())?;
        if !status.status.success() {
            return Err(format!(
                "reading it on the host failed: {}",
                String::from_utf8_lossy(&status.stderr).trim()
            ));
        }
        let uploaded = uploaded.map_err(|e| format!("{url}: {e}"))?;
        if uploaded.sha256 != sha256 {
            return Err(format!(
                "{url} received {} bytes whose SHA-256 is not the file's",
                uploaded.size
            ));
        }
        Ok(url)
    }

    /// Takes every declared backup on the first batch's hosts and records them in `rec`:
    /// `Ready` with what was taken, or `Failed` naming the accessory, the host and why.
    pub(super) async fn take_backups(&self, rec: &mut Rollout) -> Result<Readiness, TargetError> {
        let now = chrono::Utc::now();
        // Only letters, digits and `-` reach the name (a colour, a UUID's first characters),
        // whatever a record holds: the name is written into the script.
        let safe = |s: &str, n: usize| -> String {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(n)
                .collect()
        };
        let file = format!(
            "{}-{}-{}.backup",
            now.format("%Y%m%dT%H%M%SZ"),
            safe(&rec.new_revision, 16),
            safe(&rec.id, 8)
        );
        let masker = self.masker().await;
        let mut taken = Vec::new();
        let mut pruned = Vec::new();
        for i in 0..self.started().max(1) {
            let host = self.host(i).await?;
            for (name, c) in &self.app.accessories {
                let Some(b) = &c.backup else { continue };
                let container = docker::accessory_name(&self.app.name, name);
                let mut words = Vec::new();
                for w in &b.run {
                    words.extend_from_slice(w.as_bytes());
                    words.push(0);
                }
                let out = host
                    .session
                    .run(
                        &script(&self.app.name, name, &container, &file, b.keep, b.timeout),
                        Some(&words),
                    )
                    .await
                    .map_err(|e| {
                        call(ProviderError::Api {
                            operation: format!("backup of {name} on {}", host.label()),
                            message: e.to_string(),
                        })
                    })?;
                if !out.success() {
                    return Ok(Readiness::Failed(format!(
                        "the backup of accessory `{name}` on {} failed ({}), so no pre_traffic hook ran: {}",
                        host.label(),
                        b.run.join(" "),
                        masker.mask(out.stderr.trim())
                    )));
                }
                let (path, size, sha256, gone) =
                    parse(&out.stdout, &host.label()).map_err(TargetError::StepFailed)?;
                pruned.extend(gone.into_iter().map(|path| Pruned {
                    host: host.label(),
                    path,
                }));
                let copy = match &b.copy_to {
                    None => None,
                    Some(dest) => match self.copy(&host, name, &file, dest, &sha256).await {
                        Ok(url) => Some(url),
                        Err(why) => {
                            return Ok(Readiness::Failed(format!(
                                "the backup of accessory `{name}` on {} could not be copied, so no pre_traffic hook ran: {why}",
                                host.label()
                            )));
                        }
                    },
                };
                taken.push(Backup {
                    accessory: name.to_string(),
                    host: host.label(),
                    path,
                    size,
                    sha256,
                    time: crate::rollout::engine::stamp(now),
                    revision: rec.new_revision.clone(),
                    rollout: rec.id.clone(),
                    copy,
                });
            }
        }
        let detail = taken
            .iter()
            .map(|b| {
                format!(
                    "{} on {}: {} ({} bytes, sha256 {})",
                    b.accessory,
                    b.host,
                    b.path,
                    b.size,
                    &b.sha256[..12]
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        rec.backups = taken;
        rec.backups_pruned = pruned;
        Ok(Readiness::Ready(detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> (Name, Name, ContainerName) {
        let app = Name::try_from("shop").unwrap();
        let acc = Name::try_from("db").unwrap();
        let c = docker::accessory_name(&app, &acc);
        (app, acc, c)
    }

    /// The command's words are never in the script: they arrive as data and `xargs -0` makes
    /// them `docker exec`'s arguments.
    #[test]
    fn the_command_is_data_and_the_file_is_kept_private() {
        let (app, acc, c) = names();
        let s = script(
            &app,
            &acc,
            &c,
            "20261204T000000Z-green-abcd1234.backup",
            3,
            Duration::from_secs(600),
        );
        assert!(s.contains("umask 077"));
        assert!(s.contains(
            "converge_data | timeout --kill-after=10 600 xargs -0 -x -- docker exec -- 'shop-db' >"
        ));
        assert!(s.contains(r#"d="$HOME/.converge/backups/shop/db""#));
        assert!(s.contains("tail -n +4"), "keeps 3: {s}");
        assert!(s.contains("chmod 600"));
    }

    #[test]
    fn a_well_formed_answer_reads_and_a_bad_one_is_an_error() {
        let digest = "a".repeat(64);
        let out = format!("/home/d/x.backup\n42\n{digest}\npruned /home/d/old.backup\n");
        let (path, size, sha, pruned) = parse(&out, "h:22").unwrap();
        assert_eq!((path.as_str(), size, sha), ("/home/d/x.backup", 42, digest));
        assert_eq!(pruned, vec!["/home/d/old.backup".to_string()]);
        assert!(
            parse("/x\nlots\n", "h:22")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            parse("/x\n1\nnope\n", "h:22")
                .unwrap_err()
                .contains("SHA-256")
        );
        assert!(parse("", "h:22").unwrap_err().contains("no path"));
    }
}
