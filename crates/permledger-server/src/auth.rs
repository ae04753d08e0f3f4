//! Who is calling: the bearer token's record, and what it may touch.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use permledger_domain::{OrgId, UserId};

use crate::tokens::{TokenRecord, TokenRole};
use crate::{ApiError, AppState};

/// The caller, from its bearer token.
pub struct Caller(pub Arc<TokenRecord>);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>`"))?;
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header is not `Bearer <token>`")
            })?;
        state
            .tokens
            .verify(secret.trim())
            .map(Caller)
            .ok_or_else(|| ApiError::unauthorized("unknown token"))
    }
}

impl Caller {
    /// The principal recorded in the events of the commands this caller submits.
    pub fn principal(&self) -> permledger_domain::Principal {
        permledger_domain::Principal::Token {
            id: self.0.id.clone(),
            name: self.0.name.clone(),
        }
    }

    fn org(&self, org: &OrgId) -> Result<(), ApiError> {
        match &self.0.org {
            Some(bound) if bound != org => Err(ApiError::forbidden(format!(
                "this token is bound to org `{bound}`, not `{org}`"
            ))),
            _ => Ok(()),
        }
    }

    pub fn operator(&self) -> Result<(), ApiError> {
        if self.0.role != TokenRole::Operator {
            return Err(ApiError::forbidden("this needs an operator token"));
        }
        Ok(())
    }

    /// Verifying the whole log: operators, and auditors (whose work it is).
    pub fn verifier(&self) -> Result<(), ApiError> {
        if !matches!(self.0.role, TokenRole::Operator | TokenRole::Auditor) {
            return Err(ApiError::forbidden(
                "verifying the log needs an operator or auditor token",
            ));
        }
        Ok(())
    }

    /// What only the whole ledger's tokens may read (`what` names it).
    pub fn whole_ledger(&self, what: &str) -> Result<(), ApiError> {
        match &self.0.org {
            Some(bound) => Err(ApiError::forbidden(format!(
                "{what} are the whole ledger's; this token is bound to org `{bound}`"
            ))),
            None => Ok(()),
        }
    }

    pub fn read(&self, org: &OrgId) -> Result<(), ApiError> {
        self.org(org)
    }

    /// A token bound to a person acts as that person only.
    pub fn acts_as(&self, actor: &UserId) -> Result<(), ApiError> {
        match &self.0.user {
            Some(bound) if bound != actor => Err(ApiError::forbidden(format!(
                "this token is bound to `{bound}` and acts as no one else, not as `{actor}`"
            ))),
            _ => Ok(()),
        }
    }

    /// A token bound to a person reads the audit as that person only.
    pub fn reads_as(&self, reader: &UserId) -> Result<(), ApiError> {
        match &self.0.user {
            Some(bound) if bound != reader => Err(ApiError::forbidden(format!(
                "this token is bound to `{bound}` and reads as no one else, not as `{reader}`"
            ))),
            _ => Ok(()),
        }
    }

    pub fn write(&self, org: &OrgId) -> Result<(), ApiError> {
        self.org(org)?;
        if self.0.role == TokenRole::Auditor {
            return Err(ApiError::forbidden("an auditor token reads only"));
        }
        Ok(())
    }
}
