//! Deciding: a command, the state and the moment in; the events it records, or a rejection, out.
//! All business rules live here; `State::apply` only folds what was decided.
//!
//! Order of judgement, so that the same bad command always gets the same code: the input's form
//! (`invalid`), the org (`not_found`), the expected version (`conflict`), what the input names
//! (`not_found`, `kind_mismatch`, `invalid`), the actor (`suspended`, `forbidden`), the user
//! concerned (`not_member`), `escalation`, and last the state's own rules (`already_exists`,
//! `owner_protected`, `role_in_use`, `invite_closed`, `invite_expired`).

use std::collections::BTreeSet;

use crate::catalog::{is_administrative, is_billing, Pattern, PermissionKey, BILLING};
use crate::command::{Command, CommandMeta, Context, InviteAssignment, InviteGrant};
use crate::event::*;
use crate::ids::{InboxId, OrgId, RoleId, Scope, ScopeKind, TeamId, Timestamp, UserId};
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

fn validate_meta(meta: &CommandMeta) -> Result<(), Rejection> {
    if let Some(r) = &meta.reason {
        if r.chars().count() > MAX_REASON {
            return Err(Rejection::invalid(format!(
                "reason is longer than {MAX_REASON} characters"
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
            RenameOrg { name, .. } => {
                let name = validate_text(name, "org name", MAX_NAME)?;
                self.authorize("org.settings.manage", &Scope::Org)?;
                if name == self.org.name {
                    return Err(Rejection::invalid(format!(
                        "org `{}` is already named `{name}`",
                        self.org_id()
                    )));
                }
                Ok(vec![EventPayload::OrgRenamed(OrgRenamed { name })])
            }
            SetDefaultRole { kind, role, .. } => {
                self.role_of_kind(role, *kind)?;
                self.authorize("org.settings.manage", &Scope::Org)?;
                self.role_escalation(role, &Scope::Org)?;
                if self.org.defaults.get(*kind) == Some(role) {
                    return Err(Rejection::already_exists(format!(
                        "role `{role}` is already the default {kind} role"
                    )));
                }
                Ok(vec![EventPayload::DefaultRoleSet(DefaultRoleSet {
                    kind: *kind,
                    role: role.clone(),
                })])
            }
            DeclarePermission {
                key,
                kind,
                description,
                ..
            } => {
                let description = match description {
                    Some(d) => validate_text(d, "description", MAX_DESCRIPTION)?,
                    None => String::new(),
                };
                let prefix = key.as_str().split('.').next().unwrap_or_default();
                if let Ok(prefix_kind) = prefix.parse::<ScopeKind>() {
                    if prefix_kind != *kind {
                        return Err(Rejection::kind_mismatch(format!(
                            "permission `{key}` is named as {} permission but declared of kind {kind}",
                            prefix_kind.with_article()
                        )));
                    }
                }
                self.authorize("org.roles.manage", &Scope::Org)?;
                if self.org.catalog.contains(key) {
                    return Err(Rejection::already_exists(format!(
                        "permission `{key}` is already in the catalog"
                    )));
                }
                Ok(vec![EventPayload::PermissionDeclared(PermissionDeclared {
                    key: key.clone(),
                    kind: *kind,
                    description,
                })])
            }
            DefineRole {
                role,
                name,
                kind,
                permissions,
                ..
            } => {
                let name = name_or(name.as_deref(), role.as_str(), "role name")?;
                self.role_patterns(*kind, permissions)?;
                self.authorize("org.roles.manage", &Scope::Org)?;
                let effective = effective_permissions(*kind, permissions.iter(), &self.org.catalog);
                self.no_escalation(&effective, &Scope::Org, &format!("role `{role}`"))?;
                if self.org.roles.contains_key(role) {
                    return Err(Rejection::already_exists(format!(
                        "role `{role}` already exists"
                    )));
                }
                Ok(vec![EventPayload::RoleDefined(RoleDef {
                    role: role.clone(),
                    name,
                    kind: *kind,
                    permissions: permissions.clone(),
                })])
            }
            ChangeRole {
                role, add, remove, ..
            } => {
                if add.is_empty() && remove.is_empty() {
                    return Err(Rejection::invalid(format!(
                        "change of role `{role}` adds and removes nothing"
                    )));
                }
                if let Some(p) = add.iter().find(|p| remove.contains(p)) {
                    return Err(Rejection::invalid(format!(
                        "pattern `{p}` is both added and removed"
                    )));
                }
                let r = self.role(role)?;
                self.role_patterns(r.kind, add)?;
                self.authorize("org.roles.manage", &Scope::Org)?;
                let after: BTreeSet<Pattern> = r
                    .patterns
                    .iter()
                    .filter(|p| !remove.contains(p))
                    .chain(add.iter())
                    .cloned()
                    .collect();
                let effective = effective_permissions(r.kind, after.iter(), &self.org.catalog);
                self.no_escalation(
                    effective.difference(&r.effective),
                    &Scope::Org,
                    &format!("role `{role}`"),
                )?;
                if let Some(p) = add.iter().find(|p| r.patterns.contains(*p)) {
                    return Err(Rejection::already_exists(format!(
                        "role `{role}` already lists `{p}`"
                    )));
                }
                if let Some(p) = remove.iter().find(|p| !r.patterns.contains(*p)) {
                    return Err(Rejection::not_found(format!(
                        "role `{role}` does not list `{p}`"
                    )));
                }
                Ok(vec![EventPayload::RoleChanged(RoleChanged {
                    role: role.clone(),
                    added: add.clone(),
                    removed: remove.clone(),
                })])
            }
            RenameRole { role, name, .. } => {
                let name = validate_text(name, "role name", MAX_NAME)?;
                let r = self.role(role)?;
                self.authorize("org.roles.manage", &Scope::Org)?;
                if r.name == name {
                    return Err(Rejection::invalid(format!(
                        "role `{role}` is already named `{name}`"
                    )));
                }
                Ok(vec![EventPayload::RoleRenamed(RoleRenamed {
                    role: role.clone(),
                    name,
                })])
            }
            DeleteRole { role, move_to, .. } => self.delete_role(role, move_to.as_ref()),
            CreateTeam { team, name, .. } => {
                let name = name_or(name.as_deref(), team.as_str(), "team name")?;
                self.authorize("org.teams.create", &Scope::Org)?;
                if self.org.teams.contains_key(team) {
                    return Err(Rejection::already_exists(format!(
                        "team `{team}` already exists"
                    )));
                }
                Ok(vec![EventPayload::TeamCreated(TeamCreated {
                    team: team.clone(),
                    name,
                })])
            }
            RenameTeam { team, name, .. } => {
                let name = validate_text(name, "team name", MAX_NAME)?;
                self.team(team)?;
                self.authorize("team.settings.manage", &Scope::Team(team.clone()))?;
                if self.org.teams.get(team).is_some_and(|t| t.name == name) {
                    return Err(Rejection::invalid(format!(
                        "team `{team}` is already named `{name}`"
                    )));
                }
                Ok(vec![EventPayload::TeamRenamed(TeamRenamed {
                    team: team.clone(),
                    name,
                })])
            }
            DeleteTeam { team, .. } => {
                self.team(team)?;
                self.authorize("org.teams.delete", &Scope::Org)?;
                let mut events: Vec<EventPayload> = self
                    .org
                    .inboxes
                    .iter()
                    .filter(|(_, i)| i.team.as_ref() == Some(team))
                    .map(|(id, _)| EventPayload::InboxDeleted(InboxDeleted { inbox: id.clone() }))
                    .collect();
                events.push(EventPayload::TeamDeleted(TeamDeleted {
                    team: team.clone(),
                }));
                Ok(events)
            }
            CreateInbox {
                inbox, team, name, ..
            } => {
                let name = name_or(name.as_deref(), inbox.as_str(), "inbox name")?;
                let parent = parent_scope(team.as_ref());
                self.scope(&parent)?;
                self.authorize("team.inboxes.create", &parent)?;
                if self.org.inboxes.contains_key(inbox) {
                    return Err(Rejection::already_exists(format!(
                        "inbox `{inbox}` already exists"
                    )));
                }
                Ok(vec![EventPayload::InboxCreated(InboxCreated {
                    inbox: inbox.clone(),
                    team: team.clone(),
                    name,
                })])
            }
            RenameInbox { inbox, name, .. } => {
                let name = validate_text(name, "inbox name", MAX_NAME)?;
                self.inbox(inbox)?;
                self.authorize("team.settings.manage", &Scope::Inbox(inbox.clone()))?;
                if self.org.inboxes.get(inbox).is_some_and(|i| i.name == name) {
                    return Err(Rejection::invalid(format!(
                        "inbox `{inbox}` is already named `{name}`"
                    )));
                }
                Ok(vec![EventPayload::InboxRenamed(InboxRenamed {
                    inbox: inbox.clone(),
                    name,
                })])
            }
            MoveInbox { inbox, team, .. } => {
                let from = self.inbox(inbox)?;
                let to = parent_scope(team.as_ref());
                self.scope(&to)?;
                if from == team.as_ref() {
                    return Err(Rejection::invalid(format!(
                        "inbox `{inbox}` is already under `{to}`"
                    )));
                }
                self.authorize("team.inboxes.delete", &parent_scope(from))?;
                self.authorize("team.inboxes.create", &to)?;
                Ok(vec![EventPayload::InboxMoved(InboxMoved {
                    inbox: inbox.clone(),
                    from: from.cloned(),
                    to: team.clone(),
                })])
            }
            DeleteInbox { inbox, .. } => {
                let parent = self.inbox(inbox)?;
                self.authorize("team.inboxes.delete", &parent_scope(parent))?;
                Ok(vec![EventPayload::InboxDeleted(InboxDeleted {
                    inbox: inbox.clone(),
                })])
            }
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
            RevokeInvite { invite, .. } => {
                let i = self
                    .org
                    .invites
                    .get(invite)
                    .ok_or_else(|| self.no_invite(invite))?;
                self.active_actor()?;
                let may = self.holds("org.members.invite", &Scope::Org)
                    || (i.guest && self.holds("org.guests.invite", &Scope::Org));
                if !may {
                    return Err(self.lacks("org.members.invite", &Scope::Org));
                }
                if i.status != InviteStatus::Pending {
                    return Err(closed_invite(invite, &i.status));
                }
                Ok(vec![EventPayload::InviteRevoked(InviteRevoked {
                    invite: invite.clone(),
                })])
            }
            DeclineInvite { invite, .. } => {
                self.open_invite(invite)?;
                if self.org.members.contains_key(self.actor) {
                    return Err(Rejection::already_exists(format!(
                        "`{}` is already a member of org `{}`",
                        self.actor,
                        self.org_id()
                    )));
                }
                Ok(vec![EventPayload::InviteDeclined(InviteDeclined {
                    invite: invite.clone(),
                    user: self.actor.clone(),
                })])
            }
            AcceptInvite { invite, .. } => self.accept_invite(invite),
            CreateInviteLink {
                link,
                role,
                max_uses,
                expires_at,
                ..
            } => {
                self.future(*expires_at, "link expiry")?;
                if *max_uses == Some(0) {
                    return Err(Rejection::invalid("max uses must be at least 1"));
                }
                let role = role.clone().or_else(|| self.org.defaults.org.clone());
                if let Some(r) = &role {
                    self.role_of_kind(r, ScopeKind::Org)?;
                }
                let Some(token) = &self.ctx.link_token else {
                    return Err(Rejection::invalid(
                        "no token was generated for the invite link",
                    ));
                };
                self.authorize_links(role.as_ref())?;
                if let Some(r) = &role {
                    self.role_escalation(r, &Scope::Org)?;
                }
                if self.org.links.contains_key(link) {
                    return Err(Rejection::already_exists(format!(
                        "invite link `{link}` already exists"
                    )));
                }
                Ok(vec![EventPayload::InviteLinkCreated(InviteLinkCreated {
                    link: link.clone(),
                    token_hash: hash_token(token),
                    role,
                    max_uses: *max_uses,
                    expires_at: *expires_at,
                })])
            }
            RevokeInviteLink { link, .. } => {
                let l = self.org.links.get(link).ok_or_else(|| {
                    Rejection::not_found(format!(
                        "invite link `{link}` does not exist in org `{}`",
                        self.org_id()
                    ))
                })?;
                self.authorize_links(l.role.as_ref())?;
                if l.revoked {
                    return Err(Rejection::invite_closed(format!(
                        "invite link `{link}` is already revoked"
                    )));
                }
                Ok(vec![EventPayload::InviteLinkRevoked(InviteLinkRevoked {
                    link: link.clone(),
                })])
            }
            JoinByLink { token, .. } => self.join_by_link(token),
            AssignRole {
                user,
                scope,
                role,
                expires_at,
                ..
            } => {
                self.scope(scope)?;
                self.role_of_kind(role, scope.kind())?;
                self.future(*expires_at, "assignment expiry")?;
                self.authorize(membership_permission(scope), scope)?;
                let m = self.member(user)?;
                self.role_escalation(role, scope)?;
                if let Some(a) = m.roles.get(ScopeRef::of(scope)) {
                    if &a.role == role && a.expires_at == *expires_at {
                        return Err(Rejection::already_exists(format!(
                            "`{user}` already holds role `{role}` on `{scope}`"
                        )));
                    }
                }
                Ok(vec![EventPayload::RoleAssigned(RoleAssigned {
                    user: user.clone(),
                    scope: scope.clone(),
                    role: role.clone(),
                    expires_at: *expires_at,
                })])
            }
            Unassign { user, scope, .. } => {
                if *scope == Scope::Org {
                    return Err(Rejection::invalid(
                        "the org role cannot be unassigned: assign another org role or remove the member",
                    ));
                }
                self.scope(scope)?;
                if user == self.actor {
                    self.active_actor()?;
                } else {
                    self.authorize(membership_permission(scope), scope)?;
                }
                let m = self.member(user)?;
                if m.roles.get(ScopeRef::of(scope)).is_none() {
                    return Err(Rejection::not_found(format!(
                        "`{user}` holds no role on `{scope}`"
                    )));
                }
                Ok(vec![EventPayload::Unassigned(Unassigned {
                    user: user.clone(),
                    scope: scope.clone(),
                })])
            }
            Grant {
                user,
                scope,
                permission,
                expires_at,
                ..
            } => {
                self.scope(scope)?;
                self.grantable(permission, scope)?;
                self.future(*expires_at, "grant expiry")?;
                self.authorize(membership_permission(scope), scope)?;
                let m = self.member(user)?;
                self.no_escalation([permission], scope, "the grant")?;
                if let Some(g) = m
                    .grants
                    .get(ScopeRef::of(scope))
                    .and_then(|g| g.get(permission))
                {
                    if g.expires_at == *expires_at {
                        return Err(Rejection::already_exists(format!(
                            "`{user}` already holds a grant of `{permission}` on `{scope}`"
                        )));
                    }
                }
                Ok(vec![EventPayload::PermissionGranted(PermissionGranted {
                    user: user.clone(),
                    scope: scope.clone(),
                    permission: permission.clone(),
                    expires_at: *expires_at,
                })])
            }
            Revoke {
                user,
                scope,
                permission,
                ..
            } => {
                self.scope(scope)?;
                self.authorize(membership_permission(scope), scope)?;
                let m = self.member(user)?;
                if m.grants
                    .get(ScopeRef::of(scope))
                    .and_then(|g| g.get(permission))
                    .is_none()
                {
                    return Err(Rejection::not_found(format!(
                        "`{user}` holds no grant of `{permission}` on `{scope}`"
                    )));
                }
                Ok(vec![EventPayload::PermissionRevoked(PermissionRevoked {
                    user: user.clone(),
                    scope: scope.clone(),
                    permission: permission.clone(),
                })])
            }
            Mask { scope, pattern, .. } => {
                self.scope(scope)?;
                self.mask_pattern(pattern)?;
                self.authorize_masks(scope)?;
                if self
                    .org
                    .masks
                    .get(ScopeRef::of(scope))
                    .is_some_and(|m| m.contains_key(pattern))
                {
                    return Err(Rejection::already_exists(format!(
                        "`{pattern}` is already masked on `{scope}`"
                    )));
                }
                Ok(vec![EventPayload::PermissionMasked(PermissionMasked {
                    scope: scope.clone(),
                    pattern: pattern.clone(),
                })])
            }
            Unmask { scope, pattern, .. } => {
                self.scope(scope)?;
                self.authorize_masks(scope)?;
                if !self
                    .org
                    .masks
                    .get(ScopeRef::of(scope))
                    .is_some_and(|m| m.contains_key(pattern))
                {
                    return Err(Rejection::not_found(format!(
                        "`{pattern}` is not masked on `{scope}`"
                    )));
                }
                Ok(vec![EventPayload::PermissionUnmasked(PermissionUnmasked {
                    scope: scope.clone(),
                    pattern: pattern.clone(),
                })])
            }
            SuspendMember { user, .. } => {
                self.authorize("org.members.manage", &Scope::Org)?;
                let m = self.member(user)?;
                self.not_owner(user, "be suspended")?;
                if !m.is_active() {
                    return Err(Rejection::invalid(format!("`{user}` is already suspended")));
                }
                Ok(vec![EventPayload::MemberSuspended(MemberSuspended {
                    user: user.clone(),
                })])
            }
            ReactivateMember { user, .. } => {
                self.authorize("org.members.manage", &Scope::Org)?;
                let m = self.member(user)?;
                if m.is_active() {
                    return Err(Rejection::invalid(format!("`{user}` is not suspended")));
                }
                Ok(vec![EventPayload::MemberReactivated(MemberReactivated {
                    user: user.clone(),
                })])
            }
            RemoveMember { user, .. } => {
                self.authorize("org.members.manage", &Scope::Org)?;
                self.member(user)?;
                self.not_owner(user, "be removed")?;
                Ok(vec![EventPayload::MemberRemoved(MemberRemoved {
                    user: user.clone(),
                })])
            }
            LeaveOrg { .. } => {
                self.member(self.actor)?;
                self.active_actor()?;
                self.not_owner(self.actor, "leave it; transfer ownership first")?;
                Ok(vec![EventPayload::MemberLeft(MemberLeft {
                    user: self.actor.clone(),
                })])
            }
            TransferOwnership {
                to,
                former_owner_role,
                ..
            } => {
                if let Some(r) = former_owner_role {
                    self.role_of_kind(r, ScopeKind::Org)?;
                }
                self.active_actor()?;
                if self.actor != &self.org.owner {
                    return Err(Rejection::forbidden(format!(
                        "only the owner `{}` may transfer ownership of org `{}`",
                        self.org.owner,
                        self.org_id()
                    )));
                }
                let target = self.member(to)?;
                if to == self.actor {
                    return Err(Rejection::invalid(format!("`{to}` is already the owner")));
                }
                if !target.is_active() {
                    return Err(Rejection::suspended(format!(
                        "`{to}` is suspended and cannot become the owner"
                    )));
                }
                let current = self
                    .org
                    .members
                    .get(self.actor)
                    .and_then(|m| m.roles.org.as_ref())
                    .map(|a| a.role.clone());
                let former_owner_role = former_owner_role
                    .clone()
                    .or_else(|| self.org.defaults.org.clone())
                    .or(current);
                Ok(vec![EventPayload::OwnershipTransferred(
                    OwnershipTransferred {
                        from: self.actor.clone(),
                        to: to.clone(),
                        former_owner_role,
                    },
                )])
            }
        }
    }

    fn not_owner(&self, user: &UserId, what: &str) -> Result<(), Rejection> {
        if user == &self.org.owner {
            Err(Rejection::owner_protected(format!(
                "`{user}` owns org `{}` and cannot {what}",
                self.org_id()
            )))
        } else {
            Ok(())
        }
    }

    fn authorize_masks(&self, scope: &Scope) -> Result<(), Rejection> {
        self.active_actor()?;
        if self.holds("org.settings.manage", &Scope::Org)
            || (*scope != Scope::Org && self.holds("team.settings.manage", scope))
        {
            Ok(())
        } else {
            Err(self.lacks(
                if *scope == Scope::Org {
                    "org.settings.manage"
                } else {
                    "team.settings.manage"
                },
                scope,
            ))
        }
    }

    /// Links giving the guest role may be made by guest inviters; any other needs `org.members.invite`.
    fn authorize_links(&self, role: Option<&RoleId>) -> Result<(), Rejection> {
        self.active_actor()?;
        let guest_link = role.is_some_and(|r| r.as_str() == GUEST_ROLE);
        if self.holds("org.members.invite", &Scope::Org)
            || (guest_link && self.holds("org.guests.invite", &Scope::Org))
        {
            Ok(())
        } else {
            Err(self.lacks("org.members.invite", &Scope::Org))
        }
    }

    fn no_invite(&self, invite: &crate::ids::InviteId) -> Rejection {
        Rejection::not_found(format!(
            "invite `{invite}` does not exist in org `{}`",
            self.org_id()
        ))
    }

    /// An invite that may still be accepted or declined.
    fn open_invite(
        &self,
        invite: &crate::ids::InviteId,
    ) -> Result<&'a crate::state::Invite, Rejection> {
        let i = self
            .org
            .invites
            .get(invite)
            .ok_or_else(|| self.no_invite(invite))?;
        if i.status != InviteStatus::Pending {
            return Err(closed_invite(invite, &i.status));
        }
        if i.expires_at.is_some_and(|e| e <= self.now) {
            return Err(Rejection::invite_expired(format!(
                "invite `{invite}` expired at `{}`",
                i.expires_at.map(|t| t.to_string()).unwrap_or_default()
            )));
        }
        Ok(i)
    }

    #[allow(clippy::too_many_arguments)]
    fn invite(
        &self,
        invite: &crate::ids::InviteId,
        email: &str,
        role: Option<&RoleId>,
        assignments: &[InviteAssignment],
        grants: &[InviteGrant],
        expires_at: Option<Timestamp>,
        guest: bool,
    ) -> Decision {
        validate_email(email)?;
        self.future(expires_at, "invite expiry")?;
        if assignments.len() + grants.len() > MAX_INVITE_ITEMS {
            return Err(Rejection::invalid(format!(
                "an invite carries at most {MAX_INVITE_ITEMS} assignments and grants"
            )));
        }
        let role = if guest {
            if let Some(r) = role.filter(|r| r.as_str() != GUEST_ROLE) {
                return Err(Rejection::invalid(format!(
                    "a guest invite gives the `guest` role only, not `{r}`"
                )));
            }
            let guest_role =
                RoleId::new(GUEST_ROLE).map_err(|e| Rejection::invalid(e.to_string()))?;
            Some(guest_role)
        } else {
            role.cloned().or_else(|| self.org.defaults.org.clone())
        };
        if let Some(r) = &role {
            self.role_of_kind(r, ScopeKind::Org)?;
        }
        let mut scopes = BTreeSet::new();
        for a in assignments {
            if a.scope == Scope::Org {
                return Err(Rejection::invalid(
                    "an invite names its org role in `role`, not among `assignments`",
                ));
            }
            if !scopes.insert(&a.scope) {
                return Err(Rejection::invalid(format!(
                    "the invite assigns two roles on `{}`",
                    a.scope
                )));
            }
            self.scope(&a.scope)?;
            self.role_of_kind(&a.role, a.scope.kind())?;
            self.future(a.expires_at, "assignment expiry")?;
        }
        for g in grants {
            self.scope(&g.scope)?;
            self.grantable(&g.permission, &g.scope)?;
            self.future(g.expires_at, "grant expiry")?;
        }
        self.active_actor()?;
        let may = self.holds("org.members.invite", &Scope::Org)
            || (guest && self.holds("org.guests.invite", &Scope::Org));
        if !may {
            return Err(self.lacks(
                if guest {
                    "org.guests.invite"
                } else {
                    "org.members.invite"
                },
                &Scope::Org,
            ));
        }
        for s in assignments
            .iter()
            .map(|a| &a.scope)
            .chain(grants.iter().map(|g| &g.scope))
        {
            if !self.holds(membership_permission(s), s) {
                return Err(self.lacks(membership_permission(s), s));
            }
        }
        if let Some(r) = &role {
            self.role_escalation(r, &Scope::Org)?;
        }
        for a in assignments {
            self.role_escalation(&a.role, &a.scope)?;
        }
        for g in grants {
            self.no_escalation([&g.permission], &g.scope, "the invite's grant")?;
        }
        if self.org.invites.contains_key(invite) {
            return Err(Rejection::already_exists(format!(
                "invite `{invite}` already exists"
            )));
        }
        Ok(vec![EventPayload::InviteIssued(InviteIssued {
            invite: invite.clone(),
            email: email.to_string(),
            role,
            assignments: assignments.to_vec(),
            grants: grants.to_vec(),
            expires_at,
            guest,
        })])
    }

    fn already_member(&self) -> Result<(), Rejection> {
        if self.org.members.contains_key(self.actor) {
            Err(Rejection::already_exists(format!(
                "`{}` is already a member of org `{}`",
                self.actor,
                self.org_id()
            )))
        } else {
            Ok(())
        }
    }

    /// The org role a joining member gets: the one named if it still exists, else the default.
    fn joining_role(&self, named: Option<&RoleId>) -> Option<RoleId> {
        named
            .filter(|r| {
                self.org
                    .roles
                    .get(*r)
                    .is_some_and(|r| r.kind == ScopeKind::Org)
            })
            .cloned()
            .or_else(|| self.org.defaults.org.clone())
    }

    fn accept_invite(&self, invite: &crate::ids::InviteId) -> Decision {
        let i = self.open_invite(invite)?;
        self.already_member()?;
        let user = self.actor.clone();
        let mut events = vec![
            EventPayload::InviteAccepted(InviteAccepted {
                invite: invite.clone(),
                user: user.clone(),
            }),
            EventPayload::MemberJoined(MemberJoined {
                user: user.clone(),
                role: self.joining_role(i.role.as_ref()),
                via: JoinedVia::Invite(invite.clone()),
                guest: i.guest,
            }),
        ];
        // What was promised at issue time is given if it still makes sense: a scope or role deleted
        // since, or an expiry already passed, is skipped rather than failing the acceptance.
        let live = |t: Option<Timestamp>| t.is_none_or(|t| t > self.now);
        for a in &i.assignments {
            let fits = self.org.scope_exists(ScopeRef::of(&a.scope))
                && self
                    .org
                    .roles
                    .get(&a.role)
                    .is_some_and(|r| r.kind == a.scope.kind());
            if fits && live(a.expires_at) {
                events.push(EventPayload::RoleAssigned(RoleAssigned {
                    user: user.clone(),
                    scope: a.scope.clone(),
                    role: a.role.clone(),
                    expires_at: a.expires_at,
                }));
            }
        }
        for g in &i.grants {
            let fits = self.org.scope_exists(ScopeRef::of(&g.scope))
                && self.org.catalog.contains(&g.permission);
            if fits && live(g.expires_at) {
                events.push(EventPayload::PermissionGranted(PermissionGranted {
                    user: user.clone(),
                    scope: g.scope.clone(),
                    permission: g.permission.clone(),
                    expires_at: g.expires_at,
                }));
            }
        }
        Ok(events)
    }

    fn join_by_link(&self, token: &str) -> Decision {
        if token.is_empty() || token.len() > 256 {
            return Err(Rejection::invalid(
                "an invite link token is 1 to 256 characters",
            ));
        }
        let hash = hash_token(token);
        let (id, link) = self
            .org
            .links
            .iter()
            .find(|(_, l)| l.token_hash == hash)
            .ok_or_else(|| {
                Rejection::not_found(format!(
                    "no invite link of org `{}` has that token",
                    self.org_id()
                ))
            })?;
        if link.revoked {
            return Err(Rejection::invite_closed(format!(
                "invite link `{id}` was revoked"
            )));
        }
        if link.max_uses.is_some_and(|m| link.uses >= m) {
            return Err(Rejection::invite_closed(format!(
                "invite link `{id}` is used up"
            )));
        }
        if let Some(e) = link.expires_at.filter(|e| *e <= self.now) {
            return Err(Rejection::invite_expired(format!(
                "invite link `{id}` expired at `{e}`"
            )));
        }
        self.already_member()?;
        let role = self.joining_role(link.role.as_ref());
        let guest = role.as_ref().is_some_and(|r| r.as_str() == GUEST_ROLE);
        Ok(vec![EventPayload::MemberJoined(MemberJoined {
            user: self.actor.clone(),
            role,
            via: JoinedVia::Link(id.clone()),
            guest,
        })])
    }

    fn delete_role(&self, role: &RoleId, move_to: Option<&RoleId>) -> Decision {
        let r = self.role(role)?;
        if let Some(to) = move_to {
            if to == role {
                return Err(Rejection::invalid(format!(
                    "role `{role}` cannot move its members to itself"
                )));
            }
            self.role_of_kind(to, r.kind)?;
        }
        self.authorize("org.roles.manage", &Scope::Org)?;
        let holders = self.org.role_holders(role);
        let is_default = self.org.defaults.get(r.kind) == Some(role);
        let Some(to) = move_to else {
            if !holders.is_empty() {
                return Err(Rejection::role_in_use(format!(
                    "role `{role}` is held by {}; name a role to move them to",
                    match holders.len() {
                        1 => "1 assignment".to_string(),
                        n => format!("{n} assignments"),
                    }
                )));
            }
            if is_default {
                return Err(Rejection::role_in_use(format!(
                    "role `{role}` is the default {} role; name a role to replace it",
                    r.kind
                )));
            }
            return Ok(vec![EventPayload::RoleDeleted(RoleDeleted {
                role: role.clone(),
                moved_to: None,
            })]);
        };
        if !holders.is_empty() || is_default {
            self.role_escalation(to, &Scope::Org)?;
        }
        let mut events = Vec::with_capacity(holders.len() + 1);
        for (user, scope) in holders {
            let expires_at = self
                .org
                .members
                .get(&user)
                .and_then(|m| m.roles.get(ScopeRef::of(&scope)))
                .and_then(|a| a.expires_at);
            events.push(EventPayload::RoleAssigned(RoleAssigned {
                user,
                scope,
                role: to.clone(),
                expires_at,
            }));
        }
        events.push(EventPayload::RoleDeleted(RoleDeleted {
            role: role.clone(),
            moved_to: Some(to.clone()),
        }));
        Ok(events)
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
