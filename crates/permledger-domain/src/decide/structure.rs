//! Deciding the commands about the scopes: teams and inboxes created, renamed, moved and deleted.

use super::*;

impl<'a> Decider<'a> {
    /// Decides `create_team`.
    pub(super) fn create_team(&self, team: &TeamId, name: &Option<String>) -> Decision {
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

    /// Decides `rename_team`.
    pub(super) fn rename_team(&self, team: &TeamId, name: &str) -> Decision {
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

    /// Decides `delete_team`.
    pub(super) fn delete_team(&self, team: &TeamId) -> Decision {
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

    /// Decides `create_inbox`.
    pub(super) fn create_inbox(
        &self,
        inbox: &InboxId,
        team: &Option<TeamId>,
        name: &Option<String>,
    ) -> Decision {
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

    /// Decides `rename_inbox`.
    pub(super) fn rename_inbox(&self, inbox: &InboxId, name: &str) -> Decision {
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

    /// Decides `move_inbox`.
    pub(super) fn move_inbox(&self, inbox: &InboxId, team: &Option<TeamId>) -> Decision {
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

    /// Decides `delete_inbox`.
    pub(super) fn delete_inbox(&self, inbox: &InboxId) -> Decision {
        let parent = self.inbox(inbox)?;
        self.authorize("team.inboxes.delete", &parent_scope(parent))?;
        Ok(vec![EventPayload::InboxDeleted(InboxDeleted {
            inbox: inbox.clone(),
        })])
    }
}
