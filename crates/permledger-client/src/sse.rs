//! Server-Sent Events read from a response body, as the WHATWG specification frames them:
//! `field: value` lines, a blank line ending a message, `:` lines (keep-alive comments) skipped,
//! several `data` lines joined with newlines.

use std::io::{BufRead, BufReader, Read};

use crate::ClientError;

/// One message of an event stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// The messages of an open event stream, as they arrive; ends when the server ends it.
pub struct Events {
    lines: Box<dyn BufRead + Send>,
    base: String,
}

impl Events {
    pub(crate) fn new(body: impl Read + Send + 'static, base: String) -> Events {
        Events {
            lines: Box::new(BufReader::with_capacity(64 * 1024, body)),
            base,
        }
    }

    /// Messages read from any bytes (tests, recorded streams).
    pub fn from_reader(body: impl Read + Send + 'static) -> Events {
        Events::new(body, String::new())
    }
}

impl Iterator for Events {
    type Item = Result<Message, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut message = Message::default();
        let mut data_lines = 0;
        let mut started = false;
        let mut line = String::new();
        loop {
            line.clear();
            match self.lines.read_line(&mut line) {
                // A message the stream's end cut short is not dispatched.
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(ClientError::Stream {
                        base: self.base.clone(),
                        reason: e.to_string(),
                    }))
                }
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                if started {
                    return Some(Ok(message));
                }
                continue;
            }
            if l.starts_with(':') {
                continue;
            }
            let (field, value) = match l.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (l, ""),
            };
            match field {
                "data" => {
                    if data_lines > 0 {
                        message.data.push('\n');
                    }
                    message.data.push_str(value);
                    data_lines += 1;
                }
                "id" => message.id = Some(value.to_string()),
                "event" => message.event = Some(value.to_string()),
                _ => continue,
            }
            started = true;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read(text: &'static str) -> Vec<Message> {
        Events::from_reader(text.as_bytes())
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn messages_are_framed_by_blank_lines_and_comments_are_skipped() {
        let got = read(
            ": keep-alive\n\nid: 7\nevent: records\ndata: [1,\ndata: 2]\n\r\n:\n\nid:8\ndata:x\n\n",
        );
        assert_eq!(
            got,
            vec![
                Message {
                    id: Some("7".into()),
                    event: Some("records".into()),
                    data: "[1,\n2]".into()
                },
                Message {
                    id: Some("8".into()),
                    event: None,
                    data: "x".into()
                },
            ]
        );
    }

    #[test]
    fn a_message_cut_short_by_the_end_is_not_given() {
        assert_eq!(
            read("id: 1\ndata: whole\n\nid: 2\ndata: cut"),
            vec![Message {
                id: Some("1".into()),
                event: None,
                data: "whole".into()
            }]
        );
    }
}
