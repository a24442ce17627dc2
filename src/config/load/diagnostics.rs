//! Value checks that need the whole picture: values that arrive through a reference checked
//! where they are used, kinds' own rules, each reported once at the literal the user wrote.

use super::*;

impl Loader<'_> {
    /// Reports reference cycles, naming every resource on the cycle.
    /// Checks the known value a `${var.…}` or `${input.…}` brings against the type expected
    /// where it is used, and reports each problem at the literal that gave it (in the
    /// environment file when it came through a module input), naming where it is used.
    pub(super) fn check_referenced(
        &mut self,
        scope: &Scope,
        s: &MarkedScalarNode,
        expr: &Expr,
        expected: &Type,
    ) {
        let value = expr.eval(&KnownOnly);
        let problems = value_problems(expected, &value);
        if problems.is_empty() {
            return;
        }
        let instance = scope.module.as_ref().map(|(i, _)| i.as_str());
        let used = crate::config::Location::of(&self.files[scope.file], s.span());
        for (path, problem) in problems {
            let (file, span) = self.follow(scope.file, s, instance, &path);
            let message = match &used {
                Some(at) if file != scope.file || span.start() != s.span().start() => format!(
                    "{problem} (used as `{}` at {}:{}:{})",
                    s.as_str(),
                    at.file,
                    at.line,
                    at.column
                ),
                _ => problem.clone(),
            };
            self.report_once(file, &span, &problem, message);
        }
    }

    /// Two host apps of one environment on one host must not share a name (containers,
    /// network, env files, nginx file) or an nginx server (listen port and server_name): the
    /// second is an error at its literal, naming the first.
    fn check_host_claims(
        &mut self,
        scope: &Scope,
        decl: &ResourceDecl,
        node: &Node,
        instance: Option<&str>,
        known: &Value,
    ) {
        let address = scope.address(&decl.key).to_string();
        let name = known.get("name").reveal().as_str().map(str::to_string);
        let nginx = known.get("rollout").get("proxy").get("nginx");
        let listen = nginx.get("listen").as_i64().unwrap_or(80);
        let server_name = nginx
            .get("server_name")
            .reveal()
            .as_str()
            .map(str::to_string);
        for h in known.get("hosts").as_list().unwrap_or_default() {
            let Some(host) = h.get("address").reveal().as_str().map(str::to_string) else {
                continue;
            };
            let at = format!("{host}:{}", h.get("port").as_i64().unwrap_or(22));
            let mut claims = Vec::new();
            if let Some(n) = &name {
                claims.push((
                    format!("app {n} on {at}"),
                    vec!["name".to_string()],
                    format!("app name `{n}`"),
                ));
            }
            if let Some(s) = &server_name {
                claims.push((
                    format!("nginx {s}:{listen} on {at}"),
                    ["rollout", "proxy", "nginx", "server_name"]
                        .map(String::from)
                        .to_vec(),
                    format!("nginx server `{s}` on port {listen}"),
                ));
            }
            for (claim, path, what) in claims {
                match self.host_claims.get(&claim) {
                    Some(first) if *first != address => {
                        let (file, span) = self.locate_property(scope, decl, node, instance, &path);
                        let message = format!(
                            "{address}: {what} on {at} is already {first}'s: two host apps on one host need their own"
                        );
                        self.report_once(file, &span, &message, message.clone());
                    }
                    Some(_) => {}
                    None => {
                        self.host_claims.insert(claim, address.clone());
                    }
                }
            }
        }
    }

    /// Runs the kind's own rules over the known part of a resource's properties and reports
    /// each problem at the literal the user wrote.
    pub(super) fn check_rules(&mut self, scope: &Scope, decl: &ResourceDecl, properties: &Expr) {
        let Some(node) = &decl.properties else { return };
        let known = properties.eval(&KnownOnly);
        let instance = scope.module.as_ref().map(|(i, _)| i.as_str());
        if decl.kind.provider() == "host" {
            self.check_host_claims(scope, decl, node, instance, &known);
        }
        let mut literals = Vec::new();
        secret_literals(decl.kind.props, &known, &mut Vec::new(), &mut literals);
        for path in literals {
            let (file, span) = self.locate_property(scope, decl, node, instance, &path);
            let message = format!(
                "{}: `{}` is secret and must come from a sensitive variable (`sensitive: true`), not a literal in the file",
                scope.address(&decl.key),
                path.join(".")
            );
            self.report_once(file, &span, &message, message.clone());
        }
        let value = decl.kind.normalize(&known);
        for (path, message) in (decl.kind.rules)(&value) {
            let (file, span) = self.locate_property(scope, decl, node, instance, &path);
            let (advice, list) = match (
                message.strip_prefix(crate::model::schema::WARNING),
                message.strip_prefix(crate::model::schema::NOTE),
            ) {
                (Some(advice), _) => (Some(advice), &mut self.warnings),
                (None, Some(note)) => (Some(note), &mut self.notes),
                _ => (None, &mut self.warnings),
            };
            if let Some(advice) = advice {
                let at = crate::config::Location::of(&self.files[file], &span);
                let place = at
                    .map(|l| format!("{}:{}:{}: ", l.file, l.line, l.column))
                    .unwrap_or_default();
                let text = format!("{place}{}: {advice}", scope.address(&decl.key));
                if !list.contains(&text) {
                    list.push(text);
                }
                continue;
            }
            let message = format!("{}: {message}", scope.address(&decl.key));
            self.report_once(file, &span, &message, message.clone());
        }
    }

    /// Where a property of `decl` was written: in the compose file that gave it, or below the
    /// resource's `properties`.
    fn locate_property(
        &self,
        scope: &Scope,
        decl: &ResourceDecl,
        node: &Node,
        instance: Option<&str>,
        path: &[String],
    ) -> (usize, Span) {
        self.compose_origins
            .get(&scope.address(&decl.key))
            .and_then(|o| o.locate(path))
            .unwrap_or_else(|| self.locate(scope.file, node, instance, path))
    }

    /// Reports `message` at a place once per `problem` (a value used in several places is
    /// one error, shown at its first use).
    pub(super) fn report_once(&mut self, file: usize, span: &Span, problem: &str, message: String) {
        let key = (file, format!("{:?}", span.start()), problem.to_string());
        if self.reported.insert(key) {
            self.err(file, span, message, "here");
        }
    }

    /// Where the literal at `path` below `node` was written: descends maps and lists, and
    /// follows a single `${input.…}` or `${var.…}` into the node that gave its value.
    pub(super) fn locate(
        &self,
        file: usize,
        node: &Node,
        instance: Option<&str>,
        path: &[String],
    ) -> (usize, Span) {
        let mut node = node;
        for (i, key) in path.iter().enumerate() {
            let next = match node {
                Node::Mapping(m) => m.get_node(key),
                Node::Sequence(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                Node::Scalar(s) => return self.follow(file, s, instance, &path[i..]),
            };
            match next {
                Some(n) => node = n,
                None => return (file, *node.span()),
            }
        }
        match node {
            Node::Scalar(s) => self.follow(file, s, instance, &[]),
            other => (file, *other.span()),
        }
    }

    pub(super) fn follow(
        &self,
        file: usize,
        s: &MarkedScalarNode,
        instance: Option<&str>,
        rest: &[String],
    ) -> (usize, Span) {
        let here = (file, *s.span());
        let Ok(pieces) = template::parse(s.as_str()) else {
            return here;
        };
        let [Piece::Ref { path, .. }] = pieces.as_slice() else {
            return here;
        };
        let origin = match (path[0].as_str(), instance) {
            ("input", Some(instance)) if path.len() > 1 => self
                .input_origins
                .get(&(instance.to_string(), path[1].clone())),
            ("var", None) if path.len() > 1 => {
                self.vars.get(&path[1]).and_then(|v| v.origin.as_ref())
            }
            _ => None,
        };
        let Some((origin_file, origin_node)) = origin else {
            return here;
        };
        let full: Vec<String> = path[2..].iter().chain(rest).cloned().collect();
        // An input's own node is in the root scope: its references are to variables.
        self.locate(*origin_file, origin_node, None, &full)
    }
}

/// Collects into `out` the paths of secret properties, at any depth of `props`, that `value`
/// gives as literals. A secret map (`services.web.secrets`) is checked entry by entry; an
/// entry that is the whole ARN of a Secrets Manager secret or SSM parameter names a secret
/// rather than holding one.
fn secret_literals(
    props: &[crate::model::schema::Prop],
    value: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    use crate::model::schema::Type;
    // A whole Secrets Manager or SSM parameter ARN names a secret rather than holding one;
    // anything else given literally (`arn:hunter2` included) is a secret in the file.
    let literal = |v: &Value| {
        !matches!(v, Value::Null | Value::Unknown)
            && !v.contains_sensitive()
            && !v.as_str().is_some_and(|s| {
                crate::model::grammar::is_secret_arn(s)
                    || crate::model::grammar::is_parameter_arn(s)
            })
    };
    for prop in props {
        let given = value.get(prop.name);
        path.push(prop.name.to_string());
        match (&prop.ty, given.as_map()) {
            (Type::Map(_) | Type::Keyed(..), Some(entries)) if prop.sensitive => {
                for (k, v) in entries {
                    if literal(v) {
                        let mut at = path.clone();
                        at.push(k.clone());
                        out.push(at);
                    }
                }
            }
            _ if prop.sensitive && literal(given) => out.push(path.clone()),
            _ if prop.sensitive => {}
            (Type::Object(inner), _) => secret_literals(inner, given, path, out),
            (
                Type::Map(Type::Object(inner)) | Type::Keyed(_, Type::Object(inner)),
                Some(entries),
            ) => {
                for (k, v) in entries {
                    path.push(k.clone());
                    secret_literals(inner, v, path, out);
                    path.pop();
                }
            }
            (Type::List(Type::Object(inner)), _) => {
                for (i, v) in given.as_list().unwrap_or_default().iter().enumerate() {
                    path.push(i.to_string());
                    secret_literals(inner, v, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
        path.pop();
    }
}
