//! Commands: what an actor asks the ledger to do, in the imperative. JSON shape is scenarios.md's.

use serde::{Deserialize, Serialize};

use crate::catalog::{Pattern, PermissionKey};
use crate::event::{EventMeta, Principal};
use crate::ids::{
    InboxId, InviteId, LinkId, OrgId, RoleId, Scope, ScopeKind, Seq, TeamId, Timestamp, UserId,
};

/// The presets `create_org` knows; each is a data file under `fixtures/presets/`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PresetName {
    Teaminbox,
    Reply,
    Replypad,
    Sms,
    Telephony,
    Blank,
}

impl PresetName {
    pub const ALL: [PresetName; 6] = [
        PresetName::Teaminbox,
        PresetName::Reply,
        PresetName::Replypad,
        PresetName::Sms,
        PresetName::Telephony,
        PresetName::Blank,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PresetName::Teaminbox => "teaminbox",
            PresetName::Reply => "reply",
            PresetName::Replypad => "replypad",
            PresetName::Sms => "sms",
            PresetName::Telephony => "telephony",
            PresetName::Blank => "blank",
        }
    }
}

/// A role to give on a team or inbox when an invite is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteAssignment {
    pub scope: Scope,
    pub role: RoleId,
    pub expires_at: Option<Timestamp>,
}

/// A direct permission to grant when an invite is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteGrant {
    pub scope: Scope,
    pub permission: PermissionKey,
    pub expires_at: Option<Timestamp>,
}

/// Every command of domain.md. Each names its org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    CreateOrg {
        org: OrgId,
        name: Option<String>,
        preset: PresetName,
    },
    RenameOrg {
        org: OrgId,
        name: String,
    },
    SetDefaultRole {
        org: OrgId,
        kind: ScopeKind,
        role: RoleId,
    },
    DeclarePermission {
        org: OrgId,
        key: PermissionKey,
        kind: ScopeKind,
        description: Option<String>,
    },
    DefineRole {
        org: OrgId,
        role: RoleId,
        name: Option<String>,
        kind: ScopeKind,
        permissions: Vec<Pattern>,
    },
    ChangeRole {
        org: OrgId,
        role: RoleId,
        #[serde(default)]
        add: Vec<Pattern>,
        #[serde(default)]
        remove: Vec<Pattern>,
    },
    RenameRole {
        org: OrgId,
        role: RoleId,
        name: String,
    },
    DeleteRole {
        org: OrgId,
        role: RoleId,
        move_to: Option<RoleId>,
    },
    CreateTeam {
        org: OrgId,
        team: TeamId,
        name: Option<String>,
    },
    RenameTeam {
        org: OrgId,
        team: TeamId,
        name: String,
    },
    DeleteTeam {
        org: OrgId,
        team: TeamId,
    },
    CreateInbox {
        org: OrgId,
        inbox: InboxId,
        team: Option<TeamId>,
        name: Option<String>,
    },
    RenameInbox {
        org: OrgId,
        inbox: InboxId,
        name: String,
    },
    MoveInbox {
        org: OrgId,
        inbox: InboxId,
        team: Option<TeamId>,
    },
    DeleteInbox {
        org: OrgId,
        inbox: InboxId,
    },
    Invite {
        org: OrgId,
        invite: InviteId,
        email: String,
        role: Option<RoleId>,
        #[serde(default, deserialize_with = "crate::json::objects")]
        assignments: Vec<InviteAssignment>,
        #[serde(default, deserialize_with = "crate::json::objects")]
        grants: Vec<InviteGrant>,
        expires_at: Option<Timestamp>,
        #[serde(default)]
        guest: bool,
    },
    RevokeInvite {
        org: OrgId,
        invite: InviteId,
    },
    DeclineInvite {
        org: OrgId,
        invite: InviteId,
    },
    AcceptInvite {
        org: OrgId,
        invite: InviteId,
    },
    CreateInviteLink {
        org: OrgId,
        link: LinkId,
        role: Option<RoleId>,
        max_uses: Option<u32>,
        expires_at: Option<Timestamp>,
    },
    RevokeInviteLink {
        org: OrgId,
        link: LinkId,
    },
    JoinByLink {
        org: OrgId,
        token: String,
    },
    AssignRole {
        org: OrgId,
        user: UserId,
        scope: Scope,
        role: RoleId,
        expires_at: Option<Timestamp>,
    },
    Unassign {
        org: OrgId,
        user: UserId,
        scope: Scope,
    },
    Grant {
        org: OrgId,
        user: UserId,
        scope: Scope,
        permission: PermissionKey,
        expires_at: Option<Timestamp>,
    },
    Revoke {
        org: OrgId,
        user: UserId,
        scope: Scope,
        permission: PermissionKey,
    },
    Mask {
        org: OrgId,
        scope: Scope,
        pattern: Pattern,
    },
    Unmask {
        org: OrgId,
        scope: Scope,
        pattern: Pattern,
    },
    SuspendMember {
        org: OrgId,
        user: UserId,
    },
    ReactivateMember {
        org: OrgId,
        user: UserId,
    },
    RemoveMember {
        org: OrgId,
        user: UserId,
    },
    LeaveOrg {
        org: OrgId,
    },
    TransferOwnership {
        org: OrgId,
        to: UserId,
        former_owner_role: Option<RoleId>,
    },
}

impl Command {
    pub fn org(&self) -> &OrgId {
        use Command::*;
        match self {
            CreateOrg { org, .. }
            | RenameOrg { org, .. }
            | SetDefaultRole { org, .. }
            | DeclarePermission { org, .. }
            | DefineRole { org, .. }
            | ChangeRole { org, .. }
            | RenameRole { org, .. }
            | DeleteRole { org, .. }
            | CreateTeam { org, .. }
            | RenameTeam { org, .. }
            | DeleteTeam { org, .. }
            | CreateInbox { org, .. }
            | RenameInbox { org, .. }
            | MoveInbox { org, .. }
            | DeleteInbox { org, .. }
            | Invite { org, .. }
            | RevokeInvite { org, .. }
            | DeclineInvite { org, .. }
            | AcceptInvite { org, .. }
            | CreateInviteLink { org, .. }
            | RevokeInviteLink { org, .. }
            | JoinByLink { org, .. }
            | AssignRole { org, .. }
            | Unassign { org, .. }
            | Grant { org, .. }
            | Revoke { org, .. }
            | Mask { org, .. }
            | Unmask { org, .. }
            | SuspendMember { org, .. }
            | ReactivateMember { org, .. }
            | RemoveMember { org, .. }
            | LeaveOrg { org }
            | TransferOwnership { org, .. } => org,
        }
    }

    /// The command's type name as written in JSON (`assign_role`).
    pub fn type_name(&self) -> &'static str {
        use Command::*;
        match self {
            CreateOrg { .. } => "create_org",
            RenameOrg { .. } => "rename_org",
            SetDefaultRole { .. } => "set_default_role",
            DeclarePermission { .. } => "declare_permission",
            DefineRole { .. } => "define_role",
            ChangeRole { .. } => "change_role",
            RenameRole { .. } => "rename_role",
            DeleteRole { .. } => "delete_role",
            CreateTeam { .. } => "create_team",
            RenameTeam { .. } => "rename_team",
            DeleteTeam { .. } => "delete_team",
            CreateInbox { .. } => "create_inbox",
            RenameInbox { .. } => "rename_inbox",
            MoveInbox { .. } => "move_inbox",
            DeleteInbox { .. } => "delete_inbox",
            Invite { .. } => "invite",
            RevokeInvite { .. } => "revoke_invite",
            DeclineInvite { .. } => "decline_invite",
            AcceptInvite { .. } => "accept_invite",
            CreateInviteLink { .. } => "create_invite_link",
            RevokeInviteLink { .. } => "revoke_invite_link",
            JoinByLink { .. } => "join_by_link",
            AssignRole { .. } => "assign_role",
            Unassign { .. } => "unassign",
            Grant { .. } => "grant",
            Revoke { .. } => "revoke",
            Mask { .. } => "mask",
            Unmask { .. } => "unmask",
            SuspendMember { .. } => "suspend_member",
            ReactivateMember { .. } => "reactivate_member",
            RemoveMember { .. } => "remove_member",
            LeaveOrg { .. } => "leave_org",
            TransferOwnership { .. } => "transfer_ownership",
        }
    }

    /// Every command type name, for coverage reports.
    pub const TYPE_NAMES: [&'static str; 33] = [
        "create_org",
        "rename_org",
        "set_default_role",
        "declare_permission",
        "define_role",
        "change_role",
        "rename_role",
        "delete_role",
        "create_team",
        "rename_team",
        "delete_team",
        "create_inbox",
        "rename_inbox",
        "move_inbox",
        "delete_inbox",
        "invite",
        "revoke_invite",
        "decline_invite",
        "accept_invite",
        "create_invite_link",
        "revoke_invite_link",
        "join_by_link",
        "assign_role",
        "unassign",
        "grant",
        "revoke",
        "mask",
        "unmask",
        "suspend_member",
        "reactivate_member",
        "remove_member",
        "leave_org",
        "transfer_ownership",
    ];
}

/// Who issues a command, and what travels with it into every event it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMeta {
    pub actor: UserId,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub expect_version: Option<u64>,
    /// Who submitted it: recorded in every event it records, beside the actor it names.
    #[serde(default)]
    pub principal: Principal,
}

impl CommandMeta {
    /// A command by `actor`, submitted on the data folder itself (`Principal::Local`).
    pub fn new(actor: UserId) -> Self {
        CommandMeta {
            actor,
            reason: None,
            request_id: None,
            idempotency_key: None,
            expect_version: None,
            principal: Principal::Local,
        }
    }

    /// The metadata of the event at `seq`, the org's `version`-th, one of those this command
    /// records; `cause` is the position of the event of the same command it follows from.
    pub fn event_meta(
        &self,
        org: &OrgId,
        seq: Seq,
        version: u64,
        event_id: uuid::Uuid,
        recorded_at: Timestamp,
        cause: Option<Seq>,
    ) -> EventMeta {
        EventMeta {
            seq,
            org: org.clone(),
            org_version: version,
            event_id,
            recorded_at,
            actor: self.actor.clone(),
            reason: self.reason.clone(),
            request_id: self.request_id.clone(),
            principal: Some(self.principal.clone()),
            cause,
        }
    }
}

/// What the deciding function needs from outside the pure core: the moment, and any secret the
/// caller generated for the command (an invite link's token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub now: Timestamp,
    pub link_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_from_the_scenario_shape() {
        let c: Command = serde_json::from_str(
            r#"{"type":"assign_role","org":"acme","user":"mo","scope":"inbox:billing","role":"inbox_observer"}"#,
        )
        .unwrap();
        assert_eq!(c.type_name(), "assign_role");
        assert_eq!(c.org().as_str(), "acme");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["scope"], "inbox:billing");
    }

    #[test]
    fn unknown_fields_and_bad_ids_are_refused() {
        let typo = serde_json::from_str::<Command>(
            r#"{"type":"create_team","org":"acme","team":"x","nmae":"X"}"#,
        );
        assert!(typo.unwrap_err().to_string().contains("nmae"));
        let bad =
            serde_json::from_str::<Command>(r#"{"type":"create_team","org":"Acme","team":"x"}"#);
        assert!(bad.unwrap_err().to_string().contains("`Acme`"));
        let unknown = serde_json::from_str::<Command>(r#"{"type":"fly","org":"acme"}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn type_names_are_listed_once_each() {
        let mut names = Command::TYPE_NAMES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Command::TYPE_NAMES.len());
    }
}
