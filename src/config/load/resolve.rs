//! Resolving: module instances with their inputs, and resources with their properties, into
//! the desired graph.

use super::*;

impl Loader<'_> {
    /// Resolves a module instance once: inputs, resources and outputs.
    pub(super) fn resolve_instance(&mut self, instance: &str) -> Option<BTreeMap<String, Typed>> {
        if let Some(outputs) = self.instance_outputs.get(instance) {
            return Some(outputs.clone());
        }
        let decl = self.instances.get(instance)?.clone();
        let def = self.module_defs.get(&decl.source).cloned().flatten()?;
        if !self.in_progress.insert(instance.to_string()) {
            return None;
        }
        let root_file = 0;
        let f = self.files[root_file].clone();
        let root_scope = self.root_scope();
        let mut inputs: BTreeMap<String, Typed> = BTreeMap::new();
        let given = match &decl.inputs {
            Some(node) => yaml::expect_mapping(&f, node, "`inputs`", &mut self.errors).cloned(),
            None => None,
        };
        if let Some(given) = &given {
            for (key, node) in given.iter() {
                match def.inputs.get(key.as_str()) {
                    Some(spec) => {
                        self.input_origins.insert(
                            (instance.to_string(), key.as_str().to_string()),
                            (root_file, node.clone()),
                        );
                        let (expr, tag) = self.convert(&root_scope, node, &spec.ty);
                        let expr = match (spec.sensitive, expr) {
                            (true, Expr::Literal(v)) => Expr::Literal(v.into_sensitive()),
                            (_, e) => e,
                        };
                        inputs.insert(key.as_str().to_string(), (expr, tag));
                    }
                    None => {
                        let allowed: Vec<&str> = def.inputs.keys().map(String::as_str).collect();
                        let e = yaml::unknown_key(
                            &f,
                            key,
                            &allowed,
                            &format!("inputs of module `{}`", decl.source),
                        );
                        self.errors.push(e);
                    }
                }
            }
        }
        for (name, spec) in &def.inputs {
            if inputs.contains_key(name) {
                continue;
            }
            match &spec.default {
                Some(v) => {
                    let v = if spec.sensitive {
                        v.clone().into_sensitive()
                    } else {
                        v.clone()
                    };
                    inputs.insert(name.clone(), (Expr::Literal(v.clone()), tag_of_value(&v)));
                }
                None => {
                    let span = given.as_ref().map(|g| *g.span()).unwrap_or(decl.key_span);
                    self.err(
                        root_file,
                        &span,
                        format!(
                            "module `{instance}` (source `{}`) is missing input `{name}`",
                            decl.source
                        ),
                        format!("add `{name}` here"),
                    );
                }
            }
        }
        let scope = Scope {
            file: def.file,
            module: Some((instance.to_string(), inputs)),
            keys: Arc::new(
                def.resources
                    .iter()
                    .map(|d| (d.key.clone(), d.kind))
                    .collect(),
            ),
        };
        for r in &def.resources {
            self.resolve_resource(&scope, r);
        }
        let mut outputs = BTreeMap::new();
        for (name, node) in &def.outputs {
            let typed = self.convert(&scope, node, &ANY);
            outputs.insert(name.clone(), typed);
        }
        self.in_progress.remove(instance);
        self.instance_outputs
            .insert(instance.to_string(), outputs.clone());
        Some(outputs)
    }

    pub(super) fn root_scope(&self) -> Scope {
        Scope {
            file: 0,
            module: None,
            keys: Arc::clone(&self.root_keys),
        }
    }

    pub(super) fn resolve_resource(&mut self, scope: &Scope, decl: &ResourceDecl) {
        let address = scope.address(&decl.key);
        let mut properties = match &decl.properties {
            Some(node) => self.convert(scope, node, &Type::Object(decl.kind.props)).0,
            None => {
                if let Some(p) = decl.kind.props.iter().find(|p| p.required) {
                    self.err(
                        scope.file,
                        &decl.key_span,
                        format!(
                            "resource `{address}` ({}) is missing property `{}`",
                            decl.kind.kind, p.name
                        ),
                        "no `properties`",
                    );
                }
                Expr::Map(BTreeMap::new())
            }
        };
        // A compose file with errors gives no services: rules would only repeat its errors.
        let errors = self.errors.len();
        if decl.kind.kind == "host.app" {
            self.compose_source(scope, decl, &mut properties);
        }
        if self.errors.len() == errors {
            self.check_rules(scope, decl, &properties);
        }
        let usage = match &decl.usage {
            Some(node) => self.convert(scope, node, &Type::Object(USAGE_PROPS)).0,
            None => Expr::Literal(crate::model::Value::Null),
        };
        let mut depends_on = properties.dependencies();
        if let Some(node) = &decl.depends_on {
            match node {
                Node::Sequence(items) => {
                    for item in items.iter() {
                        match item.as_scalar() {
                            Some(s) if scope.keys.contains_key(s.as_str()) => {
                                depends_on.insert(scope.address(s.as_str()));
                            }
                            Some(s) => self.err(
                                scope.file,
                                s.span(),
                                format!(
                                    "`depends_on` names `{}`, which is not a resource here",
                                    s.as_str()
                                ),
                                "unknown resource",
                            ),
                            None => self.err(
                                scope.file,
                                item.span(),
                                "`depends_on` takes resource keys",
                                "expected a key",
                            ),
                        }
                    }
                }
                other => self.err(
                    scope.file,
                    other.span(),
                    "`depends_on` must be a list of resource keys",
                    "expected a list",
                ),
            }
        }
        let location = crate::config::Location::of(&self.files[scope.file], &decl.key_span);
        self.spans
            .insert(address.clone(), (scope.file, decl.key_span));
        self.resources.insert(
            address.clone(),
            DesiredResource {
                address,
                kind: decl.kind,
                properties,
                usage,
                depends_on,
                location,
            },
        );
    }
}
