//! The presets of `create_org`, read from the data files under `fixtures/presets/` (compiled in, so
//! the core stays free of IO). Each permission and role there cites the seed it comes from.

use serde::Deserialize;

use crate::catalog::{Catalog, Pattern, PermissionDef, PermissionKey};
use crate::command::PresetName;
use crate::event::{Defaults, RoleDef};
use crate::ids::{RoleId, ScopeKind, TeamId};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetFile {
    preset: PresetName,
    #[allow(dead_code)]
    source: String,
    permissions: Vec<PermissionEntry>,
    roles: Vec<RoleEntry>,
    defaults: Defaults,
    teams: Vec<TeamEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionEntry {
    key: PermissionKey,
    kind: ScopeKind,
    description: String,
    #[allow(dead_code)]
    source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    role: RoleId,
    name: String,
    kind: ScopeKind,
    permissions: Vec<Pattern>,
    #[allow(dead_code)]
    source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamEntry {
    team: TeamId,
    name: String,
    #[allow(dead_code)]
    source: String,
}

/// A preset resolved into what `org_created` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    pub name: PresetName,
    /// The administrative table followed by the preset's own permissions.
    pub catalog: Vec<PermissionDef>,
    pub roles: Vec<RoleDef>,
    pub defaults: Defaults,
    pub teams: Vec<(TeamId, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("preset `{preset}` is malformed: {reason}")]
pub struct PresetError {
    pub preset: &'static str,
    pub reason: String,
}

fn source(name: PresetName) -> &'static str {
    match name {
        PresetName::Teaminbox => include_str!("../../../fixtures/presets/teaminbox.json"),
        PresetName::Reply => include_str!("../../../fixtures/presets/reply.json"),
        PresetName::Replypad => include_str!("../../../fixtures/presets/replypad.json"),
        PresetName::Sms => include_str!("../../../fixtures/presets/sms.json"),
        PresetName::Telephony => include_str!("../../../fixtures/presets/telephony.json"),
        PresetName::Blank => include_str!("../../../fixtures/presets/blank.json"),
    }
}

impl Preset {
    /// Loads and checks a preset: every pattern matches a permission of an allowed kind, defaults
    /// name roles of their kind. A preset that fails is a build defect, reported as an error.
    pub fn load(name: PresetName) -> Result<Preset, PresetError> {
        let err = |reason: String| PresetError {
            preset: name.as_str(),
            reason,
        };
        let file: PresetFile =
            serde_json::from_str(source(name)).map_err(|e| err(e.to_string()))?;
        if file.preset != name {
            return Err(err(format!("file names preset `{}`", file.preset.as_str())));
        }
        let mut catalog = Catalog::default();
        for def in Catalog::administrative() {
            catalog.insert(def);
        }
        for p in &file.permissions {
            if catalog.contains(&p.key) {
                return Err(err(format!("permission `{}` declared twice", p.key)));
            }
            catalog.insert(PermissionDef {
                key: p.key.clone(),
                kind: p.kind,
                description: p.description.clone(),
            });
        }
        for r in &file.roles {
            for pattern in &r.permissions {
                if !catalog
                    .matching(pattern)
                    .any(|d| d.kind.depth() >= r.kind.depth())
                {
                    return Err(err(format!(
                        "role `{}` lists `{pattern}`, which matches nothing it may hold",
                        r.role
                    )));
                }
            }
        }
        for kind in [ScopeKind::Org, ScopeKind::Team, ScopeKind::Inbox] {
            if let Some(role) = file.defaults.get(kind) {
                if !file.roles.iter().any(|r| &r.role == role && r.kind == kind) {
                    return Err(err(format!(
                        "default {kind} role `{role}` is not a {kind} role of the preset"
                    )));
                }
            }
        }
        Ok(Preset {
            name,
            catalog: catalog.iter().cloned().collect(),
            roles: file
                .roles
                .into_iter()
                .map(|r| RoleDef {
                    role: r.role,
                    name: r.name,
                    kind: r.kind,
                    permissions: r.permissions,
                })
                .collect(),
            defaults: file.defaults,
            teams: file.teams.into_iter().map(|t| (t.team, t.name)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_loads_and_all_but_blank_have_a_guest_role() {
        for name in PresetName::ALL {
            let p = Preset::load(name).unwrap();
            let has_guest = p
                .roles
                .iter()
                .any(|r| r.role.as_str() == "guest" && r.kind == ScopeKind::Org);
            assert_eq!(has_guest, name != PresetName::Blank, "{name:?}");
        }
    }

    #[test]
    fn blank_is_the_administrative_catalog_alone() {
        let p = Preset::load(PresetName::Blank).unwrap();
        assert_eq!(p.catalog.len(), Catalog::administrative().len());
        assert!(p.roles.is_empty());
    }

    #[test]
    fn no_preset_role_reaches_billing() {
        for name in PresetName::ALL {
            let p = Preset::load(name).unwrap();
            for r in &p.roles {
                assert!(!r
                    .permissions
                    .iter()
                    .any(|p| p.as_str() == crate::catalog::BILLING));
            }
        }
    }
}
