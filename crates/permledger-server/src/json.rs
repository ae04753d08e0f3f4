//! A JSON answer. axum's own writes the value through an `io::Write` adapter over `BytesMut`,
//! a call per token of the output; a check's answer is small and every request has one, so the
//! value is written into a `Vec` and handed over as the body without a copy.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ApiError;

#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => ApiError::unavailable(format!("an answer could not be written: {e}"))
                .into_response(),
        }
    }
}
