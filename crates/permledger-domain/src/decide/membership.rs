//! Deciding the commands about membership: suspension, reactivation, removal, leaving, and ownership.

use super::*;

impl<'a> Decider<'a> {
    /// Decides `suspend_member`.
    pub(super) fn suspend_member(&self, user: &UserId) -> Decision {
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

    /// Decides `reactivate_member`.
    pub(super) fn reactivate_member(&self, user: &UserId) -> Decision {
        self.authorize("org.members.manage", &Scope::Org)?;
        let m = self.member(user)?;
        if m.is_active() {
            return Err(Rejection::invalid(format!("`{user}` is not suspended")));
        }
        Ok(vec![EventPayload::MemberReactivated(MemberReactivated {
            user: user.clone(),
        })])
    }

    /// Decides `remove_member`.
    pub(super) fn remove_member(&self, user: &UserId) -> Decision {
        self.authorize("org.members.manage", &Scope::Org)?;
        self.member(user)?;
        self.not_owner(user, "be removed")?;
        Ok(vec![EventPayload::MemberRemoved(MemberRemoved {
            user: user.clone(),
        })])
    }

    /// Decides `leave_org`.
    pub(super) fn leave_org(&self) -> Decision {
        self.member(self.actor)?;
        self.active_actor()?;
        self.not_owner(self.actor, "leave it; transfer ownership first")?;
        Ok(vec![EventPayload::MemberLeft(MemberLeft {
            user: self.actor.clone(),
        })])
    }

    /// Decides `transfer_ownership`.
    pub(super) fn transfer_ownership(
        &self,
        to: &UserId,
        former_owner_role: &Option<RoleId>,
    ) -> Decision {
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

    pub(super) fn not_owner(&self, user: &UserId, what: &str) -> Result<(), Rejection> {
        if user == &self.org.owner {
            Err(Rejection::owner_protected(format!(
                "`{user}` owns org `{}` and cannot {what}",
                self.org_id()
            )))
        } else {
            Ok(())
        }
    }
}
