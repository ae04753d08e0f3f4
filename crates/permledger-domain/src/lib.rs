//! permledger's domain core: the model of domain.md as pure functions.
//!
//! `decide(&State, &Command, &CommandMeta, &Context)` turns a command into the events it records or
//! a `Rejection`; `State::apply(&Event)` folds an event in. This crate performs no IO, has no
//! clock (time arrives in `Context`) and knows nothing of storage.

pub mod catalog;
pub mod check;
pub mod command;
pub mod decide;
pub mod event;
pub mod ids;
pub mod index;
pub mod json;
pub mod lazy;
pub mod preset;
pub mod rejection;
pub mod schema;
pub mod state;
pub mod testkit;
pub mod vecmap;

pub use catalog::{Pattern, PermissionKey};
pub use check::{Denial, Explanation, Fact};
pub use command::{Command, CommandMeta, Context, PresetName};
pub use decide::decide;
pub use event::{Event, EventMeta, EventPayload, Principal};
pub use ids::{
    InboxId, InviteId, LinkId, OrgId, RoleId, Scope, ScopeKind, Seq, TeamId, Timestamp, UserId,
};
pub use rejection::{Code, Rejection};
pub use state::State;
