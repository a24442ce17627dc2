//! Reading a compose file into located YAML nodes as Compose reads YAML: anchors, aliases and
//! merge keys (`<<: *base`) allowed, unlike converge's own files. An alias's nodes keep the
//! anchor's locations, so an error in a shared block points where it is written.

use hashlink::LinkedHashMap;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{Marker, Node, Span};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker as YamlMarker;

use crate::config::diagnostic::{ConfigError, SourceFile};

/// The most nodes aliases may expand a file to (a "billion laughs" file is refused, not
/// expanded).
const MAX_NODES: usize = 1_000_000;

/// A node being built.
enum Frame {
    Mapping {
        start: Marker,
        anchor: usize,
        entries: Vec<(MarkedScalarNode, Node)>,
        key: Option<MarkedScalarNode>,
    },
    Sequence {
        start: Marker,
        anchor: usize,
        items: Vec<Node>,
    },
}

struct Builder {
    source: usize,
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
    error: Option<(Marker, String)>,
}

fn count(node: &Node) -> usize {
    match node {
        Node::Scalar(_) => 1,
        Node::Sequence(s) => 1 + s.iter().map(count).sum::<usize>(),
        Node::Mapping(m) => 1 + m.iter().map(|(_, v)| 1 + count(v)).sum::<usize>(),
    }
}

impl Builder {
    fn marker(&self, m: YamlMarker) -> Marker {
        Marker::new(self.source, m.index(), m.line(), m.col() + 1)
    }

    fn fail(&mut self, at: Marker, why: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some((at, why.into()));
        }
    }

    /// A finished node: kept under its anchor, then given to the frame below.
    fn finish(&mut self, node: Node, anchor: usize, at: Marker) {
        self.nodes += count(&node);
        if self.nodes > MAX_NODES {
            self.fail(
                at,
                "the file expands to more than a million YAML nodes through its aliases",
            );
            return;
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping { key, entries, .. }) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => match node {
                    Node::Scalar(s) => *key = Some(s),
                    other => {
                        let at = other.span().start().copied().unwrap_or(at);
                        self.fail(at, "mapping keys must be plain strings");
                    }
                },
            },
        }
    }
}

/// Applies merge keys and refuses duplicates: explicit keys win over merged ones, and of
/// several merged mappings the first that has a key gives it (YAML's merge key type).
fn mapping(
    start: Marker,
    end: Marker,
    entries: Vec<(MarkedScalarNode, Node)>,
) -> Result<Node, (Marker, String)> {
    let mut map: LinkedHashMap<MarkedScalarNode, Node> = LinkedHashMap::new();
    let mut merged: Vec<Node> = Vec::new();
    for (k, v) in entries {
        if k.as_str() == "<<" {
            merged.push(v);
            continue;
        }
        let at = k.span().start().copied().unwrap_or(start);
        if map.contains_key(&k) {
            return Err((at, format!("duplicate key `{}`", k.as_str())));
        }
        map.insert(k, v);
    }
    for m in merged {
        let sources: Vec<Node> = match m {
            Node::Sequence(s) => s.iter().cloned().collect(),
            other => vec![other],
        };
        for source in sources {
            let Node::Mapping(source) = source else {
                let at = source.span().start().copied().unwrap_or(start);
                return Err((
                    at,
                    "a merge key (`<<`) takes a mapping or a list of mappings".into(),
                ));
            };
            for (k, v) in source.iter() {
                if !map.contains_key(k) {
                    map.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Ok(Node::from(MarkedMappingNode::new(
        Span::new_with_marks(start, end),
        map,
    )))
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: YamlMarker) {
        if self.error.is_some() {
            return;
        }
        let at = self.marker(mark);
        match ev {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.finish(node, 0, at),
                None => self.fail(at, "an alias names no anchor defined before it"),
            },
            Event::Scalar(text, _, anchor, tag) => {
                if tag.is_some() {
                    return self.fail(at, "YAML tags (such as `!reset`) are not supported");
                }
                let node = Node::from(MarkedScalarNode::new(Span::new_start(at), text));
                self.finish(node, anchor, at);
            }
            Event::SequenceStart(anchor, tag) => {
                if tag.is_some() {
                    return self.fail(at, "YAML tags (such as `!reset`) are not supported");
                }
                self.stack.push(Frame::Sequence {
                    start: at,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, tag) => {
                if tag.is_some() {
                    return self.fail(at, "YAML tags (such as `!override`) are not supported");
                }
                self.stack.push(Frame::Mapping {
                    start: at,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Sequence {
                    start,
                    anchor,
                    items,
                }) = self.stack.pop()
                {
                    let node = Node::from(MarkedSequenceNode::new(
                        Span::new_with_marks(start, at),
                        items,
                    ));
                    self.finish(node, anchor, at);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Mapping {
                    start,
                    anchor,
                    entries,
                    ..
                }) = self.stack.pop()
                {
                    match mapping(start, at, entries) {
                        Ok(node) => self.finish(node, anchor, at),
                        Err((at, why)) => self.fail(at, why),
                    }
                }
            }
        }
    }
}

/// Parses a compose file's text (registered as source `source_id`) into a located mapping.
pub fn parse(file: &SourceFile, source_id: usize) -> Result<Node, ConfigError> {
    let mut builder = Builder {
        source: source_id,
        stack: Vec::new(),
        anchors: Default::default(),
        root: None,
        nodes: 0,
        error: None,
    };
    let mut parser = Parser::new_from_str(file.text.as_str());
    if let Err(e) = parser.load(&mut builder, false) {
        let at = builder.marker(*e.marker());
        return Err(ConfigError::at(
            file,
            &Span::new_start(at),
            format!("invalid YAML: {}", e.info()),
            "here",
        ));
    }
    if let Some((at, why)) = builder.error {
        return Err(ConfigError::at(file, &Span::new_start(at), why, "here"));
    }
    match builder.root {
        Some(node @ Node::Mapping(_)) => Ok(node),
        None => Ok(Node::from(MarkedMappingNode::new_empty(Span::new_blank()))),
        Some(other) => Err(ConfigError::at(
            file,
            other.span(),
            "a compose file's top level must be a mapping",
            "here",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Node, String> {
        parse(&SourceFile::new("compose.yaml", text.to_string()), 0).map_err(|e| e.one_line())
    }

    fn at<'a>(node: &'a Node, path: &[&str]) -> &'a Node {
        path.iter().fold(node, |n, k| {
            n.as_mapping()
                .and_then(|m| m.get_node(k))
                .unwrap_or_else(|| panic!("no {k}"))
        })
    }

    #[test]
    fn anchors_aliases_and_merge_keys_are_read_as_compose_reads_them() {
        let node = load(
            "x-base: &base\n  restart: always\n  environment: &env\n    A: \"1\"\nservices:\n  api:\n    <<: *base\n    restart: \"no\"\n    image: api:1\n  worker:\n    <<: [*base]\n    environment: *env\n",
        )
        .unwrap();
        let s = |path: &[&str]| at(&node, path).as_scalar().unwrap().as_str().to_string();
        assert_eq!(s(&["services", "api", "restart"]), "no");
        assert_eq!(s(&["services", "api", "environment", "A"]), "1");
        assert_eq!(s(&["services", "worker", "restart"]), "always");
        assert_eq!(s(&["services", "worker", "environment", "A"]), "1");
        // An alias keeps the anchor's location: line 4 is where `A` is written.
        let a = at(&node, &["services", "worker", "environment", "A"]);
        assert_eq!(a.span().start().unwrap().line(), 4);
    }

    #[test]
    fn bad_yaml_is_located() {
        let e = load("services:\n  api:\n    image: a\n    image: b\n").unwrap_err();
        assert!(e.contains("compose.yaml:4:5"), "{e}");
        assert!(e.contains("duplicate key `image`"), "{e}");
        let e = load("services:\n  api: [\n").unwrap_err();
        assert!(e.contains("invalid YAML"), "{e}");
        let e = load("services: !reset {}\n").unwrap_err();
        assert!(e.contains("tags"), "{e}");
        let e = load("- a\n").unwrap_err();
        assert!(e.contains("top level must be a mapping"), "{e}");
        let e = load("a: *nothing\n").unwrap_err();
        assert!(e.contains("compose.yaml:1:"), "{e}");
    }

    #[test]
    fn alias_bombs_are_refused_not_expanded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = load(&text).unwrap_err();
        assert!(e.contains("more than a million"), "{e}");
    }
}
