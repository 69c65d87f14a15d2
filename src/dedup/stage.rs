//! Owns the dedup stage's pipeline adapters: the index-free work run on the strip workers and
//! the ordered step that decides each document.

use super::{prepare, Deduper, KnownRaw};
use crate::model::{DedupStatus, Envelope, Work};

/// Does the dedup work that needs no index on a parallel (strip) worker, so the single ordered
/// dedup worker only queries and updates the index. `dedup_on` says whether the stage runs.
pub fn prepare_step(dedup_on: Option<&KnownRaw>, env: &mut Envelope) {
    if let (Some(_), Work::Doc(doc)) = (dedup_on, &env.work) {
        if !doc.text.is_empty() {
            env.prepared = Some(Box::new(prepare(&doc.id, &doc.text)));
        }
    }
}

/// Decides one document in arrival order and attaches the verdict and the ledger entry.
pub fn dedup_step(d: &mut Deduper, mut env: Envelope) -> Envelope {
    let Work::Doc(doc) = &mut env.work else {
        return env;
    };
    let (info, entry) = match env.prepared.take() {
        Some(p) => d.observe_prepared(*p),
        None => d.observe(&doc.id, &doc.text),
    };
    if info.status == DedupStatus::ExactDuplicate {
        // The body is in the line of `duplicate_of`; clearing it keeps output independent of
        // whether the strip stage's fast path saw the copy.
        doc.title.clear();
        doc.text.clear();
        doc.boilerplate = None;
    }
    doc.dedup = Some(info);
    env.index_entry = Some(entry);
    env
}
