//! Owns the strip stage's pipeline adapters: from a read envelope to a document or an error
//! record on parallel workers ([`strip_step`]), then the per-source memory in arrival order
//! ([`memory_step`]), so the output never depends on which worker saw which page first.

use crate::dedup::KnownRaw;
use crate::model::{Document, Envelope, ErrorRecord, Format, Work};
use crate::strip::{html_visible_text, plain_text, Stripper};

/// Strips one envelope's raw document in place; envelopes that are not `Work::Raw` pass through.
/// `known` lets exact re-drops of already-decided bytes skip stripping (the dedup stage clears
/// their text anyway); `keep` puts the removed lines into the record.
pub fn strip_step(
    stripper: Option<&Stripper>,
    keep: bool,
    known: Option<&KnownRaw>,
    mut env: Envelope,
) -> Envelope {
    let Work::Raw(raw) = &env.work else {
        return env;
    };
    // An exact re-drop of bytes already decided: the dedup stage will call it a duplicate and
    // clear its text, so spend nothing on it.
    let known_copy = known.is_some_and(|k| k.contains_id(&raw.id));
    let (title, text, removed, memory) = if known_copy {
        (String::new(), String::new(), None, None)
    } else if let Some(s) = stripper {
        let (out, memory) = s.strip_deferred(raw);
        (out.title, out.text, keep.then_some(out.removed), memory)
    } else {
        let (t, x) = match raw.format {
            Format::Text => plain_text(&raw.body),
            Format::Html => html_visible_text(&raw.body),
        };
        (t, x, None, None)
    };
    if !known_copy && text.trim().is_empty() {
        return nothing_left(env);
    }
    let doc = Document {
        kind: "document".into(),
        id: raw.id.clone(),
        source: env.source.clone(),
        title,
        text,
        boilerplate: removed,
        dedup: None,
        entities: None,
        strip_memory: memory.map(Box::new),
    };
    env.work = Work::Doc(Box::new(doc));
    env
}

/// Applies the per-source memory to one envelope's document and records its lines: run it in
/// sequence order, before the dedup preparation (which reads the final text).
pub fn memory_step(stripper: &Stripper, mut env: Envelope) -> Envelope {
    let Work::Doc(doc) = &mut env.work else {
        return env;
    };
    let Some(work) = doc.strip_memory.take() else {
        return env;
    };
    let changed = stripper.apply_memory(&work, &mut doc.text, doc.boilerplate.as_mut());
    if changed && doc.text.trim().is_empty() {
        return nothing_left(env);
    }
    env
}

fn nothing_left(mut env: Envelope) -> Envelope {
    env.work = Work::Failed(ErrorRecord {
        kind: "error".into(),
        source: env.source.clone(),
        stage: "strip".into(),
        error: "no article text left after stripping".into(),
    });
    env
}
