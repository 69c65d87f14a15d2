//! Owns the entities stage's pipeline adapter: tags a document envelope with the shared tagger.

use super::EntityTagger;
use crate::model::{DedupStatus, Envelope, Work};

/// Tags the document in `env`; exact duplicates get no entities (their body is elsewhere) and
/// error envelopes pass through untouched.
pub fn entities_step(t: &EntityTagger, mut env: Envelope) -> Envelope {
    let Work::Doc(doc) = &mut env.work else {
        return env;
    };
    let copy = doc
        .dedup
        .as_ref()
        .is_some_and(|d| d.status == DedupStatus::ExactDuplicate);
    doc.entities = Some(if copy { Vec::new() } else { t.tag(&doc.text) });
    env
}
