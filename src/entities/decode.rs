//! Owns decoding a document: every pass over its sentences, with features kept between passes
//! or written one sentence at a time, and the gate's far tokens fixed to O.

use super::features;
use super::gate::Gate;
use super::perceptron::{self, StageView};
use std::ops::Range;

/// Documents of more tokens than this (~5 MB of text) decode with one sentence's features at
/// a time, written whole again on later passes, instead of keeping the whole document's
/// features between passes: 220 bytes a token less (a 60 MB text peaked at 4,080 MB with
/// them), for more time on those documents only. Tags are the same either way.
const KEEP_FEATURES_UP_TO: usize = 1 << 20;

/// Returns the BILOU tags of a document after all passes; each pass after the first reads the
/// previous pass's tags through [`features::set_priors`].
///
/// `gate` fixes the tokens it marks far to O (see [`super::gate`]); [`Gate::OFF`] fixes none.
pub fn decode_doc<'a>(
    stages: impl IntoIterator<Item = StageView<'a>>,
    infos: &mut [features::TokInfo],
    sentences: &[Range<usize>],
    gate: Gate,
) -> Vec<u8> {
    let keep = infos.len() <= KEEP_FEATURES_UP_TO;
    decode_doc_keeping(stages, infos, sentences, gate, keep)
}

/// [`decode_doc`], keeping the document's features between passes when `keep`.
pub(super) fn decode_doc_keeping<'a>(
    stages: impl IntoIterator<Item = StageView<'a>>,
    infos: &mut [features::TokInfo],
    sentences: &[Range<usize>],
    gate: Gate,
    keep: bool,
) -> Vec<u8> {
    DECODE_BUFFERS.with_borrow_mut(|b| {
        let mut all = vec![0u8; infos.len()];
        gate.mark(infos, sentences, &mut b.far);
        decode_doc_into(stages, infos, sentences, keep, b, &mut all);
        b.shrink();
        all
    })
}

/// Buffers reused from one document to the next by each tagging thread, so a document costs
/// no allocation of its features or decoding state once the thread has seen a document as big.
#[derive(Default)]
struct DecodeBuffers {
    feats: Vec<u32>,
    one_sentence: Vec<u32>,
    scratch: perceptron::Scratch,
    tags: Vec<u8>,
    /// The document's far tokens (see [`super::gate`]).
    far: Vec<bool>,
}

impl DecodeBuffers {
    /// Bytes of features a thread keeps between documents (about 24,000 tokens' worth); a
    /// bigger document's buffer is released after it, so one huge file does not pin memory.
    const KEEP_BYTES: usize = 1 << 22;

    fn shrink(&mut self) {
        if self.feats.capacity() * 4 > Self::KEEP_BYTES {
            self.feats = Vec::new();
        }
        // As many tokens' flags as the features kept (a huge document, decoded a sentence at
        // a time, never grows the features).
        if self.far.capacity() * 4 * features::N_FEATURES > Self::KEEP_BYTES {
            self.far = Vec::new();
        }
    }
}

thread_local! {
    static DECODE_BUFFERS: std::cell::RefCell<DecodeBuffers> =
        std::cell::RefCell::new(DecodeBuffers::default());
}

/// [`decode_doc_keeping`]'s body over reusable buffers, writing the tags into `all`.
fn decode_doc_into<'a>(
    stages: impl IntoIterator<Item = StageView<'a>>,
    infos: &mut [features::TokInfo],
    sentences: &[Range<usize>],
    keep: bool,
    buffers: &mut DecodeBuffers,
    all: &mut [u8],
) {
    let n = features::N_FEATURES;
    let DecodeBuffers {
        feats,
        one_sentence,
        scratch,
        tags,
        far,
    } = buffers;
    // The first pass writes every sentence's features before any is read, so the buffer is
    // only grown, never cleared.
    if keep && feats.len() < infos.len() * n {
        feats.resize(infos.len() * n, 0);
    }
    let mut feats_bits = None;
    for (k, stage) in stages.into_iter().enumerate() {
        if k > 0 {
            features::set_priors(infos, all);
        }
        let prepared = stage.prepare(scratch);
        for s in sentences {
            // A later pass runs only where the first left something to decide (see
            // [`unsure`]); elsewhere the first pass's tags stand. Chosen by `--cv` on
            // eng.train: held-out F1 higher than with every sentence re-tagged.
            if k > 0 && !unsure(&infos[s.clone()]) {
                continue;
            }
            let sent = &infos[s.clone()];
            let far = &far[s.clone()];
            let f: &mut [u32] = if keep {
                &mut feats[s.start * n..s.end * n]
            } else {
                one_sentence.clear();
                one_sentence.resize(sent.len() * n, 0);
                one_sentence
            };
            // Later passes differ from the first only in the templates that read its tags.
            // Far tokens get no row: the sentence's rows are its other tokens', in order.
            let rows = far.iter().filter(|&&x| !x).count();
            let f = &mut f[..rows * n];
            if keep && feats_bits == Some(stage.bits) {
                features::refresh_kept(sent, far, stage.bits, f);
            } else {
                features::write_kept(sent, far, stage.bits, stage.templates as usize, f);
            }
            stage.decode_kept(f, far, scratch, prepared, tags);
            all[s.clone()].copy_from_slice(tags);
        }
        feats_bits = Some(stage.bits);
    }
}

/// Returns whether the first pass left something in `sent` for the second to decide: a token
/// whose document evidence (types other occurrences of its word or word pair were given) names
/// a type the first pass did not give the token itself.
pub fn unsure(sent: &[features::TokInfo]) -> bool {
    sent.iter().any(|t| {
        let own = if t.first == 0 {
            0
        } else {
            1u8 << ((t.first - 1) / 4)
        };
        (t.prior_mask | t.pair_next | t.pair_prev) & !own != 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::{EntitiesConfig, EntityTagger};

    #[test]
    fn a_big_documents_far_flags_are_not_kept() {
        let tagger = EntityTagger::load(&EntitiesConfig::default()).expect("shipped model loads");
        let view = tagger.model.view();
        let words: Vec<&str> = ["The", "talks", "went", "on", "for", "a", "week", "."]
            .into_iter()
            .cycle()
            .take(40_000)
            .collect();
        let sents: Vec<Range<usize>> = (0..words.len()).step_by(8).map(|s| s..s + 8).collect();
        let mut infos = features::doc_infos(&words, &sents, &view.resources);
        // One sentence at a time (as for a huge document): the features never grow.
        let tags = decode_doc_keeping(view.stages(), &mut infos, &sents, Gate::SHIPPED, false);
        assert_eq!(tags.len(), words.len());
        DECODE_BUFFERS.with_borrow(|b| {
            assert!(b.far.capacity() * 4 * features::N_FEATURES <= DecodeBuffers::KEEP_BYTES);
        });
    }
}
