//! The source's layers only point down: `auth/` and `models/` import nothing from the routes,
//! the page rendering, the JSON answers, the catchers or the crate root, and no module imports
//! (through any chain) a module that imports it back. Read from `src/` as the compiler would see
//! the `use` lines and `crate::…`/`super::…` paths, with re-exports followed to where an item
//! is defined.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The file's code without comments and without its `#[cfg(test)] mod tests`.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d as e, f}}` → `a::b`, `a::c::d`, `a::c::f`.
fn expand(text: &str) -> Vec<String> {
    let mut tree = String::new();
    let mut alias = false;
    for token in text.split_whitespace() {
        if alias {
            // The alias's own name goes; what follows it (`,` `}`) stays.
            tree.push_str(token.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
            alias = false;
        } else if token == "as" {
            alias = true;
        } else {
            tree.push_str(token);
        }
    }
    let mut out = Vec::new();
    expand_into("", &tree, &mut out);
    out
}

fn expand_into(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        let path = format!("{prefix}{tree}");
        out.push(path.trim_end_matches("::self").to_string());
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                if start < i {
                    expand_into(&head, &inner[start..i], out);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        expand_into(&head, &inner[start..], out);
    }
}

struct Tree {
    modules: BTreeSet<Module>,
    /// `(module, name)` → the path a `pub use` there points at.
    reexports: HashMap<(Module, String), String>,
}

impl Tree {
    /// The module a path from `from` lands in, following re-exports.
    fn resolve(&self, from: &Module, path: &str, depth: usize) -> Option<Module> {
        let mut parts = path.split("::").peekable();
        let mut module: Module = match *parts.peek()? {
            "crate" => {
                parts.next();
                Vec::new()
            }
            "super" => {
                let mut m = from.clone();
                while parts.peek() == Some(&"super") {
                    parts.next();
                    m.pop();
                }
                m
            }
            "self" => {
                parts.next();
                from.clone()
            }
            _ => return None,
        };
        for part in parts {
            let mut child = module.clone();
            child.push(part.to_string());
            if self.modules.contains(&child) {
                module = child;
                continue;
            }
            if let Some(target) = self.reexports.get(&(module.clone(), part.to_string())) {
                if depth < 10 {
                    return self.resolve(&module, target, depth + 1).or(Some(module));
                }
            }
            break;
        }
        Some(module)
    }
}

fn use_trees(code: &str, public: bool) -> Vec<String> {
    let mut trees = Vec::new();
    for statement in code.split(';') {
        let statement = statement.trim_start();
        let is_pub = statement.starts_with("pub ") || statement.starts_with("pub(");
        let body = statement
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ");
        if is_pub == public {
            if let Some(tree) = body.strip_prefix("use ") {
                trees.extend(expand(tree));
            }
        }
    }
    trees
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("::")
    }
}

/// Every import of the crate as module → modules, from `src/`.
fn import_graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let codes: Vec<(Module, String)> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("read source");
            (module_of(src, f), code_of(&text))
        })
        .collect();
    let mut tree = Tree {
        modules: codes.iter().map(|(m, _)| m.clone()).collect(),
        reexports: HashMap::new(),
    };
    for (module, code) in &codes {
        for path in use_trees(code, true) {
            let item = path.rsplit("::").next().unwrap_or(&path).to_string();
            let full = if path.starts_with("crate") || path.starts_with("super") {
                path
            } else {
                format!("self::{path}")
            };
            tree.reexports.insert((module.clone(), item), full);
        }
    }
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, code) in &codes {
        let mut paths = use_trees(code, false);
        for word in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
            if word.starts_with("crate::") || word.starts_with("super::") {
                paths.push(word.trim_end_matches(':').to_string());
            }
        }
        for path in paths {
            if let Some(target) = tree.resolve(module, &path, 0) {
                if &target != module {
                    graph.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    graph
}

/// A chain of imports from `start` back to itself, if there is one.
fn cycle_from(graph: &BTreeMap<Module, BTreeSet<Module>>, start: &Module) -> Option<Vec<Module>> {
    let mut stack = vec![(start.clone(), vec![start.clone()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn auth_and_models_import_nothing_from_the_layers_above() {
    let graph = import_graph(&src_dir());
    assert!(
        graph.contains_key(&vec!["auth".to_string(), "csrf".to_string()]),
        "the graph was not read: {graph:?}"
    );
    let above = ["routes", "view", "json", "catchers"];
    let mut wrong = Vec::new();
    for (from, targets) in &graph {
        if !matches!(from.first().map(String::as_str), Some("auth" | "models")) {
            continue;
        }
        for to in targets {
            if to.is_empty() || above.contains(&to[0].as_str()) {
                wrong.push(format!("{} imports {}", name(from), name(to)));
            }
        }
    }
    assert!(wrong.is_empty(), "imports pointing up: {wrong:#?}");
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = import_graph(&src_dir());
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|cycle| cycle.iter().map(name).collect::<Vec<_>>().join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_reader_finds_the_imports_it_is_meant_to() {
    // The checks above are only as good as this reader: a file that imports another through a
    // re-export, a nested brace list and `super::` must show those edges.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "mod x;\nmod y;\npub use x::Thing;\n").unwrap();
    std::fs::write(src.join("a/x.rs"), "use super::y::{self, Other};\n").unwrap();
    std::fs::write(
        src.join("a/y.rs"),
        "use crate::{b::{C as E, D}, a::Thing};\n",
    )
    .unwrap();
    std::fs::write(src.join("b.rs"), "fn f() { crate::a::Thing::new(); }\n").unwrap();
    let graph = import_graph(src);
    let m = |s: &str| -> Module { s.split("::").map(str::to_string).collect() };
    assert!(graph[&m("a::x")].contains(&m("a::y")));
    assert!(graph[&m("a::y")].contains(&m("b")));
    assert!(graph[&m("a::y")].contains(&m("a::x")), "re-export followed");
    assert!(graph[&m("b")].contains(&m("a::x")), "path in code followed");
    assert_eq!(
        cycle_from(&graph, &m("a::x")).map(|c| c.len()),
        Some(3),
        "x -> y -> x is a cycle"
    );
}
