//! A ledger in a few lines, for tests of this crate and the ones above it: decides commands against
//! the state, stamps the events as a log would, and folds them in. Not a log: nothing is stored.

use crate::command::{Command, CommandMeta, Context};
use crate::decide::decide;
use crate::event::Event;
use crate::ids::{Timestamp, UserId};
use crate::rejection::Rejection;
use crate::state::State;

/// The opening many stories share: ann creates `acme` (teaminbox) with team `support` and its
/// inbox `billing`, and invites mo as org moderator, who accepts. Extend it with
/// `[&ACME_WITH_MODERATOR[..], &[...]].concat()`.
pub const ACME_WITH_MODERATOR: [(&str, &str); 5] = [
    (
        "ann",
        r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
    ),
    (
        "ann",
        r#"{"type":"create_team","org":"acme","team":"support"}"#,
    ),
    (
        "ann",
        r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support"}"#,
    ),
    (
        "ann",
        r#"{"type":"invite","org":"acme","invite":"a","email":"mo@x.test","role":"org_moderator"}"#,
    ),
    (
        "mo",
        r#"{"type":"accept_invite","org":"acme","invite":"a"}"#,
    ),
];

#[derive(Debug, Clone)]
pub struct TestLedger {
    pub state: State,
    pub events: Vec<Event>,
    pub now: Timestamp,
    tokens: u64,
    link_token: String,
}

impl Default for TestLedger {
    fn default() -> Self {
        TestLedger {
            state: State::default(),
            events: Vec::new(),
            now: Timestamp::parse("2026-03-01T09:00:00Z").unwrap_or(Timestamp::from_micros(0)),
            tokens: 0,
            link_token: String::new(),
        }
    }
}

impl TestLedger {
    /// A ledger that ran every step of a story; a refused step is a broken test, so it panics.
    #[allow(clippy::panic)]
    pub fn from_story(steps: &[(&str, &str)]) -> TestLedger {
        let mut l = TestLedger::default();
        for (actor, cmd) in steps {
            if let Err(e) = l.run(actor, cmd) {
                panic!("story step {cmd} by {actor} was refused: {e}");
            }
        }
        l
    }

    /// Runs a command given as scenario JSON; panics only on malformed JSON, which is a bug in the test.
    pub fn run(&mut self, actor: &str, json: &str) -> Result<Vec<Event>, Rejection> {
        let cmd: Command = match serde_json::from_str(json) {
            Ok(c) => c,
            Err(e) => {
                return Err(Rejection::invalid(format!(
                    "test command does not parse: {e}"
                )))
            }
        };
        let actor = UserId::new(actor).map_err(|e| Rejection::invalid(e.to_string()))?;
        self.execute(&cmd, &CommandMeta::new(actor))
    }

    /// Decides, stamps and folds one command. A refusal leaves everything as it was.
    pub fn execute(&mut self, cmd: &Command, meta: &CommandMeta) -> Result<Vec<Event>, Rejection> {
        self.tokens += 1;
        let ctx = Context {
            now: self.now,
            link_token: Some(format!("token-{}", self.tokens)),
        };
        let payloads = decide(&self.state, cmd, meta, &ctx)?;
        if matches!(cmd, Command::CreateInviteLink { .. }) {
            self.link_token = ctx.link_token.clone().unwrap_or_default();
        }
        let first_version = self.state.org(cmd.org()).map_or(0, |o| o.version) + 1;
        let mut out = Vec::with_capacity(payloads.len());
        let causes = crate::decide::causes(&payloads, self.events.len() as u64 + 1);
        for ((version, payload), cause) in (first_version..).zip(payloads).zip(causes) {
            let event = Event {
                meta: meta.event_meta(
                    cmd.org(),
                    self.events.len() as u64 + 1,
                    version,
                    uuid::Uuid::nil(),
                    self.now,
                    cause,
                ),
                payload,
            };
            self.state.apply(&event);
            self.events.push(event.clone());
            out.push(event);
        }
        Ok(out)
    }

    /// The token the last `create_invite_link` was given.
    pub fn last_token(&self) -> String {
        self.link_token.clone()
    }

    /// Moves the clock forward by whole seconds.
    pub fn advance(&mut self, seconds: i64) {
        self.now = Timestamp::from_micros(self.now.micros() + seconds * 1_000_000);
    }

    /// A fresh fold of every event so far: what a rebuild from the log would give.
    pub fn replayed(&self) -> State {
        let mut s = State::default();
        for e in &self.events {
            s.apply(e);
        }
        s
    }
}
