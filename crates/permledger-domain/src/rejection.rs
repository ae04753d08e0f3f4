//! Refusals: a refused command is data (a code from domain.md and a message naming the input),
//! not a failure of the system.

use std::fmt;

use serde::{Deserialize, Serialize};

/// domain.md's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    Invalid,
    NotFound,
    AlreadyExists,
    Forbidden,
    Escalation,
    OwnerProtected,
    NotMember,
    Suspended,
    RoleInUse,
    KindMismatch,
    InviteExpired,
    InviteClosed,
    Conflict,
}

impl Code {
    pub const ALL: [Code; 13] = [
        Code::Invalid,
        Code::NotFound,
        Code::AlreadyExists,
        Code::Forbidden,
        Code::Escalation,
        Code::OwnerProtected,
        Code::NotMember,
        Code::Suspended,
        Code::RoleInUse,
        Code::KindMismatch,
        Code::InviteExpired,
        Code::InviteClosed,
        Code::Conflict,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Invalid => "invalid",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::Forbidden => "forbidden",
            Code::Escalation => "escalation",
            Code::OwnerProtected => "owner_protected",
            Code::NotMember => "not_member",
            Code::Suspended => "suspended",
            Code::RoleInUse => "role_in_use",
            Code::KindMismatch => "kind_mismatch",
            Code::InviteExpired => "invite_expired",
            Code::InviteClosed => "invite_closed",
            Code::Conflict => "conflict",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command: nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    pub code: Code,
    pub message: String,
}

impl Rejection {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

macro_rules! ctor {
    ($($fn:ident => $code:ident),* $(,)?) => {
        impl Rejection {
            $(pub fn $fn(message: impl Into<String>) -> Self { Rejection::new(Code::$code, message) })*
        }
    };
}
ctor! {
    invalid => Invalid,
    not_found => NotFound,
    already_exists => AlreadyExists,
    forbidden => Forbidden,
    escalation => Escalation,
    owner_protected => OwnerProtected,
    not_member => NotMember,
    suspended => Suspended,
    role_in_use => RoleInUse,
    kind_mismatch => KindMismatch,
    invite_expired => InviteExpired,
    invite_closed => InviteClosed,
    conflict => Conflict,
}
