//! Who is calling: the bearer token's record, and what it may touch.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use permledger_domain::OrgId;

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

    pub fn read(&self, org: &OrgId) -> Result<(), ApiError> {
        self.org(org)
    }

    pub fn write(&self, org: &OrgId) -> Result<(), ApiError> {
        self.org(org)?;
        if self.0.role == TokenRole::Auditor {
            return Err(ApiError::forbidden("an auditor token reads only"));
        }
        Ok(())
    }
}
