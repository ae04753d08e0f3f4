//! Deciding the commands about roles: defined, changed, renamed (deleted in the parent, which shares its rules with the moves).

use super::*;

impl<'a> Decider<'a> {
    /// Decides `define_role`.
    pub(super) fn define_role(
        &self,
        role: &RoleId,
        name: &Option<String>,
        kind: &ScopeKind,
        permissions: &[Pattern],
    ) -> Decision {
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
            permissions: permissions.to_vec(),
        })])
    }

    /// Decides `change_role`.
    pub(super) fn change_role(
        &self,
        role: &RoleId,
        add: &[Pattern],
        remove: &[Pattern],
    ) -> Decision {
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
            added: add.to_vec(),
            removed: remove.to_vec(),
        })])
    }

    /// Decides `rename_role`.
    pub(super) fn rename_role(&self, role: &RoleId, name: &str) -> Decision {
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

    pub(super) fn delete_role(&self, role: &RoleId, move_to: Option<&RoleId>) -> Decision {
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
