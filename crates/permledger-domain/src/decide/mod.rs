//! Deciding: a command, the state and the moment in; the events it records, or a rejection, out.
//! All business rules live here; `State::apply` only folds what was decided.
//!
//! Order of judgement, so that the same bad command always gets the same code: the input's form
//! (`invalid`), the org (`not_found`), the expected version (`conflict`), what the input names
//! (`not_found`, `kind_mismatch`, `invalid`), the actor (`suspended`, `forbidden`), the user
//! concerned (`not_member`), `escalation`, and last the state's own rules (`already_exists`,
//! `owner_protected`, `role_in_use`, `invite_closed`, `invite_expired`).
//!
//! `decide` validates what every command shares, finds the org and checks the expected version,
//! then `Decider::decide` sends each command to the module of its subject (`org`, `roles`,
//! `structure`, `invites`, `access`, `membership`); the checks those share (scopes, roles,
//! authority, escalation) are `Decider`'s methods here.

mod access;
mod invites;
mod membership;
mod org;
mod roles;
mod structure;

use std::collections::BTreeSet;

use crate::catalog::{is_administrative, is_billing, Pattern, PermissionKey, BILLING};
use crate::command::{Command, CommandMeta, Context, InviteAssignment, InviteGrant};
use crate::event::*;
use crate::ids::{InboxId, OrgId, RoleId, Scope, ScopeKind, Seq, TeamId, Timestamp, UserId};
use crate::preset::Preset;
use crate::rejection::Rejection;
use crate::state::{effective_permissions, InviteStatus, Org, ScopeRef, State};

const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 1000;
const MAX_REASON: usize = 1000;
const MAX_REQUEST_ID: usize = 200;
const MAX_IDEMPOTENCY_KEY: usize = 200;
const MAX_EMAIL: usize = 254;
const MAX_PATTERNS: usize = 500;
const MAX_INVITE_ITEMS: usize = 100;

/// The role id a guest invite gives.
pub const GUEST_ROLE: &str = "guest";

/// The BLAKE3 hash, in hex, under which an invite link's token is stored.
pub fn hash_token(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

type Decision = Result<Vec<EventPayload>, Rejection>;

/// Decides a command. Pure: the same state, command, metadata and context give the same answer.
pub fn decide(state: &State, cmd: &Command, meta: &CommandMeta, ctx: &Context) -> Decision {
    validate_meta(meta)?;
    if let Command::CreateOrg { org, name, preset } = cmd {
        let name = name_or(name.as_deref(), org.as_str(), "org name")?;
        if state.org(org).is_some() {
            return Err(Rejection::already_exists(format!(
                "org `{org}` already exists"
            )));
        }
        if let Some(v) = meta.expect_version.filter(|v| *v != 0) {
            return Err(Rejection::conflict(format!(
                "org `{org}` does not exist yet, so it is not at version {v}"
            )));
        }
        let preset = Preset::load(*preset).map_err(|e| Rejection::invalid(e.to_string()))?;
        let mut events = vec![EventPayload::OrgCreated(OrgCreated {
            name,
            preset: preset.name,
            owner: meta.actor.clone(),
            owner_role: preset.defaults.org.clone(),
            catalog: preset.catalog,
            roles: preset.roles,
            defaults: preset.defaults,
        })];
        events.extend(
            preset
                .teams
                .into_iter()
                .map(|(team, name)| EventPayload::TeamCreated(TeamCreated { team, name })),
        );
        return Ok(events);
    }
    let org_id = cmd.org();
    let org = state
        .org(org_id)
        .ok_or_else(|| Rejection::not_found(format!("org `{org_id}` does not exist")))?;
    if let Some(v) = meta.expect_version {
        if v != org.version {
            return Err(Rejection::conflict(format!(
                "org `{org_id}` is at version {}, not the expected {v}",
                org.version
            )));
        }
    }
    Decider {
        org,
        actor: &meta.actor,
        now: ctx.now,
        ctx,
    }
    .decide(cmd)
}

/// For each event of one decision, recorded from position `first`, the position of the event of
/// the same command it follows from: a command that records several events has one of its own
/// (an org's creation, an invite's acceptance, a role's or a team's deletion) and the others are
/// its effects (the preset's teams, the member joining and what the invite promised, the holders
/// moved, the team's inboxes deleted).
pub fn causes(events: &[EventPayload], first: Seq) -> Vec<Option<Seq>> {
    let root = (events.len() > 1)
        .then(|| {
            events.iter().position(|e| {
                matches!(
                    e,
                    EventPayload::OrgCreated(_)
                        | EventPayload::InviteAccepted(_)
                        | EventPayload::RoleDeleted(_)
                        | EventPayload::TeamDeleted(_)
                )
            })
        })
        .flatten();
    (0..events.len())
        .map(|i| match root {
            Some(r) if r != i => Some(first + r as Seq),
            _ => None,
        })
        .collect()
}

fn validate_meta(meta: &CommandMeta) -> Result<(), Rejection> {
    if let Some(r) = &meta.reason {
        if r.chars().count() > MAX_REASON {
            return Err(Rejection::invalid(format!(
                "reason is longer than {MAX_REASON} characters"
            )));
        }
        // A reason is read in tables and spreadsheets: one line of printable characters.
        if let Some(c) = r.chars().find(|c| c.is_control()) {
            return Err(Rejection::invalid(format!(
                "reason holds the control character {:?}; a reason is one line of printable characters",
                c
            )));
        }
    }
    if let Some(r) = &meta.request_id {
        if r.is_empty() || r.chars().count() > MAX_REQUEST_ID || r.chars().any(char::is_control) {
            return Err(Rejection::invalid(format!(
                "request id `{r}` must be 1 to {MAX_REQUEST_ID} printable characters"
            )));
        }
    }
    if let Some(k) = &meta.idempotency_key {
        if k.is_empty()
            || k.chars().count() > MAX_IDEMPOTENCY_KEY
            || k.chars().any(char::is_control)
        {
            return Err(Rejection::invalid(format!(
                "idempotency key `{k}` must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters"
            )));
        }
    }
    Ok(())
}

fn validate_text(s: &str, what: &str, max: usize) -> Result<String, Rejection> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(Rejection::invalid(format!(
            "{what} `{s}` must be 1 to {max} printable characters"
        )));
    }
    Ok(t.to_string())
}

fn name_or(name: Option<&str>, fallback: &str, what: &str) -> Result<String, Rejection> {
    validate_text(name.unwrap_or(fallback), what, MAX_NAME)
}

fn validate_email(email: &str) -> Result<(), Rejection> {
    let ok = email.len() <= MAX_EMAIL
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if ok {
        Ok(())
    } else {
        Err(Rejection::invalid(format!(
            "email `{email}` is not an email address"
        )))
    }
}

/// The permission that authorizes managing the members of a scope (assign, unassign, grant, revoke).
fn membership_permission(scope: &Scope) -> &'static str {
    match scope {
        Scope::Org => "org.roles.assign",
        Scope::Team(_) => "team.members.manage",
        Scope::Inbox(_) => "inbox.members.manage",
    }
}

struct Decider<'a> {
    org: &'a Org,
    actor: &'a UserId,
    now: Timestamp,
    ctx: &'a Context,
}

impl<'a> Decider<'a> {
    fn org_id(&self) -> &OrgId {
        &self.org.id
    }

    // ---- what the input names ----

    fn scope(&self, scope: &Scope) -> Result<(), Rejection> {
        if self.org.scope_exists(ScopeRef::of(scope)) {
            Ok(())
        } else {
            Err(Rejection::not_found(format!(
                "scope `{scope}` does not exist in org `{}`",
                self.org_id()
            )))
        }
    }

    fn team(&self, team: &TeamId) -> Result<(), Rejection> {
        self.scope(&Scope::Team(team.clone()))
    }

    fn inbox(&self, inbox: &InboxId) -> Result<Option<&'a TeamId>, Rejection> {
        match self.org.inboxes.get(inbox) {
            Some(i) => Ok(i.team.as_ref()),
            None => Err(Rejection::not_found(format!(
                "inbox `{inbox}` does not exist in org `{}`",
                self.org_id()
            ))),
        }
    }

    fn role(&self, role: &RoleId) -> Result<&'a crate::state::Role, Rejection> {
        self.org.roles.get(role).ok_or_else(|| {
            Rejection::not_found(format!(
                "role `{role}` does not exist in org `{}`",
                self.org_id()
            ))
        })
    }

    fn role_of_kind(
        &self,
        role: &RoleId,
        kind: ScopeKind,
    ) -> Result<&'a crate::state::Role, Rejection> {
        let r = self.role(role)?;
        if r.kind != kind {
            return Err(Rejection::kind_mismatch(format!(
                "role `{role}` is {} role and cannot be used on {} scope",
                r.kind.with_article(),
                kind.with_article()
            )));
        }
        Ok(r)
    }

    fn future(&self, at: Option<Timestamp>, what: &str) -> Result<(), Rejection> {
        match at {
            Some(t) if t <= self.now => Err(Rejection::invalid(format!(
                "{what} `{t}` is not after the present `{}`",
                self.now
            ))),
            _ => Ok(()),
        }
    }

    /// A permission a grant may name on a scope.
    fn grantable(&self, permission: &PermissionKey, scope: &Scope) -> Result<(), Rejection> {
        if is_billing(permission) {
            return Err(Rejection::invalid(format!(
                "`{BILLING}` belongs to the owner alone and cannot be granted"
            )));
        }
        let def = self.org.catalog.get(permission).ok_or_else(|| {
            Rejection::not_found(format!(
                "permission `{permission}` is not in the catalog of org `{}`",
                self.org_id()
            ))
        })?;
        if def.kind.depth() < scope.kind().depth() {
            return Err(Rejection::kind_mismatch(format!(
                "permission `{permission}` is {} permission and cannot be granted on `{scope}`",
                def.kind.with_article()
            )));
        }
        Ok(())
    }

    /// Patterns a role of `kind` may list.
    fn role_patterns(&self, kind: ScopeKind, patterns: &[Pattern]) -> Result<(), Rejection> {
        if patterns.len() > MAX_PATTERNS {
            return Err(Rejection::invalid(format!(
                "a role lists at most {MAX_PATTERNS} patterns"
            )));
        }
        let mut seen = BTreeSet::new();
        for p in patterns {
            if !seen.insert(p) {
                return Err(Rejection::invalid(format!("pattern `{p}` is listed twice")));
            }
            let matched: Vec<_> = self.org.catalog.matching(p).collect();
            if matched.is_empty() {
                return Err(Rejection::not_found(format!(
                    "pattern `{p}` matches no permission in the catalog of org `{}`",
                    self.org_id()
                )));
            }
            if matched.iter().all(|d| is_billing(&d.key)) {
                return Err(Rejection::invalid(format!(
                    "`{BILLING}` belongs to the owner alone; no role can carry it"
                )));
            }
            if !matched
                .iter()
                .any(|d| !is_billing(&d.key) && d.kind.depth() >= kind.depth())
            {
                return Err(Rejection::kind_mismatch(format!(
                    "pattern `{p}` names only permissions above {} role's kind",
                    kind.with_article()
                )));
            }
        }
        Ok(())
    }

    fn mask_pattern(&self, p: &Pattern) -> Result<(), Rejection> {
        let matched: Vec<_> = self.org.catalog.matching(p).collect();
        if matched.is_empty() {
            return Err(Rejection::not_found(format!(
                "pattern `{p}` matches no permission in the catalog of org `{}`",
                self.org_id()
            )));
        }
        if matched.iter().all(|d| is_administrative(&d.key)) {
            return Err(Rejection::invalid(format!(
                "pattern `{p}` matches only administrative permissions, which masks never hide"
            )));
        }
        Ok(())
    }

    // ---- the actor ----

    fn active_actor(&self) -> Result<(), Rejection> {
        match self.org.members.get(self.actor) {
            Some(m) if m.is_active() => Ok(()),
            Some(_) => Err(Rejection::suspended(format!(
                "`{}` is suspended in org `{}` and may do nothing",
                self.actor,
                self.org_id()
            ))),
            None => Err(Rejection::forbidden(format!(
                "`{}` is not a member of org `{}`",
                self.actor,
                self.org_id()
            ))),
        }
    }

    fn holds(&self, permission: &str, scope: &Scope) -> bool {
        // Only called with keys of the administrative table, valid by construction.
        PermissionKey::new(permission)
            .is_ok_and(|k| self.org.holds_at(self.actor, &k, scope, self.now))
    }

    /// The actor is active and holds the permission at the scope.
    fn authorize(&self, permission: &str, scope: &Scope) -> Result<(), Rejection> {
        self.active_actor()?;
        if self.holds(permission, scope) {
            Ok(())
        } else {
            Err(self.lacks(permission, scope))
        }
    }

    fn lacks(&self, permission: &str, scope: &Scope) -> Rejection {
        Rejection::forbidden(format!(
            "`{}` lacks `{permission}` on `{scope}` in org `{}`",
            self.actor,
            self.org_id()
        ))
    }

    /// Every administrative permission handed out must be one the actor holds at the scope.
    fn no_escalation<'k>(
        &self,
        permissions: impl IntoIterator<Item = &'k PermissionKey>,
        scope: &Scope,
        what: &str,
    ) -> Result<(), Rejection> {
        for p in permissions {
            if is_administrative(p) && !self.org.holds_at(self.actor, p, scope, self.now) {
                return Err(Rejection::escalation(format!(
                    "{what} carries `{p}`, which `{}` does not hold on `{scope}`",
                    self.actor
                )));
            }
        }
        Ok(())
    }

    fn role_escalation(&self, role: &RoleId, scope: &Scope) -> Result<(), Rejection> {
        let r = self.role(role)?;
        self.no_escalation(r.effective.iter(), scope, &format!("role `{role}`"))
    }

    // ---- the user concerned ----

    fn member(&self, user: &UserId) -> Result<&'a crate::state::Member, Rejection> {
        self.org.members.get(user).map(|m| &**m).ok_or_else(|| {
            Rejection::not_member(format!(
                "`{user}` is not a member of org `{}`",
                self.org_id()
            ))
        })
    }

    fn decide(&self, cmd: &Command) -> Decision {
        use Command::*;
        match cmd {
            CreateOrg { .. } => Err(Rejection::already_exists(format!(
                "org `{}` already exists",
                self.org_id()
            ))),
            RenameOrg { name, .. } => self.rename_org(name),
            SetDefaultRole { kind, role, .. } => self.set_default_role(kind, role),
            DeclarePermission {
                key,
                kind,
                description,
                ..
            } => self.declare_permission(key, kind, description),
            DefineRole {
                role,
                name,
                kind,
                permissions,
                ..
            } => self.define_role(role, name, kind, permissions),
            ChangeRole {
                role, add, remove, ..
            } => self.change_role(role, add, remove),
            RenameRole { role, name, .. } => self.rename_role(role, name),
            DeleteRole { role, move_to, .. } => self.delete_role(role, move_to.as_ref()),
            CreateTeam { team, name, .. } => self.create_team(team, name),
            RenameTeam { team, name, .. } => self.rename_team(team, name),
            DeleteTeam { team, .. } => self.delete_team(team),
            CreateInbox {
                inbox, team, name, ..
            } => self.create_inbox(inbox, team, name),
            RenameInbox { inbox, name, .. } => self.rename_inbox(inbox, name),
            MoveInbox { inbox, team, .. } => self.move_inbox(inbox, team),
            DeleteInbox { inbox, .. } => self.delete_inbox(inbox),
            Invite {
                invite,
                email,
                role,
                assignments,
                grants,
                expires_at,
                guest,
                ..
            } => self.invite(
                invite,
                email,
                role.as_ref(),
                assignments,
                grants,
                *expires_at,
                *guest,
            ),
            RevokeInvite { invite, .. } => self.revoke_invite(invite),
            DeclineInvite { invite, .. } => self.decline_invite(invite),
            AcceptInvite { invite, .. } => self.accept_invite(invite),
            CreateInviteLink {
                link,
                role,
                max_uses,
                expires_at,
                ..
            } => self.create_invite_link(link, role, max_uses, expires_at),
            RevokeInviteLink { link, .. } => self.revoke_invite_link(link),
            JoinByLink { token, .. } => self.join_by_link(token),
            AssignRole {
                user,
                scope,
                role,
                expires_at,
                ..
            } => self.assign_role(user, scope, role, expires_at),
            Unassign { user, scope, .. } => self.unassign(user, scope),
            Grant {
                user,
                scope,
                permission,
                expires_at,
                ..
            } => self.grant(user, scope, permission, expires_at),
            Revoke {
                user,
                scope,
                permission,
                ..
            } => self.revoke(user, scope, permission),
            Mask { scope, pattern, .. } => self.mask(scope, pattern),
            Unmask { scope, pattern, .. } => self.unmask(scope, pattern),
            SuspendMember { user, .. } => self.suspend_member(user),
            ReactivateMember { user, .. } => self.reactivate_member(user),
            RemoveMember { user, .. } => self.remove_member(user),
            LeaveOrg { .. } => self.leave_org(),
            TransferOwnership {
                to,
                former_owner_role,
                ..
            } => self.transfer_ownership(to, former_owner_role),
        }
    }
}

fn parent_scope(team: Option<&TeamId>) -> Scope {
    team.map_or(Scope::Org, |t| Scope::Team(t.clone()))
}

fn closed_invite(invite: &crate::ids::InviteId, status: &InviteStatus) -> Rejection {
    let why = match status {
        InviteStatus::Pending => "still pending".to_string(),
        InviteStatus::Revoked => "was revoked".to_string(),
        InviteStatus::Declined(u) => format!("was declined by `{u}`"),
        InviteStatus::Accepted(u) => format!("was already accepted by `{u}`"),
    };
    Rejection::invite_closed(format!("invite `{invite}` {why}"))
}
