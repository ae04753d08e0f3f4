//! Whole orgs at a moment: the list of orgs, an org entire (owner, teams and inboxes, members
//! with their status, roles and grants, masks, roles as defined, pending invites and open
//! links), and one user's access on every scope with the reason for each permission. Every
//! answer is read from the history at the moment's position, so it equals a fold of the log's
//! prefix up to it (tested by property).

use permledger_domain::check::{self, AccessView};
use permledger_domain::state::MemberStatus;
use permledger_domain::{Explanation, InboxId, OrgId, PermissionKey, Scope, Seq, TeamId, UserId};
use serde::{Deserialize, Serialize};

use crate::export::{csv_digest_line, csv_line, Covers};
use crate::history::OrgAt;
use crate::read::{self, GrantHeld, OpenLink, PendingInvite, RoleHeld, RoleView};
use crate::{Moment, Views};

/// One org in the list of orgs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgSummary {
    pub org: OrgId,
    pub name: String,
    pub owner: UserId,
    /// Members, the owner included.
    pub members: usize,
    pub teams: usize,
    pub inboxes: usize,
    /// The position of the org's creation.
    pub created_seq: Seq,
}

fn summary(o: &OrgAt<'_>) -> OrgSummary {
    let h = o.history();
    OrgSummary {
        org: h.id.clone(),
        name: h.name.at(o.position()).cloned().unwrap_or_default(),
        owner: o.owner().0.clone(),
        members: o.user_ids().count(),
        teams: o.team_ids().count(),
        inboxes: o.inbox_ids().count(),
        created_seq: h.created(),
    }
}

/// Every org that existed at `seq`, in id order, or those `visible` lets through.
pub fn orgs(views: &Views, seq: Seq, visible: impl Fn(&OrgId) -> bool) -> Vec<OrgSummary> {
    let mut ids: Vec<&OrgId> = views.histories.keys().filter(|o| visible(o)).collect();
    ids.sort();
    ids.into_iter()
        .filter_map(|id| views.org_at(id, seq))
        .map(|o| summary(&o))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamView {
    pub team: TeamId,
    pub name: String,
    pub inboxes: Vec<InboxId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InboxView {
    pub inbox: InboxId,
    pub name: String,
    /// None: directly under the org.
    pub team: Option<TeamId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user: UserId,
    pub status: MemberStatus,
    pub owner: bool,
    pub guest: bool,
    /// The position of the join (or of the org's creation, for its first owner).
    pub joined_seq: Seq,
    pub roles: Vec<RoleHeld>,
    pub grants: Vec<GrantHeld>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MaskView {
    pub scope: Scope,
    pub pattern: String,
    pub seq: Seq,
}

/// An org entire at a moment, and the position and chain link it was read at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Snapshot {
    pub org: OrgId,
    pub name: String,
    pub at: Moment,
    /// The position and chain link of the moment: `permledger verify --digest` ties the
    /// snapshot to the log.
    pub covers: Covers,
    pub owner: UserId,
    pub teams: Vec<TeamView>,
    pub inboxes: Vec<InboxView>,
    pub members: Vec<MemberView>,
    pub masks: Vec<MaskView>,
    pub roles: Vec<RoleView>,
    pub invites: Vec<PendingInvite>,
    pub links: Vec<OpenLink>,
}

/// The org at a moment; `covers` is the chain link of `at.seq` (from the log).
pub fn snapshot(o: &OrgAt<'_>, at: Moment, covers: Covers) -> Snapshot {
    build(o, at, covers, o.user_ids())
}

/// The snapshot with one page of its members (in id order, `take` of them after the first
/// `skip`), and how many members there are in all: an org of 100,000 members is read a page at
/// a time, the whole list being the download's.
pub fn snapshot_page(
    o: &OrgAt<'_>,
    at: Moment,
    covers: Covers,
    skip: usize,
    take: usize,
) -> (Snapshot, usize) {
    let ids: Vec<&UserId> = o.user_ids().collect();
    let total = ids.len();
    let page = ids.into_iter().skip(skip).take(take);
    (build(o, at, covers, page), total)
}

fn build<'o>(
    o: &OrgAt<'o>,
    at: Moment,
    covers: Covers,
    members: impl Iterator<Item = &'o UserId>,
) -> Snapshot {
    let h = o.history();
    let n = o.position();
    let mut teams: Vec<TeamView> = o
        .team_ids()
        .filter_map(|t| {
            h.teams.get(t)?.at(n).map(|x| TeamView {
                team: t.clone(),
                name: x.name.clone(),
                inboxes: Vec::new(),
            })
        })
        .collect();
    let inboxes: Vec<InboxView> = o
        .inbox_ids()
        .filter_map(|i| {
            h.inboxes.get(i)?.at(n).map(|x| InboxView {
                inbox: i.clone(),
                name: x.name.clone(),
                team: x.team.clone(),
            })
        })
        .collect();
    // Teams are in id order: each inbox finds its team by a binary search.
    for i in &inboxes {
        if let Some(t) = i.team.as_ref() {
            if let Ok(k) = teams.binary_search_by(|x| x.team.cmp(t)) {
                teams[k].inboxes.push(i.inbox.clone());
            }
        }
    }
    let members = members
        .filter_map(|u| {
            let view = read::user_view(o, u, at.time)?;
            let core = h.members.get(u)?.core.at(n)?;
            Some(MemberView {
                user: u.clone(),
                status: view.status,
                owner: view.owner,
                guest: core.guest,
                joined_seq: core.joined_seq,
                roles: view.roles,
                grants: view.grants,
            })
        })
        .collect();
    let masks = check::all_scopes(o)
        .flat_map(|s| {
            o.masks_on(s).map(move |(p, seq)| MaskView {
                scope: s.to_scope(),
                pattern: p.to_string(),
                seq,
            })
        })
        .collect();
    let (invites, links) = read::pending(o, at.time);
    Snapshot {
        org: h.id.clone(),
        name: h.name.at(n).cloned().unwrap_or_default(),
        at,
        covers,
        owner: o.owner().0.clone(),
        teams,
        inboxes,
        members,
        masks,
        roles: read::roles(o),
        invites,
        links,
    }
}

/// The tables of a snapshot as CSV, one file each.
pub const SNAPSHOT_TABLES: &[&str] = &[
    "members", "grants", "teams", "inboxes", "roles", "masks", "invites", "links",
];

/// One table of a snapshot as a CSV file: a header, a row per item, and the digest line. None
/// for a table name not in `SNAPSHOT_TABLES`.
pub fn csv_table(s: &Snapshot, table: &str) -> Option<String> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let time = |t: Option<permledger_domain::Timestamp>| opt(t.map(|t| t.to_string()));
    let (header, rows): (&[&str], Vec<Vec<String>>) = match table {
        "members" => (
            &[
                "user",
                "status",
                "owner",
                "guest",
                "joined_seq",
                "scope",
                "role",
                "expires_at",
                "live",
                "seq",
            ],
            s.members
                .iter()
                .flat_map(|m| {
                    let base = vec![
                        m.user.to_string(),
                        format!("{:?}", m.status).to_lowercase(),
                        m.owner.to_string(),
                        m.guest.to_string(),
                        m.joined_seq.to_string(),
                    ];
                    let roles: Vec<Vec<String>> = m
                        .roles
                        .iter()
                        .map(|r| {
                            let mut row = base.clone();
                            row.extend([
                                r.scope.to_string(),
                                r.role.to_string(),
                                time(r.expires_at),
                                r.live.to_string(),
                                r.seq.to_string(),
                            ]);
                            row
                        })
                        .collect();
                    if roles.is_empty() {
                        let mut row = base;
                        row.extend(std::iter::repeat_n(String::new(), 5));
                        vec![row]
                    } else {
                        roles
                    }
                })
                .collect(),
        ),
        "grants" => (
            &["user", "scope", "permission", "expires_at", "live", "seq"],
            s.members
                .iter()
                .flat_map(|m| {
                    m.grants.iter().map(|g| {
                        vec![
                            m.user.to_string(),
                            g.scope.to_string(),
                            g.permission.to_string(),
                            time(g.expires_at),
                            g.live.to_string(),
                            g.seq.to_string(),
                        ]
                    })
                })
                .collect(),
        ),
        "teams" => (
            &["team", "name", "inboxes"],
            s.teams
                .iter()
                .map(|t| {
                    vec![
                        t.team.to_string(),
                        t.name.clone(),
                        t.inboxes
                            .iter()
                            .map(|i| i.to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                    ]
                })
                .collect(),
        ),
        "inboxes" => (
            &["inbox", "name", "team"],
            s.inboxes
                .iter()
                .map(|i| {
                    vec![
                        i.inbox.to_string(),
                        i.name.clone(),
                        opt(i.team.as_ref().map(|t| t.to_string())),
                    ]
                })
                .collect(),
        ),
        "roles" => (
            &["role", "name", "kind", "patterns", "permissions"],
            s.roles
                .iter()
                .map(|r| {
                    vec![
                        r.role.to_string(),
                        r.name.clone(),
                        r.kind.as_str().to_string(),
                        r.patterns.join(" "),
                        r.permissions
                            .iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                    ]
                })
                .collect(),
        ),
        "masks" => (
            &["scope", "pattern", "seq"],
            s.masks
                .iter()
                .map(|m| vec![m.scope.to_string(), m.pattern.clone(), m.seq.to_string()])
                .collect(),
        ),
        "invites" => (
            &[
                "invite",
                "email",
                "role",
                "guest",
                "expires_at",
                "issued_by",
            ],
            s.invites
                .iter()
                .map(|i| {
                    vec![
                        i.invite.clone(),
                        i.email.clone(),
                        opt(i.role.as_ref().map(|r| r.to_string())),
                        i.guest.to_string(),
                        time(i.expires_at),
                        i.issued_by.to_string(),
                    ]
                })
                .collect(),
        ),
        "links" => (
            &[
                "link",
                "role",
                "uses",
                "max_uses",
                "expires_at",
                "created_by",
            ],
            s.links
                .iter()
                .map(|l| {
                    vec![
                        l.link.clone(),
                        opt(l.role.as_ref().map(|r| r.to_string())),
                        l.uses.to_string(),
                        opt(l.max_uses.map(|m| m.to_string())),
                        time(l.expires_at),
                        l.created_by.to_string(),
                    ]
                })
                .collect(),
        ),
        _ => return None,
    };
    let mut out = csv_line(header.iter().copied());
    for r in rows {
        out.push_str(&csv_line(r));
    }
    out.push_str(&csv_digest_line(&s.covers));
    Some(out)
}

/// One permission a user holds on one scope, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessRow {
    pub scope: Scope,
    pub permission: PermissionKey,
    /// The facts that allow it, each citing the event that created it.
    pub facts: Vec<permledger_domain::Fact>,
}

/// Every permission `user` holds on every scope at the moment, with the facts behind each.
pub fn access(o: &OrgAt<'_>, user: &UserId, at: Moment) -> Vec<AccessRow> {
    let mut out = Vec::new();
    for s in check::all_scopes(o) {
        let scope = s.to_scope();
        for key in check::permissions(o, user, &scope, at.time) {
            let Explanation { facts, .. } = check::explain(o, user, &key, &scope, at.time);
            out.push(AccessRow {
                scope: scope.clone(),
                permission: key,
                facts,
            });
        }
    }
    out
}

/// A person found by `people`: a member, or someone invited who is not (yet) one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PersonMatch {
    /// The member's id; None for an invite not accepted.
    pub user: Option<UserId>,
    /// The addresses the org invited this person at.
    pub emails: Vec<String>,
    /// The member's status; None for someone who is not a member at the moment.
    pub status: Option<MemberStatus>,
}

/// The people of the org at the moment whose id or invited address contains `text` (ignoring
/// case): members first, in id order, with the addresses they accepted invites at; then those
/// who accepted an invite and are no longer members; then the addresses invited that no one
/// accepted.
pub fn people(o: &OrgAt<'_>, text: &str) -> Vec<PersonMatch> {
    let needle = text.trim().to_lowercase();
    let n = o.position();
    let mut emails: std::collections::BTreeMap<&UserId, Vec<String>> = Default::default();
    let mut unaccepted: Vec<String> = Vec::new();
    for hist in o.history().invites.values() {
        let Some(i) = hist.at(n) else { continue };
        match &i.status {
            permledger_domain::state::InviteStatus::Accepted(u) => {
                emails.entry(u).or_default().push(i.email.clone())
            }
            _ => unaccepted.push(i.email.clone()),
        }
    }
    let hit = |s: &str| s.to_lowercase().contains(&needle);
    let mut out: Vec<PersonMatch> = o
        .user_ids()
        .filter_map(|u| {
            let mut mails = emails.remove(u).unwrap_or_default();
            mails.sort();
            mails.dedup();
            let found = hit(u.as_str()) || mails.iter().any(|m| hit(m));
            found.then(|| PersonMatch {
                user: Some(u.clone()),
                emails: mails,
                status: o.member(u).map(|(s, _)| s),
            })
        })
        .collect();
    // People who accepted an invite and are no longer members.
    for (u, mut mails) in emails {
        mails.sort();
        mails.dedup();
        if hit(u.as_str()) || mails.iter().any(|m| hit(m)) {
            out.push(PersonMatch {
                user: Some(u.clone()),
                emails: mails,
                status: None,
            });
        }
    }
    let members: std::collections::BTreeSet<&String> = out.iter().flat_map(|p| &p.emails).collect();
    let mut rest: Vec<String> = unaccepted
        .into_iter()
        .filter(|m| hit(m) && !members.contains(m))
        .collect();
    rest.sort();
    rest.dedup();
    out.extend(rest.into_iter().map(|m| PersonMatch {
        user: None,
        emails: vec![m],
        status: None,
    }));
    out
}

/// Every permission anyone holds on `scope` at the moment (through a role there or above, a
/// grant, or ownership), by user in id order, with the facts behind each.
pub fn scope_access(o: &OrgAt<'_>, scope: &Scope, at: Moment) -> Vec<(UserId, Vec<AccessRow>)> {
    // On a team or inbox, only the members whose facts bear on it can hold anything there (an
    // org of 100,000 members has a few hundred on a team); on the org, anyone.
    let concerned = crate::timeline::concerned(o.history(), None, Some(scope));
    let users: Vec<&UserId> = match &concerned {
        Some(users) => users.iter().filter(|u| o.member(u).is_some()).collect(),
        None => o.user_ids().collect(),
    };
    users
        .into_iter()
        .filter_map(|user| {
            let rows: Vec<AccessRow> = check::permissions(o, user, scope, at.time)
                .into_iter()
                .map(|key| {
                    let Explanation { facts, .. } = check::explain(o, user, &key, scope, at.time);
                    AccessRow {
                        scope: scope.clone(),
                        permission: key,
                        facts,
                    }
                })
                .collect();
            (!rows.is_empty()).then(|| (user.clone(), rows))
        })
        .collect()
}
