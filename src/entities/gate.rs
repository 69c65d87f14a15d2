//! Owns the gate in front of the tagger: tokens that cannot be, or be inside, a name are fixed
//! to O before any feature is written for them.
//!
//! A token is *far* when neither it nor any token within `radius` positions of it in its
//! sentence could start or hold a name: every one of them is plain (only lower-case letters
//! and ASCII punctuation but `@` and `#`, which start user names and hashtags, see
//! [`TokInfo::plain`]) and none starts the sentence. A far token
//! gets no features and no emission scores; the Viterbi runs over the runs of tokens between
//! far ones, which for BILOU is exact (O ends every entity and may follow any closed tag), and
//! the tokens next to a far one still read its word forms as context, as before.
//!
//! The gate relies on capitals, so it runs only where the text shows them: in a sentence with
//! a capitalised token past its first ([`Scope::Sentence`]) or in a document with one
//! ([`Scope::Document`]). All-lower-case text ("obama visits paris") is never gated. Its two
//! settings were chosen by `dropline train entities --cv 4` on `eng.train` (see README
//! "Entities").

use super::features::{flag, TokInfo};
use std::ops::Range;

/// Where the casing condition is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Gate a sentence only if it has a capitalised token past its first.
    Sentence,
    /// Gate every sentence of a document that has such a token in some sentence.
    Document,
}

/// The gate's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// How many positions either side must be plain too; 0 turns the gate off.
    pub radius: u8,
    pub scope: Scope,
}

impl Gate {
    /// No token is fixed.
    pub const OFF: Self = Self {
        radius: 0,
        scope: Scope::Sentence,
    };
    /// The setting the tagger uses, chosen by cross-validation on `eng.train`.
    pub const SHIPPED: Self = Self {
        radius: 1,
        scope: Scope::Document,
    };
    /// The settings `--cv` scores beside no gate.
    pub const TRIED: [Self; 6] = [
        Self::new(1, Scope::Sentence),
        Self::new(2, Scope::Sentence),
        Self::new(3, Scope::Sentence),
        Self::new(1, Scope::Document),
        Self::new(2, Scope::Document),
        Self::new(3, Scope::Document),
    ];

    pub const fn new(radius: u8, scope: Scope) -> Self {
        Self { radius, scope }
    }

    /// Marks in `far` (one flag per token of the document, cleared first) the tokens this gate
    /// fixes to O.
    pub fn mark(&self, infos: &[TokInfo], sentences: &[Range<usize>], far: &mut Vec<bool>) {
        far.clear();
        far.resize(infos.len(), false);
        if self.radius == 0 {
            return;
        }
        let document = self.scope == Scope::Document
            && sentences.iter().any(|s| shows_capitals(&infos[s.clone()]));
        let r = usize::from(self.radius);
        for s in sentences {
            let sent = &infos[s.clone()];
            if !(document || shows_capitals(sent)) {
                continue;
            }
            let open = |t: &TokInfo| !t.plain || t.flags & flag::SENT_START != 0;
            // Distance to the nearest open token before each position, then after it.
            let mut since = usize::MAX;
            for (t, f) in sent.iter().zip(&mut far[s.clone()]) {
                since = if open(t) { 0 } else { since.saturating_add(1) };
                *f = since > r;
            }
            let mut until = usize::MAX;
            for (t, f) in sent.iter().zip(&mut far[s.clone()]).rev() {
                until = if open(t) { 0 } else { until.saturating_add(1) };
                *f &= until > r;
            }
        }
    }
}

/// Whether a sentence shows capitals: a capitalised (title-case or all-capitals) token past
/// its first.
fn shows_capitals(sent: &[TokInfo]) -> bool {
    sent.iter().skip(1).any(TokInfo::capitalised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::features::doc_infos;
    use crate::entities::resources::ResourceTables;

    fn far_of(gate: Gate, words: &[&str]) -> Vec<bool> {
        let tables = ResourceTables::empty();
        let sents = vec![Range {
            start: 0,
            end: words.len(),
        }];
        let infos = doc_infos(words, &sents, &tables.view());
        let mut far = Vec::new();
        gate.mark(&infos, &sents, &mut far);
        far
    }

    #[test]
    fn far_tokens_are_plain_and_away_from_capitals() {
        let words =
            "He said that the talks in the city of Paris had gone on for a week , they said ."
                .split(' ')
                .collect::<Vec<_>>();
        let far = far_of(Gate::new(2, Scope::Sentence), &words);
        let marked: Vec<&str> = words
            .iter()
            .zip(&far)
            .filter(|(_, &f)| f)
            .map(|(w, _)| *w)
            .collect();
        // "He" opens the sentence; "Paris" keeps "city of" and "had gone" within two.
        assert_eq!(
            marked,
            ["the", "talks", "in", "the", "on", "for", "a", "week", ",", "they", "said", "."]
        );
        let r1 = far_of(Gate::new(1, Scope::Sentence), &words);
        assert!(
            r1.iter().zip(&far).all(|(a, b)| *a || !*b),
            "radius 1 fixes more"
        );
        assert!(far_of(Gate::OFF, &words).iter().all(|&f| !f));
    }

    #[test]
    fn lower_case_text_is_not_gated() {
        let words = [
            "i", "think", "obama", "will", "visit", "the", "people", "of", "paris",
        ];
        for gate in Gate::TRIED {
            assert!(far_of(gate, &words).iter().all(|&f| !f), "{gate:?}");
        }
    }

    #[test]
    fn digits_capitals_and_caseless_words_are_never_plain() {
        let words = [
            "The", "a", "b", "c", "d", "3rd", "e", "f", "g", "h", "东京", "i", "j", "k", "l",
            "iPhone", "m", "n", "o", "Z",
        ];
        let far = far_of(Gate::new(1, Scope::Sentence), &words);
        for (i, w) in words.iter().enumerate() {
            if !w.chars().all(|c| c.is_ascii_lowercase()) {
                assert!(!far[i], "{w}");
            }
        }
        assert!(far[2] && far[8] && far[13] && !far[14], "{far:?}");
    }
}
