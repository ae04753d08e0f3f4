//! Deciding the commands about an org itself: its name, its default roles, its catalog.

use super::*;

impl<'a> Decider<'a> {
    /// Decides `rename_org`.
    pub(super) fn rename_org(&self, name: &str) -> Decision {
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

    /// Decides `set_default_role`.
    pub(super) fn set_default_role(&self, kind: &ScopeKind, role: &RoleId) -> Decision {
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

    /// Decides `declare_permission`.
    pub(super) fn declare_permission(
        &self,
        key: &PermissionKey,
        kind: &ScopeKind,
        description: &Option<String>,
    ) -> Decision {
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
}
