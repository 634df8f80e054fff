//! The code a skeleton provides is the solution's code, token for token.
//!
//! Skeleton (`exercises/<id>/src`) and solution (`solutions/<id>/src`) are
//! two copies by design: the student edits one, the grader's tests run the
//! other. The parts the student does not write must not drift apart, or the
//! solution proves something the skeleton does not ship.
//!
//! # The marker convention
//!
//! In a skeleton, an item is *provided* when
//! - its doc comment contains `(Provided.)` — or `(Provided: …)`, which says
//!   which parts (the item itself is still compared whole), or
//! - it stands in a *provided section*: a section header is one or more
//!   `// ` comment lines between two rule lines (`// ----…`), and a header
//!   that contains `(Provided.)` makes every item up to the next header
//!   provided — except an item whose doc comment starts with `TODO`. This
//!   covers what carries no doc comment of its own (`impl Display for
//!   Failure`, a `Command` enum).
//!
//! A method inside an `impl` block that is not provided as a whole is
//! provided when its own doc comment says so. Every function whose body
//! calls `todo!()` is the student's: its doc comment starts with `TODO N`
//! (`TODO 3 —`, `TODO 1a —`), numbered in the order the module docs suggest.
//! Any other spelling of the marker (`(provided)`) is flagged, so the
//! convention stays one.
//!
//! A provided item must exist in the solution's file of the same path —
//! same kind and name; an `impl` by its trait and type; a method as
//! `Type::name` — and have the same tokens once doc comments and lint
//! attributes (`allow`, `expect`, `warn`, `deny`) are taken out. Comments
//! and formatting do not count; `derive`, `cfg` and the code do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipc_lab_tests::{registry, root};
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{ImplItem, Item};

/// The marker in a doc comment or section header.
const PROVIDED: &str = "(Provided";
const PROVIDED_SECTION: &str = "(Provided.)";

/// An item of a file, by the name the comparison matches it on.
struct Named {
    key: String,
    /// Doc comment lines, joined.
    docs: String,
    tokens: String,
    /// Whether its code calls `todo!()` anywhere.
    has_todo: bool,
}

/// The items of one section of a file, with whether its header marks it
/// provided.
struct Section {
    provided: bool,
    items: Vec<Item>,
}

/// Split `text` at its section headers and parse each part. A header is a
/// run of `// ` lines between two `// ---` rules.
fn sections(path: &Path, text: &str) -> Result<Vec<Section>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let is_rule = |l: &str| l.trim_start().starts_with("// ---");
    // (first line of the part, whether the header above it says provided)
    let mut parts = vec![(0usize, false)];
    let mut i = 0;
    while i < lines.len() {
        if is_rule(lines[i]) {
            if let Some(close) = (i + 1..lines.len()).find(|&j| is_rule(lines[j])) {
                let header = lines[i + 1..close].join(" ");
                if (i + 1..close).all(|j| lines[j].trim_start().starts_with("//")) && close > i + 1 {
                    parts.push((close + 1, header.contains(PROVIDED_SECTION)));
                    i = close + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    let mut out = Vec::new();
    for (n, &(start, provided)) in parts.iter().enumerate() {
        // The header lines of the next part are comments: leaving them in
        // this part's text does no harm.
        let end = parts.get(n + 1).map_or(lines.len(), |&(next, _)| next);
        let chunk = lines[start..end].join("\n");
        let file = syn::parse_file(&chunk).map_err(|e| {
            format!("{}: the section from line {} does not parse on its own ({e})", path.display(), start + 1)
        })?;
        out.push(Section { provided, items: file.items });
    }
    Ok(out)
}

fn docs(attrs: &[syn::Attribute]) -> String {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `tokens` without doc comments and lint attributes, as one string.
fn strip(tokens: TokenStream) -> String {
    fn walk(tokens: TokenStream) -> TokenStream {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out = Vec::with_capacity(trees.len());
        let mut i = 0;
        while i < trees.len() {
            if let TokenTree::Punct(p) = &trees[i] {
                if p.as_char() == '#' {
                    let inner = matches!(trees.get(i + 1), Some(TokenTree::Punct(b)) if b.as_char() == '!');
                    let at = if inner { i + 2 } else { i + 1 };
                    if let Some(TokenTree::Group(g)) = trees.get(at) {
                        let name = g.stream().into_iter().next().map(|t| t.to_string()).unwrap_or_default();
                        if ["doc", "allow", "expect", "warn", "deny"].contains(&name.as_str()) {
                            i = at + 1;
                            continue;
                        }
                    }
                }
            }
            out.push(match &trees[i] {
                TokenTree::Group(g) => {
                    let mut group = proc_macro2::Group::new(g.delimiter(), walk(g.stream()));
                    group.set_span(g.span());
                    TokenTree::Group(group)
                }
                t => t.clone(),
            });
            i += 1;
        }
        out.into_iter().collect()
    }
    walk(tokens).to_string()
}

fn has_todo(tokens: &TokenStream) -> bool {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    trees.iter().enumerate().any(|(i, t)| match t {
        TokenTree::Ident(id) => {
            id == "todo" && matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!')
        }
        TokenTree::Group(g) => has_todo(&g.stream()),
        _ => false,
    })
}

fn named(key: String, attrs: &[syn::Attribute], item: &impl ToTokens) -> Named {
    let tokens = item.to_token_stream();
    Named { key, docs: docs(attrs), has_todo: has_todo(&tokens), tokens: strip(tokens) }
}

/// `impl Type` or `impl Trait for Type`, and the type alone.
fn impl_names(i: &syn::ItemImpl) -> (String, String) {
    let ty = strip(i.self_ty.to_token_stream());
    let key = match &i.trait_ {
        Some((_, path, _)) => format!("impl {} for {ty}", strip(path.to_token_stream())),
        None => format!("impl {ty}"),
    };
    (key, ty)
}

/// The item itself, if it has a name to be matched on.
fn item_named(item: &Item) -> Option<Named> {
    let (kind, ident, attrs) = match item {
        Item::Fn(i) => ("fn", &i.sig.ident, &i.attrs),
        Item::Struct(i) => ("struct", &i.ident, &i.attrs),
        Item::Enum(i) => ("enum", &i.ident, &i.attrs),
        Item::Const(i) => ("const", &i.ident, &i.attrs),
        Item::Static(i) => ("static", &i.ident, &i.attrs),
        Item::Type(i) => ("type", &i.ident, &i.attrs),
        Item::Trait(i) => ("trait", &i.ident, &i.attrs),
        Item::Union(i) => ("union", &i.ident, &i.attrs),
        Item::Mod(i) => ("mod", &i.ident, &i.attrs),
        Item::Impl(i) => return Some(named(impl_names(i).0, &i.attrs, i)),
        _ => return None,
    };
    Some(named(format!("{kind} {ident}"), attrs, item))
}

/// The named members of an `impl` block: `Type::name`.
fn impl_members(i: &syn::ItemImpl) -> Vec<Named> {
    let ty = impl_names(i).1;
    i.items
        .iter()
        .filter_map(|m| match m {
            ImplItem::Fn(f) => Some(named(format!("{ty}::{}", f.sig.ident), &f.attrs, f)),
            ImplItem::Const(c) => Some(named(format!("{ty}::{}", c.ident), &c.attrs, c)),
            ImplItem::Type(t) => Some(named(format!("{ty}::{}", t.ident), &t.attrs, t)),
            _ => None,
        })
        .collect()
}

/// Every named item of a file and every member of its `impl` blocks, by key
/// (several inherent `impl Type` blocks share a key).
fn all_named(sections: &[Section]) -> BTreeMap<String, Vec<Named>> {
    let mut out: BTreeMap<String, Vec<Named>> = BTreeMap::new();
    for item in sections.iter().flat_map(|s| &s.items) {
        if let Some(n) = item_named(item) {
            out.entry(n.key.clone()).or_default().push(n);
        }
        if let Item::Impl(i) = item {
            for m in impl_members(i) {
                out.entry(m.key.clone()).or_default().push(m);
            }
        }
    }
    out
}

/// What the skeleton `sections` provide, and the problems with its markers.
fn provided_items(file: &str, sections: &[Section]) -> (Vec<Named>, Vec<String>) {
    let mut provided = Vec::new();
    let mut problems = Vec::new();
    let todo_marked =
        |n: &Named| n.docs.strip_prefix("TODO ").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()));
    let check_todo = |n: &Named, problems: &mut Vec<String>| {
        if n.has_todo && !todo_marked(n) {
            problems
                .push(format!("{file}: `{}` has a `todo!()` but its doc comment does not start with `TODO N`", n.key));
        }
        if n.has_todo && n.docs.contains(PROVIDED) {
            problems.push(format!("{file}: `{}` is marked provided but has a `todo!()`", n.key));
        }
    };
    for section in sections {
        for item in &section.items {
            let Some(n) = item_named(item) else { continue };
            let members = if let Item::Impl(i) = item { impl_members(i) } else { Vec::new() };
            let whole = n.docs.contains(PROVIDED) || (section.provided && !todo_marked(&n));
            if whole && !members.iter().any(|m| m.has_todo) {
                if !matches!(item, Item::Impl(_)) {
                    check_todo(&n, &mut problems);
                }
                for m in &members {
                    check_todo(m, &mut problems);
                }
                provided.push(n);
                continue;
            }
            if !matches!(item, Item::Impl(_)) {
                check_todo(&n, &mut problems);
            }
            for m in members {
                check_todo(&m, &mut problems);
                if m.docs.contains(PROVIDED) {
                    provided.push(m);
                }
            }
        }
    }
    (provided, problems)
}

/// Where two token strings first differ, with a little of each around it.
fn first_difference(skeleton: &str, solution: &str) -> String {
    let (a, b): (Vec<char>, Vec<char>) = (skeleton.chars().collect(), solution.chars().collect());
    let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let window = |s: &[char]| {
        let (from, to) = (at.saturating_sub(60).min(s.len()), (at + 60).min(s.len()));
        format!("…{}…", s[from..to].iter().collect::<String>())
    };
    format!("\n      skeleton: {}\n      solution: {}", window(&a), window(&b))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Comments whose marker is spelt otherwise than the convention.
fn misspelt_markers(file: &str, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let lower = l.to_lowercase();
            lower.contains("(provided") && !l.contains(PROVIDED_SECTION) && !l.contains("(Provided:")
        })
        .map(|(n, l)| format!("{file}:{}: marker spelt otherwise than `(Provided.)`: {}", n + 1, l.trim()))
        .collect()
}

#[test]
fn provided_code_is_the_solutions() {
    let mut problems = Vec::new();
    let mut compared = 0;
    for ex in registry() {
        let skeleton_src = root().join("exercises").join(ex.id).join("src");
        for path in rust_files(&skeleton_src) {
            let rel = path.strip_prefix(root()).unwrap().display().to_string();
            let solution_path =
                root().join("solutions").join(ex.id).join("src").join(path.strip_prefix(&skeleton_src).unwrap());
            let text = std::fs::read_to_string(&path).unwrap();
            problems.extend(misspelt_markers(&rel, &text));
            let skeleton = match sections(&path, &text) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            let (provided, marker_problems) = provided_items(&rel, &skeleton);
            problems.extend(marker_problems);
            if provided.is_empty() {
                problems.push(format!("{rel}: nothing is marked `(Provided.)`"));
                continue;
            }
            let Ok(solution_text) = std::fs::read_to_string(&solution_path) else {
                problems.push(format!("{rel}: no solution file {}", solution_path.display()));
                continue;
            };
            let solution = match sections(&solution_path, &solution_text) {
                Ok(s) => all_named(&s),
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            for item in provided {
                compared += 1;
                match solution.get(&item.key) {
                    None => problems.push(format!("{rel}: provided `{}` is not in the solution", item.key)),
                    Some(candidates) if candidates.iter().any(|c| c.tokens == item.tokens) => {}
                    Some(candidates) => problems.push(format!(
                        "{rel}: provided `{}` differs from the solution's:{}",
                        item.key,
                        first_difference(&item.tokens, &candidates[0].tokens)
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n  {}", problems.len(), problems.join("\n  "));
    assert!(compared > 0, "no provided item compared");
}
