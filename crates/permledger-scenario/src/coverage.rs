//! What a set of scenario files exercises of the spec, and what it never does.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use permledger_domain::{Code, Command, EventPayload, PresetName};

use crate::format::Step;

/// Everything one or more files exercised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub commands: BTreeSet<String>,
    pub events: BTreeSet<String>,
    pub errors: BTreeSet<String>,
    pub queries: BTreeSet<String>,
    pub presets: BTreeSet<String>,
}

/// Query kinds, each with and without `at` (a diff always names two moments; verify none).
pub fn query_kinds() -> Vec<String> {
    let mut out = Vec::new();
    for k in [
        "check",
        "who_can",
        "permissions",
        "scopes",
        "members",
        "audit",
    ] {
        out.push(k.to_string());
        out.push(format!("{k} at"));
    }
    out.push("diff at".into());
    out.push("verify".into());
    out
}

impl Seen {
    pub fn command(&mut self, name: &str, command: &Command) {
        self.commands.insert(name.to_string());
        if let Command::CreateOrg { preset, .. } = command {
            self.presets.insert(preset.as_str().to_string());
        }
    }
    pub fn event(&mut self, name: &str) {
        self.events.insert(name.to_string());
    }
    pub fn error(&mut self, code: Code) {
        self.errors.insert(code.as_str().to_string());
    }
    pub fn steps(&mut self, steps: &[Step]) {
        for s in steps {
            match s {
                Step::Clock(_) | Step::Mark(_) | Step::Do(_) => {}
                other => {
                    let k = other.kind();
                    self.queries.insert(if other.has_at() && k != "diff" {
                        format!("{k} at")
                    } else if k == "diff" {
                        "diff at".to_string()
                    } else {
                        k.to_string()
                    });
                }
            }
        }
    }
    pub fn merge(&mut self, other: &Seen) {
        self.commands.extend(other.commands.iter().cloned());
        self.events.extend(other.events.iter().cloned());
        self.errors.extend(other.errors.iter().cloned());
        self.queries.extend(other.queries.iter().cloned());
        self.presets.extend(other.presets.iter().cloned());
    }

    /// The things of each category never exercised.
    pub fn missing(&self) -> Vec<(&'static str, Vec<String>)> {
        let absent = |all: Vec<String>, seen: &BTreeSet<String>| {
            all.into_iter()
                .filter(|x| !seen.contains(x))
                .collect::<Vec<_>>()
        };
        vec![
            (
                "commands",
                absent(
                    Command::TYPE_NAMES.iter().map(|s| s.to_string()).collect(),
                    &self.commands,
                ),
            ),
            (
                "event types",
                absent(
                    EventPayload::TYPE_NAMES
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    &self.events,
                ),
            ),
            (
                "error codes",
                absent(
                    Code::ALL.iter().map(|c| c.as_str().to_string()).collect(),
                    &self.errors,
                ),
            ),
            ("query kinds", absent(query_kinds(), &self.queries)),
            (
                "presets",
                absent(
                    PresetName::ALL
                        .iter()
                        .map(|p| p.as_str().to_string())
                        .collect(),
                    &self.presets,
                ),
            ),
        ]
    }

    pub fn report(&self) -> String {
        let mut out = String::new();
        let cats: [(&str, &BTreeSet<String>, usize); 5] = [
            ("commands", &self.commands, Command::TYPE_NAMES.len()),
            ("event types", &self.events, EventPayload::TYPE_NAMES.len()),
            ("error codes", &self.errors, Code::ALL.len()),
            ("query kinds", &self.queries, query_kinds().len()),
            ("presets", &self.presets, PresetName::ALL.len()),
        ];
        let missing = self.missing();
        for ((name, seen, total), (_, absent)) in cats.iter().zip(&missing) {
            let _ = writeln!(out, "{name}: {} of {total} exercised", seen.len());
            if !absent.is_empty() {
                let _ = writeln!(out, "  never: {}", absent.join(", "));
            }
        }
        out
    }
}
