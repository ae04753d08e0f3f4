//! The handlers, one module per resource. Each handler's signature names its endpoint's types
//! from `permledger_api`, so a handler that answered another shape would not compile.

pub mod audit;
pub mod commands;
pub mod compliance;
pub mod feed;
pub mod ops;
pub mod reads;
pub mod verify;

use permledger_api::Endpoint;

use crate::{ApiError, Json};

/// A JSON answer of endpoint `E`, or an error.
pub type Answer<E> = Result<Json<<E as Endpoint>::Answer>, ApiError>;
