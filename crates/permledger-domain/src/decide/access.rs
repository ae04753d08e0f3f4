//! Deciding the commands about access: roles assigned and unassigned, permissions granted and revoked, masks.

use super::*;

impl<'a> Decider<'a> {
    /// Decides `assign_role`.
    pub(super) fn assign_role(
        &self,
        user: &UserId,
        scope: &Scope,
        role: &RoleId,
        expires_at: &Option<Timestamp>,
    ) -> Decision {
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

    /// Decides `unassign`.
    pub(super) fn unassign(&self, user: &UserId, scope: &Scope) -> Decision {
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

    /// Decides `grant`.
    pub(super) fn grant(
        &self,
        user: &UserId,
        scope: &Scope,
        permission: &PermissionKey,
        expires_at: &Option<Timestamp>,
    ) -> Decision {
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

    /// Decides `revoke`.
    pub(super) fn revoke(
        &self,
        user: &UserId,
        scope: &Scope,
        permission: &PermissionKey,
    ) -> Decision {
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

    /// Decides `mask`.
    pub(super) fn mask(&self, scope: &Scope, pattern: &Pattern) -> Decision {
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

    /// Decides `unmask`.
    pub(super) fn unmask(&self, scope: &Scope, pattern: &Pattern) -> Decision {
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

    pub(super) fn authorize_masks(&self, scope: &Scope) -> Result<(), Rejection> {
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
}
