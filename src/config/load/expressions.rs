//! Expressions: YAML nodes converted against schema types, templates, and references to
//! variables, inputs, module outputs and resources.

use super::*;

impl Loader<'_> {
    /// Converts a YAML node into an expression of the `expected` type, reporting mismatches.
    pub(super) fn convert(&mut self, scope: &Scope, node: &Node, expected: &Type) -> Typed {
        let file = scope.file;
        match node {
            Node::Scalar(s) if s.as_str().contains("${") => {
                self.convert_template(scope, s, expected)
            }
            Node::Scalar(s) => {
                let v = scalar_value(s, expected);
                let tag = tag_of_value(&v);
                if !accepts(expected, tag) {
                    self.err(
                        file,
                        s.span(),
                        format!(
                            "expected {}, found {} `{}`",
                            expected.describe(),
                            tag.describe(),
                            s.as_str()
                        ),
                        "wrong type",
                    );
                } else if let Some((_, problem)) = value_problems(expected, &v).into_iter().next() {
                    self.err(file, s.span(), problem, "not an allowed value");
                }
                (Expr::Literal(v), tag)
            }
            Node::Sequence(items) => {
                let inner = match expected {
                    Type::List(inner) => **inner,
                    Type::Any => Type::Any,
                    other => {
                        self.err(
                            file,
                            node.span(),
                            format!("expected {}, found a list", other.describe()),
                            "wrong type",
                        );
                        return (Expr::Literal(Value::Null), Tag::Any);
                    }
                };
                let items = items
                    .iter()
                    .map(|n| self.convert(scope, n, &inner).0)
                    .collect();
                (Expr::List(items), Tag::List)
            }
            Node::Mapping(map) => {
                let mut out = BTreeMap::new();
                match expected {
                    Type::Object(props) => {
                        let allowed: Vec<&str> = props.iter().map(|p| p.name).collect();
                        for (key, value) in map.iter() {
                            match props.iter().find(|p| p.name == key.as_str()) {
                                Some(prop) => {
                                    out.insert(
                                        key.as_str().to_string(),
                                        self.convert(scope, value, &prop.ty).0,
                                    );
                                }
                                None => {
                                    let f = self.files[file].clone();
                                    let e =
                                        yaml::unknown_key(&f, key, &allowed, "these properties");
                                    self.errors.push(e);
                                }
                            }
                        }
                        for prop in props.iter().filter(|p| p.required) {
                            if map.get_node(prop.name).is_none() {
                                self.err(
                                    file,
                                    node.span(),
                                    format!("missing property `{}`", prop.name),
                                    format!("add `{}`", prop.name),
                                );
                            }
                        }
                    }
                    Type::Map(inner) | Type::Keyed(_, inner) => {
                        for (key, value) in map.iter() {
                            if let Type::Keyed(grammar, _) = expected
                                && let Err(e) = grammar.parse(key.as_str())
                            {
                                self.err(
                                    file,
                                    key.span(),
                                    format!("the key {e}"),
                                    "not allowed here",
                                );
                            } else if key.as_str().chars().any(char::is_control) {
                                self.err(
                                    file,
                                    key.span(),
                                    format!(
                                        "the key {} holds a control character",
                                        crate::model::grammar::shown(key.as_str())
                                    ),
                                    "not allowed here",
                                );
                            }
                            out.insert(
                                key.as_str().to_string(),
                                self.convert(scope, value, inner).0,
                            );
                        }
                    }
                    Type::Any => {
                        for (key, value) in map.iter() {
                            out.insert(
                                key.as_str().to_string(),
                                self.convert(scope, value, &ANY).0,
                            );
                        }
                    }
                    other => {
                        self.err(
                            file,
                            node.span(),
                            format!("expected {}, found a mapping", other.describe()),
                            "wrong type",
                        );
                        return (Expr::Literal(Value::Null), Tag::Any);
                    }
                }
                (Expr::Map(out), Tag::Map)
            }
        }
    }

    pub(super) fn convert_template(
        &mut self,
        scope: &Scope,
        s: &MarkedScalarNode,
        expected: &Type,
    ) -> Typed {
        let pieces = match template::parse(s.as_str()) {
            Ok(p) => p,
            Err(e) => {
                self.err(scope.file, s.span(), e.to_string(), "bad reference");
                return (Expr::Literal(Value::Null), Tag::Any);
            }
        };
        if let [Piece::Ref { path, .. }] = pieces.as_slice() {
            let Some((expr, tag)) = self.resolve_ref(scope, s, path) else {
                return (Expr::Literal(Value::Null), Tag::Any);
            };
            if !accepts(expected, tag) {
                self.err(
                    scope.file,
                    s.span(),
                    format!(
                        "`{}` is {}, but {} is expected here",
                        s.as_str(),
                        tag.describe(),
                        expected.describe()
                    ),
                    "type mismatch",
                );
            } else if matches!(path[0].as_str(), "var" | "input") {
                self.check_referenced(scope, s, &expr, expected);
            }
            return (expr, tag);
        }
        if !accepts(expected, Tag::String) {
            self.err(
                scope.file,
                s.span(),
                format!(
                    "an interpolated string is a string, but {} is expected here",
                    expected.describe()
                ),
                "type mismatch",
            );
        }
        let mut parts = Vec::new();
        for piece in &pieces {
            match piece {
                Piece::Text(t) => parts.push(Expr::Literal(Value::str(t.clone()))),
                Piece::Ref { path, .. } => match self.resolve_ref(scope, s, path) {
                    Some((expr, _)) => parts.push(expr),
                    None => return (Expr::Literal(Value::Null), Tag::Any),
                },
            }
        }
        (Expr::Template(parts), Tag::String)
    }

    /// Resolves `${path}` in `scope` to an expression over absolute addresses.
    pub(super) fn resolve_ref(
        &mut self,
        scope: &Scope,
        s: &MarkedScalarNode,
        path: &[String],
    ) -> Option<Typed> {
        let file = scope.file;
        let head = path[0].as_str();
        let text = format!("${{{}}}", path.join("."));
        match head {
            "var" => {
                if scope.module.is_some() {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: modules cannot read variables"),
                        "use `${input.NAME}`",
                    );
                    return None;
                }
                let Some(var) = self.vars.get(&path[1]) else {
                    let known: Vec<String> = self.vars.keys().cloned().collect();
                    let e = ConfigError::at(
                        &self.files[file],
                        s.span(),
                        format!("`{text}`: no variable `{}`", path[1]),
                        "dangling reference",
                    )
                    .with_help(format!(
                        "variables: {}",
                        if known.is_empty() {
                            "(none)".into()
                        } else {
                            known.join(", ")
                        }
                    ));
                    self.errors.push(e);
                    return None;
                };
                let v = value_at(&var.value, &path[2..]);
                Some((Expr::Literal(v.clone()), tag_of_value(&v)))
            }
            "input" => {
                let Some((_, inputs)) = &scope.module else {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: inputs exist only inside modules"),
                        "use `${var.NAME}`",
                    );
                    return None;
                };
                let Some((expr, tag)) = inputs.get(&path[1]).cloned() else {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: the module declares no input `{}`", path[1]),
                        "dangling reference",
                    );
                    return None;
                };
                self.index_expr(scope, s, &text, expr, tag, &path[2..])
            }
            "module" => {
                if scope.module.is_some() {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: modules cannot refer to other modules"),
                        "pass it as an input",
                    );
                    return None;
                }
                if path.len() < 3 {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: write `${{module.INSTANCE.OUTPUT}}`"),
                        "incomplete reference",
                    );
                    return None;
                }
                if !self.instances.contains_key(&path[1]) {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: no module instance `{}`", path[1]),
                        "dangling reference",
                    );
                    return None;
                }
                if self.in_progress.contains(&path[1]) {
                    self.err(
                        file,
                        s.span(),
                        format!(
                            "`{text}`: module `{}` depends on itself through its inputs",
                            path[1]
                        ),
                        "reference cycle",
                    );
                    return None;
                }
                let outputs = self.resolve_instance(&path[1])?;
                let Some((expr, tag)) = outputs.get(&path[2]).cloned() else {
                    self.err(
                        file,
                        s.span(),
                        format!("`{text}`: module `{}` has no output `{}`", path[1], path[2]),
                        "dangling reference",
                    );
                    return None;
                };
                self.index_expr(scope, s, &text, expr, tag, &path[3..])
            }
            key => {
                let Some(kind) = scope.keys.get(key).copied() else {
                    let known: Vec<&str> = scope.keys.keys().map(String::as_str).collect();
                    let e = ConfigError::at(&self.files[file], s.span(), format!("`{text}`: no resource `{key}` here"), "dangling reference")
                        .with_help(format!(
                            "references are `${{var.NAME}}`, `${{input.NAME}}`, `${{module.INSTANCE.OUTPUT}}` or `${{KEY.ATTRIBUTE}}`; resources here: {}",
                            if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
                        ));
                    self.errors.push(e);
                    return None;
                };
                let Some(ty) = attribute_type(kind, &path[1], &path[2..]) else {
                    let mut names: Vec<&str> = kind.props.iter().map(|p| p.name).collect();
                    names.extend(kind.outputs.iter().map(|o| o.name));
                    let e = ConfigError::at(
                        &self.files[file],
                        s.span(),
                        format!(
                            "`{text}`: {} has no attribute `{}`",
                            kind.kind,
                            path[1..].join(".")
                        ),
                        "dangling reference",
                    )
                    .with_help(format!(
                        "attributes of {}: {}",
                        kind.kind,
                        names.join(", ")
                    ));
                    self.errors.push(e);
                    return None;
                };
                let reference = Reference {
                    address: scope.address(key),
                    attr: path[1].clone(),
                    path: path[2..].to_vec(),
                };
                Some((Expr::Ref(reference), tag_of_type(&ty)))
            }
        }
    }

    /// Follows the rest of a reference's path into an input's or output's expression.
    pub(super) fn index_expr(
        &mut self,
        scope: &Scope,
        s: &MarkedScalarNode,
        text: &str,
        expr: Expr,
        tag: Tag,
        rest: &[String],
    ) -> Option<Typed> {
        if rest.is_empty() {
            return Some((expr, tag));
        }
        match expr {
            Expr::Ref(mut r) => {
                r.path.extend(rest.iter().cloned());
                Some((Expr::Ref(r), Tag::Any))
            }
            Expr::Literal(v) => {
                let v = value_at(&v, rest);
                let tag = tag_of_value(&v);
                Some((Expr::Literal(v), tag))
            }
            Expr::Map(mut m) => {
                let next = m.remove(&rest[0])?;
                self.index_expr(scope, s, text, next, Tag::Any, &rest[1..])
            }
            Expr::List(mut l) => {
                let i: usize = rest[0].parse().ok()?;
                if i >= l.len() {
                    return None;
                }
                self.index_expr(scope, s, text, l.swap_remove(i), Tag::Any, &rest[1..])
            }
            Expr::Template(_) => {
                self.err(
                    scope.file,
                    s.span(),
                    format!("`{text}`: a string has no fields"),
                    "cannot index a string",
                );
                None
            }
        }
    }
}

/// Evaluates literals only: a reference to a resource is not known while loading.
pub(super) struct KnownOnly;

impl crate::model::Lookup for KnownOnly {
    fn lookup(&self, _: &Reference) -> Value {
        Value::Unknown
    }
}
