//! Deciding the commands about invites and invite links: issued, revoked, declined (accepted and joined by link in the parent).

use super::*;
use crate::ids::{InviteId, LinkId};

impl<'a> Decider<'a> {
    /// Decides `revoke_invite`.
    pub(super) fn revoke_invite(&self, invite: &InviteId) -> Decision {
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

    /// Decides `decline_invite`.
    pub(super) fn decline_invite(&self, invite: &InviteId) -> Decision {
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

    /// Decides `create_invite_link`.
    pub(super) fn create_invite_link(
        &self,
        link: &LinkId,
        role: &Option<RoleId>,
        max_uses: &Option<u32>,
        expires_at: &Option<Timestamp>,
    ) -> Decision {
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

    /// Decides `revoke_invite_link`.
    pub(super) fn revoke_invite_link(&self, link: &LinkId) -> Decision {
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

    pub(super) fn no_invite(&self, invite: &crate::ids::InviteId) -> Rejection {
        Rejection::not_found(format!(
            "invite `{invite}` does not exist in org `{}`",
            self.org_id()
        ))
    }

    /// An invite that may still be accepted or declined.
    pub(super) fn open_invite(
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
    pub(super) fn invite(
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

    pub(super) fn already_member(&self) -> Result<(), Rejection> {
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
    pub(super) fn joining_role(&self, named: Option<&RoleId>) -> Option<RoleId> {
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

    pub(super) fn accept_invite(&self, invite: &crate::ids::InviteId) -> Decision {
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

    pub(super) fn join_by_link(&self, token: &str) -> Decision {
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

    /// Links giving the guest role may be made by guest inviters; any other needs `org.members.invite`.
    pub(super) fn authorize_links(&self, role: Option<&RoleId>) -> Result<(), Rejection> {
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
}
