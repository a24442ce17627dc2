//! A `host.app` whose services come from a compose file: the file is read (inside the project,
//! relative to the file declaring the app), interpolated from converge's variables, and its
//! services and accessories put into the app's properties, where they are checked like any
//! other; errors and warnings point into the compose file.

use std::cell::RefCell;

use super::*;
use crate::config::compose::{self, Allow};

/// Where a compose-sourced app's properties were written: the compose file and, by property
/// path, the place in it.
#[derive(Debug, Clone)]
pub(super) struct ComposeOrigins {
    file: usize,
    origins: Vec<(Vec<String>, Span)>,
}

impl ComposeOrigins {
    /// Where `path` (`services.api.image`) was written, when the compose file gave it.
    pub(super) fn locate(&self, path: &[String]) -> Option<(usize, Span)> {
        self.origins
            .iter()
            .filter(|(p, _)| path.starts_with(p))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, s)| (self.file, *s))
    }
}

/// `dir/rel` with `.` and `..` resolved; `None` when it climbs above the project root.
fn joined(dir: &Path, rel: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in dir.join(rel).components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

impl Loader<'_> {
    /// Reads the compose file a `host.app` names, if it names one, into its properties.
    pub(super) fn compose_source(
        &mut self,
        scope: &Scope,
        decl: &ResourceDecl,
        properties: &mut Expr,
    ) {
        let Some(node) = &decl.properties else { return };
        let known = properties.eval(&KnownOnly);
        let settings = known.get("compose");
        if settings.is_null() {
            return;
        }
        let address = scope.address(&decl.key);
        let (file_at, span_at) = self.locate(scope.file, node, None, &["compose".into()]);
        for given in ["services", "accessories"] {
            if !known.get(given).is_null() {
                let (f, s) = self.locate(scope.file, node, None, &[given.into()]);
                self.err(
                    f,
                    &s,
                    format!("{address}: `{given}` come from the compose file; remove them here (converge's own settings stay: hosts, ssh, registry, rollout, allow)"),
                    "given twice",
                );
            }
        }
        let Some(rel) = settings.get("file").reveal().as_str().map(str::to_string) else {
            return;
        };
        let here = Path::new(&self.files[scope.file].name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let Some(path) = joined(&here, &rel) else {
            self.err(
                file_at,
                &span_at,
                format!(
                    "{address}: compose file `{}` is outside the project",
                    crate::model::grammar::escape_controls(&rel)
                ),
                "here",
            );
            return;
        };
        let Some(file) = self.read_file(&path) else {
            return;
        };
        let parsed = match compose::yaml::parse(&self.files[file], file) {
            Ok(n) => n,
            Err(e) => {
                self.errors.push(e);
                return;
            }
        };
        let compose_dir = Path::new(&path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut dotenv: BTreeMap<String, String> = BTreeMap::new();
        if settings.get("dotenv").as_bool() == Some(true) {
            let env_path = joined(&compose_dir, ".env").unwrap_or_default();
            match read_project_file(self.root, &env_path) {
                Ok(text) => match compose::interpolate::dotenv(&text) {
                    Ok(pairs) => {
                        dotenv.extend(pairs);
                        self.files.push(SourceFile::new(env_path, text));
                    }
                    Err(line) => {
                        self.errors.push(ConfigError::general(format!(
                            "{env_path}:{line}: not `NAME=value`"
                        )));
                        return;
                    }
                },
                Err(why) => {
                    self.err(
                        file_at,
                        &span_at,
                        format!("{address}: `dotenv: true` and {env_path} cannot be read: {why}"),
                        "here",
                    );
                    return;
                }
            }
        }
        let vars = &self.vars;
        let lookup = |name: &str| -> Option<(String, bool)> {
            if let Some(v) = vars.get(name) {
                let text = match v.value.reveal() {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                return Some((text, v.value.contains_sensitive()));
            }
            dotenv.get(name).map(|v| (v.clone(), false))
        };
        let extra: RefCell<Vec<SourceFile>> = RefCell::default();
        let root = self.root;
        let read = |rel: &str| -> Result<String, String> {
            let path = joined(&compose_dir, rel).ok_or("it is outside the project")?;
            let text = read_project_file(root, &path).map_err(|e| e.to_string())?;
            extra.borrow_mut().push(SourceFile::new(path, text.clone()));
            Ok(text)
        };
        let project = settings
            .get("project")
            .reveal()
            .as_str()
            .or(known.get("name").reveal().as_str())
            .unwrap_or_default()
            .to_string();
        let profiles: Vec<String> = settings
            .get("profiles")
            .as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        let allow = Allow::of(known.get("allow"));
        let given_secrets: BTreeMap<String, Expr> = match properties {
            Expr::Map(m) => match m.get("compose") {
                Some(Expr::Map(c)) => match c.get("secrets") {
                    Some(Expr::Map(s)) => s.clone(),
                    _ => BTreeMap::new(),
                },
                _ => BTreeMap::new(),
            },
            _ => BTreeMap::new(),
        };
        let provided: std::collections::BTreeSet<String> = given_secrets.keys().cloned().collect();
        let source = compose::Source {
            file: &self.files[file],
            project: &project,
            lookup: &lookup,
            profiles: &profiles,
            allow: &allow,
            read: &read,
            provided: &provided,
        };
        let translation = compose::translate(&source, &parsed);
        self.files.extend(extra.into_inner());
        self.errors.extend(translation.errors);
        for (span, warning) in translation.warnings {
            let place = crate::config::Location::of(&self.files[file], &span)
                .map(|l| format!("{}:{}:{}: ", l.file, l.line, l.column))
                .unwrap_or_default();
            let text = format!("{place}{address}: {warning}");
            if !self.warnings.contains(&text) {
                self.warnings.push(text);
            }
        }
        if let Expr::Map(map) = properties {
            map.insert("services".into(), expr_of(Value::Map(translation.services)));
            map.insert(
                "accessories".into(),
                expr_of(Value::Map(translation.accessories)),
            );
            // A secret file the app's `compose.secrets` fills takes its expression as written
            // (a sensitive variable, or a secret's ARN known only after apply).
            for (path, name) in &translation.provided {
                if let Some(given) = given_secrets.get(name) {
                    set_at(map, path, given.clone());
                }
            }
        }
        self.compose_origins.insert(
            address,
            ComposeOrigins {
                file,
                origins: translation.origins,
            },
        );
    }
}

/// A value as an expression whose maps and lists are expressions, so one can be set inside.
fn expr_of(v: Value) -> Expr {
    match v {
        Value::Map(m) => Expr::Map(m.into_iter().map(|(k, v)| (k, expr_of(v))).collect()),
        Value::List(l) => Expr::List(l.into_iter().map(expr_of).collect()),
        other => Expr::Literal(other),
    }
}

/// Sets `path` below `map` to `e`, creating maps on the way.
fn set_at(map: &mut BTreeMap<String, Expr>, path: &[String], e: Expr) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut here = map;
    for key in parents {
        let next = here
            .entry(key.clone())
            .or_insert_with(|| Expr::Map(BTreeMap::new()));
        let Expr::Map(m) = next else { return };
        here = m;
    }
    here.insert(last.clone(), e);
}

#[cfg(test)]
mod tests {
    use super::joined;
    use std::path::Path;

    #[test]
    fn compose_paths_are_relative_to_the_declaring_file_and_stay_in_the_project() {
        let envs = Path::new("environments");
        assert_eq!(
            joined(envs, "../compose.yaml").as_deref(),
            Some("compose.yaml")
        );
        assert_eq!(
            joined(envs, "app/compose.yaml").as_deref(),
            Some("environments/app/compose.yaml")
        );
        assert_eq!(joined(envs, "../../etc/passwd"), None);
        assert_eq!(joined(envs, "/etc/passwd"), None);
    }
}
