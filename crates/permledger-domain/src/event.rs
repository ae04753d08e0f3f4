//! Events: what happened, in the past tense. Each type is its own struct so that the log can
//! encode, version and upcast each one separately (see `codec`).

use serde::{Deserialize, Serialize};

use crate::catalog::{Pattern, PermissionDef, PermissionKey};
use crate::command::{InviteAssignment, InviteGrant, PresetName};
use crate::ids::{
    InboxId, InviteId, LinkId, OrgId, RoleId, Scope, ScopeKind, Seq, TeamId, Timestamp, UserId,
};

/// A role as defined: its kind and the patterns it lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleDef {
    pub role: RoleId,
    pub name: String,
    pub kind: ScopeKind,
    pub permissions: Vec<Pattern>,
}

/// The default role of each scope kind, given to new members when no role is named.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Defaults {
    pub org: Option<RoleId>,
    pub team: Option<RoleId>,
    pub inbox: Option<RoleId>,
}

impl Defaults {
    pub fn get(&self, kind: ScopeKind) -> Option<&RoleId> {
        match kind {
            ScopeKind::Org => self.org.as_ref(),
            ScopeKind::Team => self.team.as_ref(),
            ScopeKind::Inbox => self.inbox.as_ref(),
        }
    }
    pub fn set(&mut self, kind: ScopeKind, role: Option<RoleId>) {
        match kind {
            ScopeKind::Org => self.org = role,
            ScopeKind::Team => self.team = role,
            ScopeKind::Inbox => self.inbox = role,
        }
    }
}

/// How a member came in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JoinedVia {
    Invite(InviteId),
    Link(LinkId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgCreated {
    pub name: String,
    pub preset: PresetName,
    pub owner: UserId,
    pub owner_role: Option<RoleId>,
    pub catalog: Vec<PermissionDef>,
    pub roles: Vec<RoleDef>,
    pub defaults: Defaults,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgRenamed {
    pub name: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DefaultRoleSet {
    pub kind: ScopeKind,
    pub role: RoleId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermissionDeclared {
    pub key: PermissionKey,
    pub kind: ScopeKind,
    pub description: String,
}
pub type RoleDefined = RoleDef;
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleChanged {
    pub role: RoleId,
    pub added: Vec<Pattern>,
    pub removed: Vec<Pattern>,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleRenamed {
    pub role: RoleId,
    pub name: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleDeleted {
    pub role: RoleId,
    /// Where its holders went; each move is also recorded as its own `role_assigned` before this.
    pub moved_to: Option<RoleId>,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamCreated {
    pub team: TeamId,
    pub name: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamRenamed {
    pub team: TeamId,
    pub name: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamDeleted {
    pub team: TeamId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InboxCreated {
    pub inbox: InboxId,
    pub team: Option<TeamId>,
    pub name: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InboxRenamed {
    pub inbox: InboxId,
    pub name: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InboxMoved {
    pub inbox: InboxId,
    pub from: Option<TeamId>,
    pub to: Option<TeamId>,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InboxDeleted {
    pub inbox: InboxId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteIssued {
    pub invite: InviteId,
    pub email: String,
    pub role: Option<RoleId>,
    pub assignments: Vec<InviteAssignment>,
    pub grants: Vec<InviteGrant>,
    pub expires_at: Option<Timestamp>,
    pub guest: bool,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteRevoked {
    pub invite: InviteId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteDeclined {
    pub invite: InviteId,
    pub user: UserId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteAccepted {
    pub invite: InviteId,
    pub user: UserId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteLinkCreated {
    pub link: LinkId,
    /// BLAKE3 of the secret token, in hex: the token itself is never stored.
    pub token_hash: String,
    pub role: Option<RoleId>,
    pub max_uses: Option<u32>,
    pub expires_at: Option<Timestamp>,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteLinkRevoked {
    pub link: LinkId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberJoined {
    pub user: UserId,
    pub role: Option<RoleId>,
    pub via: JoinedVia,
    pub guest: bool,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleAssigned {
    pub user: UserId,
    pub scope: Scope,
    pub role: RoleId,
    pub expires_at: Option<Timestamp>,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Unassigned {
    pub user: UserId,
    pub scope: Scope,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermissionGranted {
    pub user: UserId,
    pub scope: Scope,
    pub permission: PermissionKey,
    pub expires_at: Option<Timestamp>,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermissionRevoked {
    pub user: UserId,
    pub scope: Scope,
    pub permission: PermissionKey,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermissionMasked {
    pub scope: Scope,
    pub pattern: Pattern,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermissionUnmasked {
    pub scope: Scope,
    pub pattern: Pattern,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberSuspended {
    pub user: UserId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberReactivated {
    pub user: UserId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberRemoved {
    pub user: UserId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberLeft {
    pub user: UserId,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OwnershipTransferred {
    pub from: UserId,
    pub to: UserId,
    pub former_owner_role: Option<RoleId>,
}

/// Declares the payload enum once, with its type names, so that names, JSON and codec agree.
macro_rules! events {
    ($($variant:ident($ty:ty) = $name:literal,)*) => {
        /// What one event says happened. JSON: `{"type": "role_assigned", ...fields}`.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum EventPayload {
            $($variant($ty),)*
        }

        /// One object per event type, its fields and its `type` together: utoipa's derive
        /// writes each as `allOf` of the payload and the tag, which generated clients do not read.
        impl utoipa::PartialSchema for EventPayload {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                let mut one = utoipa::openapi::schema::OneOfBuilder::new();
                $(one = one.item(crate::schema::tagged(
                    <$ty as utoipa::PartialSchema>::schema(),
                    "type",
                    $name,
                ));)*
                one.into()
            }
        }

        impl utoipa::ToSchema for EventPayload {
            fn schemas(
                out: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)>,
            ) {
                $(<$ty as utoipa::ToSchema>::schemas(out);)*
            }
        }

        impl EventPayload {
            /// The event type's name, as in scenarios.md's vocabulary.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(EventPayload::$variant(_) => $name,)*
                }
            }
            /// Every event type name.
            pub const TYPE_NAMES: &'static [&'static str] = &[$($name,)*];
        }

        /// Calls `$apply!(Variant, Type, "name")` for each event type; the codec builds on it.
        #[macro_export]
        macro_rules! for_each_event_type {
            ($apply:ident) => {
                $($apply!($variant, $ty, $name);)*
            };
        }
    };
}

events! {
    OrgCreated(OrgCreated) = "org_created",
    OrgRenamed(OrgRenamed) = "org_renamed",
    DefaultRoleSet(DefaultRoleSet) = "default_role_set",
    PermissionDeclared(PermissionDeclared) = "permission_declared",
    RoleDefined(RoleDefined) = "role_defined",
    RoleChanged(RoleChanged) = "role_changed",
    RoleRenamed(RoleRenamed) = "role_renamed",
    RoleDeleted(RoleDeleted) = "role_deleted",
    TeamCreated(TeamCreated) = "team_created",
    TeamRenamed(TeamRenamed) = "team_renamed",
    TeamDeleted(TeamDeleted) = "team_deleted",
    InboxCreated(InboxCreated) = "inbox_created",
    InboxRenamed(InboxRenamed) = "inbox_renamed",
    InboxMoved(InboxMoved) = "inbox_moved",
    InboxDeleted(InboxDeleted) = "inbox_deleted",
    InviteIssued(InviteIssued) = "invite_issued",
    InviteRevoked(InviteRevoked) = "invite_revoked",
    InviteDeclined(InviteDeclined) = "invite_declined",
    InviteAccepted(InviteAccepted) = "invite_accepted",
    InviteLinkCreated(InviteLinkCreated) = "invite_link_created",
    InviteLinkRevoked(InviteLinkRevoked) = "invite_link_revoked",
    MemberJoined(MemberJoined) = "member_joined",
    RoleAssigned(RoleAssigned) = "role_assigned",
    Unassigned(Unassigned) = "unassigned",
    PermissionGranted(PermissionGranted) = "permission_granted",
    PermissionRevoked(PermissionRevoked) = "permission_revoked",
    PermissionMasked(PermissionMasked) = "permission_masked",
    PermissionUnmasked(PermissionUnmasked) = "permission_unmasked",
    MemberSuspended(MemberSuspended) = "member_suspended",
    MemberReactivated(MemberReactivated) = "member_reactivated",
    MemberRemoved(MemberRemoved) = "member_removed",
    MemberLeft(MemberLeft) = "member_left",
    OwnershipTransferred(OwnershipTransferred) = "ownership_transferred",
}

/// Who submitted a command, beside the actor it names: an API token (its id and name, never its
/// secret), or a program on the data folder itself (the CLI, or an embedding program).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Principal {
    /// A program on the data folder: the CLI, or one embedding the ledger.
    #[default]
    Local,
    /// A bearer token of the HTTP API.
    Token {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Local => f.write_str("local"),
            Principal::Token { id, name: Some(n) } => write!(f, "token {n} ({id})"),
            Principal::Token { id, name: None } => write!(f, "token {id}"),
        }
    }
}

/// Everything recorded around a payload. `seq` and `org_version` are given by the log's writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventMeta {
    /// Global position, from 1, without gaps.
    pub seq: Seq,
    pub org: OrgId,
    /// The org's version after this event: its n-th event.
    pub org_version: u64,
    /// A UUIDv7, made by the log's writer.
    pub event_id: uuid::Uuid,
    pub recorded_at: Timestamp,
    pub actor: UserId,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    /// Who submitted the command; absent from events recorded before principals were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// The event of the same command this one follows from (a role taken on accepting an
    /// invite follows from the acceptance; a holder moved by a role's deletion, from the
    /// deletion); absent for a command's own event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Seq>,
}

/// One event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub meta: EventMeta,
    pub payload: EventPayload,
}

impl EventPayload {
    /// The user this event is about, if any (the audit log's `user` filter).
    pub fn subject_user(&self) -> Option<&UserId> {
        use EventPayload::*;
        match self {
            OrgCreated(e) => Some(&e.owner),
            InviteDeclined(e) => Some(&e.user),
            InviteAccepted(e) => Some(&e.user),
            MemberJoined(e) => Some(&e.user),
            RoleAssigned(e) => Some(&e.user),
            Unassigned(e) => Some(&e.user),
            PermissionGranted(e) => Some(&e.user),
            PermissionRevoked(e) => Some(&e.user),
            MemberSuspended(e) => Some(&e.user),
            MemberReactivated(e) => Some(&e.user),
            MemberRemoved(e) => Some(&e.user),
            MemberLeft(e) => Some(&e.user),
            OwnershipTransferred(e) => Some(&e.to),
            _ => None,
        }
    }

    /// Every user this event is about: a transfer concerns both sides.
    pub fn subject_users(&self) -> Vec<&UserId> {
        match self {
            EventPayload::OwnershipTransferred(e) => vec![&e.from, &e.to],
            other => other.subject_user().into_iter().collect(),
        }
    }

    /// The scope this event is about (the audit log's `scope` filter); the org for org-wide events.
    pub fn scope(&self) -> Scope {
        use EventPayload::*;
        match self {
            TeamCreated(e) => Scope::Team(e.team.clone()),
            TeamRenamed(e) => Scope::Team(e.team.clone()),
            TeamDeleted(e) => Scope::Team(e.team.clone()),
            InboxCreated(e) => Scope::Inbox(e.inbox.clone()),
            InboxRenamed(e) => Scope::Inbox(e.inbox.clone()),
            InboxMoved(e) => Scope::Inbox(e.inbox.clone()),
            InboxDeleted(e) => Scope::Inbox(e.inbox.clone()),
            RoleAssigned(e) => e.scope.clone(),
            Unassigned(e) => e.scope.clone(),
            PermissionGranted(e) => e.scope.clone(),
            PermissionRevoked(e) => e.scope.clone(),
            PermissionMasked(e) => e.scope.clone(),
            PermissionUnmasked(e) => e.scope.clone(),
            _ => Scope::Org,
        }
    }
}
