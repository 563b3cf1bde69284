//! The JSON trace: one object per stage as it is reached, then the outcome
//! (`"name": "outcome"`, with the fields of `--json`), each tagged with the
//! connection's index.

use serde_json::{json, Value};

use crate::engine::handshake::StageEvent;
use crate::engine::outcome::Outcome;

pub(super) fn stage(event: &StageEvent, index: usize) -> String {
    line(serde_json::to_value(event).unwrap_or_default(), index)
}

pub(super) fn finish(outcome: &Outcome, index: usize) -> String {
    let mut last = outcome.to_json();
    if let Some(object) = last.as_object_mut() {
        object.insert("name".into(), json!("outcome"));
    }
    line(last, index)
}

fn line(mut value: Value, index: usize) -> String {
    if let Some(object) = value.as_object_mut() {
        object.insert("connection".into(), json!(index));
    }
    format!("{value}\n")
}
