//! What the server answers on success. Each read of one org says the moment it answered at.

use permledger_domain::state::MemberStatus;
use permledger_domain::{Event, Explanation, PermissionKey, RoleId, Scope, Seq, Timestamp, UserId};
use permledger_views::read::{OpenLink, PendingInvite, RoleView, UserView};
use permledger_views::Moment;
use serde::{Deserialize, Serialize};

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthAnswer {
    /// `ok`, or `read_only` when the server was opened for reading only (`serve --read-only`).
    pub status: String,
    /// The last position the views hold.
    pub seq: Seq,
    /// Why commands are refused, when the server reads only: opened so on purpose, or the log's
    /// damage and the last good event it serves up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<String>,
    /// A cluster node's part (`serve --cluster`): its role, who writes, how far behind it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterHealth>,
}

/// A cluster node as it sees itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterHealth {
    /// This node's name (`--node`).
    pub node: String,
    /// `writer` (it takes commands), `replica` (it follows the stream and forwards commands to
    /// the writer), `joining` (catching up) or `stopped` (the stream held a batch that does
    /// not extend its chain: it serves what it held and follows no further).
    #[schema(pattern = "^(writer|replica|joining|stopped)$")]
    pub role: String,
    /// Why it is not the writer, or why it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The writer's node name, as the lease says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
    /// Where the writer takes commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_address: Option<String>,
    /// Events the stream holds that this node has not folded yet.
    pub lag_events: u64,
    /// For the last batch folded: milliseconds from the stream's acknowledgement to its fold.
    pub lag_ms: u64,
    /// Why NATS could not be asked lately, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_trouble: Option<String>,
}

/// One stored record of the log, as `GET /v1/records` sends it: its position, its chain hash
/// and its stored bytes, both in lowercase hex. A replica checks the hash against the link
/// before it and the bytes before it folds the event they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredRecord {
    #[schema(minimum = 1)]
    pub seq: u64,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    #[schema(pattern = "^([0-9a-f]{2})+$")]
    pub bytes: String,
}

impl From<&permledger_log::Record> for StoredRecord {
    fn from(r: &permledger_log::Record) -> StoredRecord {
        StoredRecord {
            seq: r.seq,
            hash: r.hash.to_hex(),
            bytes: hex::encode(&r.bytes),
        }
    }
}

impl StoredRecord {
    /// The record it carries; an error names the field that is not hex of the right length.
    pub fn record(&self) -> Result<permledger_log::Record, String> {
        let hash = permledger_log::Hash::from_hex(&self.hash)
            .ok_or_else(|| format!("record {}: `hash` is not 64 lowercase hex digits", self.seq))?;
        let bytes = hex::decode(&self.bytes)
            .map_err(|e| format!("record {}: `bytes` is not hex: {e}", self.seq))?;
        Ok(permledger_log::Record {
            seq: self.seq,
            hash,
            bytes,
        })
    }
}

/// `GET /v1/digest`: the head of the log being served, to keep outside the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DigestAnswer {
    /// `SEQ:HASH`, as `permledger digest` prints it and `verify --digest` takes it.
    #[schema(pattern = "^[0-9]{1,19}:[0-9a-f]{64}$")]
    pub digest: String,
    pub seq: Seq,
    /// The chain link of event `seq`, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    /// When event `seq` was recorded (absent for an empty log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<permledger_domain::Timestamp>,
    /// The same digest stated now and signed with the ledger's key, to keep elsewhere and
    /// check later with the public key (absent when the ledger has no key: a folder opened
    /// read-only that no writer has opened since signing came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<permledger_log::SignedDigest>,
}

/// `POST /v1/commands`: what the command recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandAnswer {
    /// The position of the last event recorded (for `min_seq`).
    pub seq: Seq,
    /// True when an idempotency key answered an earlier identical command again.
    pub replayed: bool,
    /// The invite link's secret token, for `create_invite_link` only (shown once).
    pub token: Option<String>,
    pub events: Vec<Event>,
}

/// `GET /v1/orgs/{org}/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckAnswer {
    pub allowed: bool,
    /// With `explain=true`: every fact that allows it (empty when denied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Vec<permledger_domain::Fact>>,
    /// With `explain=true`, when denied: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial: Option<permledger_domain::Denial>,
    /// With `explain=true`: the answer in a sentence, each fact with who created it and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    /// With `explain=true`: the event behind every fact and denial cited, by its `seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<permledger_views::provenance::Source>>,
    pub at: Moment,
}

impl CheckAnswer {
    /// The answer with its explanation.
    pub fn explained(e: Explanation, at: Moment) -> CheckAnswer {
        CheckAnswer {
            allowed: e.allowed,
            facts: Some(e.facts),
            denial: e.denial,
            because: None,
            sources: None,
            at,
        }
    }

    /// The answer alone.
    pub fn plain(allowed: bool, at: Moment) -> CheckAnswer {
        CheckAnswer {
            allowed,
            facts: None,
            denial: None,
            because: None,
            sources: None,
            at,
        }
    }

    /// The explained answer with the events behind its facts and its sentence.
    pub fn with_provenance(
        mut self,
        asked: &permledger_views::provenance::Asked<'_>,
        sources: Vec<permledger_views::provenance::Source>,
    ) -> CheckAnswer {
        let e = self.clone().explanation();
        self.because = Some(permledger_views::provenance::sentence(asked, &e, &sources));
        self.sources = Some(sources);
        self
    }

    /// The explanation (no facts and no denial for an answer asked without `explain`).
    pub fn explanation(self) -> Explanation {
        Explanation {
            allowed: self.allowed,
            facts: self.facts.unwrap_or_default(),
            denial: self.denial,
        }
    }
}

/// `POST /v1/orgs/{org}/check/batch`: the answers in the order asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    pub at: Moment,
    pub answers: Vec<Explanation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WhoCanAnswer {
    pub at: Moment,
    pub users: Vec<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermissionsAnswer {
    pub at: Moment,
    pub permissions: Vec<PermissionKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScopesAnswer {
    pub at: Moment,
    pub scopes: Vec<Scope>,
}

/// One member of a scope: their role there (none on a team or inbox they reach through the org)
/// and their status in the org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberRow {
    pub user: UserId,
    pub role: Option<RoleId>,
    pub status: MemberStatus,
    /// Whether the user owns the org.
    #[serde(default)]
    pub owner: bool,
}

impl MemberRow {
    /// The members of a scope at a moment, the owner marked.
    pub fn of_scope(
        o: &permledger_views::OrgAt<'_>,
        scope: &Scope,
        at: Timestamp,
    ) -> Vec<MemberRow> {
        use permledger_domain::check::AccessView;
        let owner = o.owner().0.clone();
        permledger_views::read::members(o, scope, at)
            .into_iter()
            .map(|(user, (role, status))| MemberRow {
                owner: user == owner,
                user,
                role,
                status,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MembersAnswer {
    pub at: Moment,
    pub members: Vec<MemberRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserAnswer {
    pub at: Moment,
    pub user: UserView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolesAnswer {
    pub at: Moment,
    pub roles: Vec<RoleView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvitesAnswer {
    pub at: Moment,
    pub invites: Vec<PendingInvite>,
    pub links: Vec<OpenLink>,
}

/// `GET /v1/orgs/{org}/diff`: `user permission scope` triples gained and lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiffAnswer {
    pub from: Moment,
    pub to: Moment,
    /// `USER PERMISSION SCOPE` of every permission gained.
    pub gained: Vec<String>,
    pub lost: Vec<String>,
    /// Every gain and loss with its cause: the event or expiry that left it as it ends.
    pub changes: Vec<permledger_views::timeline::DiffRow>,
}

/// One verification's finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub ok: bool,
    /// What differs, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Finding {
    pub fn of<E: std::fmt::Display>(r: Result<(), E>) -> Finding {
        match r {
            Ok(()) => Finding {
                ok: true,
                problem: None,
            },
            Err(e) => Finding {
                ok: false,
                problem: Some(e.to_string()),
            },
        }
    }
}

/// The hash chain's verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainFinding {
    pub ok: bool,
    /// Events checked, when ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    /// The head as `SEQ:HASH`, when ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The first tampered event and how, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The digest asked for (`SEQ:HASH`; of several, the latest), when ok: the log extends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// When the log does not extend a digest given: that digest's position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departs_from: Option<Seq>,
}

/// The past at one position compared with a plain fold of the log up to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PastFinding {
    pub seq: Seq,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `POST /v1/verify`: `ok` when every part asked for holds; a part not asked for is null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyAnswer {
    pub ok: bool,
    pub chain: Option<ChainFinding>,
    pub projections: Option<Finding>,
    pub past: Vec<PastFinding>,
}

/// `POST /v1/sandboxes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SandboxAnswer {
    pub id: String,
    /// The sandbox's API: this path prefix, then any route of the API.
    pub base: String,
    pub clock: Timestamp,
}

/// `PUT /v1/sandboxes/{id}/clock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClockAnswer {
    pub now: Timestamp,
}

/// `GET /v1/orgs/{org}/timeline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineAnswer {
    pub from: Moment,
    pub to: Moment,
    pub intervals: Vec<permledger_views::timeline::Interval>,
}

/// `GET /v1/orgs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgsAnswer {
    pub at: Moment,
    pub orgs: Vec<permledger_views::snapshot::OrgSummary>,
}

/// One permission a user holds on one scope, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessItem {
    pub scope: permledger_domain::Scope,
    pub permission: permledger_domain::PermissionKey,
    /// The facts that allow it, each citing the event (`sources`) that created it.
    pub facts: Vec<permledger_domain::Fact>,
    /// Why, in a sentence.
    pub because: String,
}

/// `GET /v1/orgs/{org}/users/{user}/access`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessAnswer {
    pub user: permledger_domain::UserId,
    pub at: Moment,
    pub access: Vec<AccessItem>,
    /// The event behind every fact cited, by its `seq`.
    pub sources: Vec<permledger_views::provenance::Source>,
}

impl AccessAnswer {
    /// The rows with the sentence of each; `sources` reads the events at the positions the
    /// facts cite.
    pub fn build<E>(
        org: &permledger_domain::OrgId,
        user: &permledger_domain::UserId,
        at: Moment,
        rows: Vec<permledger_views::snapshot::AccessRow>,
        sources: impl FnOnce(
            &[permledger_domain::Seq],
        ) -> Result<Vec<permledger_views::provenance::Source>, E>,
    ) -> Result<AccessAnswer, E> {
        use permledger_views::provenance::{cited, sentence, Asked};
        let explain = |r: &permledger_views::snapshot::AccessRow| Explanation {
            allowed: true,
            facts: r.facts.clone(),
            denial: None,
        };
        let mut seqs: Vec<permledger_domain::Seq> =
            rows.iter().flat_map(|r| cited(&explain(r))).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let sources = sources(&seqs)?;
        let access = rows
            .into_iter()
            .map(|r| {
                let asked = Asked {
                    org,
                    user,
                    permission: &r.permission,
                    scope: &r.scope,
                };
                AccessItem {
                    because: sentence(&asked, &explain(&r), &sources),
                    scope: r.scope,
                    permission: r.permission,
                    facts: r.facts,
                }
            })
            .collect();
        Ok(AccessAnswer {
            user: user.clone(),
            at,
            access,
            sources,
        })
    }
}

/// A table of a snapshot, as a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotTable {
    Members,
    Grants,
    Teams,
    Inboxes,
    Roles,
    Masks,
    Invites,
    Links,
}

impl SnapshotTable {
    pub const ALL: [SnapshotTable; 8] = [
        SnapshotTable::Members,
        SnapshotTable::Grants,
        SnapshotTable::Teams,
        SnapshotTable::Inboxes,
        SnapshotTable::Roles,
        SnapshotTable::Masks,
        SnapshotTable::Invites,
        SnapshotTable::Links,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotTable::Members => "members",
            SnapshotTable::Grants => "grants",
            SnapshotTable::Teams => "teams",
            SnapshotTable::Inboxes => "inboxes",
            SnapshotTable::Roles => "roles",
            SnapshotTable::Masks => "masks",
            SnapshotTable::Invites => "invites",
            SnapshotTable::Links => "links",
        }
    }
}
