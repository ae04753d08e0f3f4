//! The HTTP edge's one error type: a stable JSON body `{"code", "message"}` and a status. Internal
//! failures are logged and answered without their details.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use permledger_domain::{Code, Rejection};
use permledger_ledger::SubmitError;
use serde::Serialize;

use crate::Json;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }
    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
    }
    /// A read asked for `min_seq` and the views did not reach it within the wait.
    pub fn behind(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "behind", message)
    }
    /// A cluster node that is not the writer, with no writer to forward the command to.
    pub fn no_writer(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_writer", message)
    }
    /// The cluster's stream has no quorum: nothing can be acknowledged.
    pub fn no_quorum(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_quorum", message)
    }
    pub fn unavailable(internal: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %internal, "internal failure answered as 503");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the ledger cannot serve this request now",
        )
    }
}

/// The status each refusal code answers with.
pub fn status_of(code: Code) -> StatusCode {
    match code {
        Code::Invalid => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::Forbidden | Code::Escalation | Code::Suspended => StatusCode::FORBIDDEN,
        Code::AlreadyExists
        | Code::OwnerProtected
        | Code::RoleInUse
        | Code::InviteClosed
        | Code::Conflict => StatusCode::CONFLICT,
        Code::NotMember | Code::KindMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        Code::InviteExpired => StatusCode::GONE,
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> ApiError {
        ApiError {
            status: status_of(r.code),
            code: r.code.as_str().to_string(),
            message: r.message,
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> ApiError {
        match e {
            SubmitError::Rejected(r) => r.into(),
            SubmitError::ReadOnly(why) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "read_only",
                format!("this server takes no command: {why}"),
            ),
            SubmitError::Log(permledger_log::LogError::NotWriter(why)) => ApiError::no_writer(
                format!("this node is not the cluster's writer and knows none to send the command to: {why}; nothing was recorded"),
            ),
            SubmitError::Log(permledger_log::LogError::NoQuorum(why)) => ApiError::no_quorum(
                format!("the cluster's stream has no quorum ({why}); nothing was acknowledged: send the command again, with the same idempotency key"),
            ),
            other => ApiError::unavailable(other),
        }
    }
}

impl From<permledger_views::audit::AuditError> for ApiError {
    fn from(e: permledger_views::audit::AuditError) -> ApiError {
        match e {
            permledger_views::audit::AuditError::Rejected(r) => r.into(),
            other => ApiError::unavailable(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A cluster without a writer or a quorum for now: worth asking again in a second.
        let again = matches!(self.code.as_str(), "no_writer" | "no_quorum");
        let mut response = (self.status, Json(self)).into_response();
        if again {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
