//! Unit tests of the rewrite tier's short band (`rewrite_short_words`,
//! `rewrite_short_threshold`): short spun copies are judged, not skipped, and a one-sentence
//! rewording is never a rewrite.

use super::*;

fn id(s: &str) -> String {
    format!("{:032x}", hash128(s.as_bytes()))
}

/// Returns the verdict on `new` after `old` was indexed.
fn verdict(c: &DedupConfig, old: &str, new: &str) -> (DedupInfo, Tier) {
    let mut d = Deduper::new(c);
    d.observe(&id(old), old);
    d.check(&id(new), new)
}

const ORIGINAL: &str =
    "Police arrested a local teacher on Tuesday after a fire destroyed the old library downtown.\n\
    Investigators believe the blaze started near the historic reading room before midnight.";
const SPUN: &str =
    "Police detained a local teacher on Tuesday after a fire wrecked the old library downtown.\n\
    Investigators believe the blaze began near the historic reading room before midnight.";

#[test]
fn a_short_spun_article_is_a_rewrite() {
    let c = DedupConfig::default();
    let (info, tier) = verdict(&c, ORIGINAL, SPUN);
    assert_eq!(tier, Tier::Rewrite, "{info:?}");
    assert_eq!(info.status, DedupStatus::Rewrite);
    assert_eq!(info.duplicate_of, Some(id(ORIGINAL)));
    // Below the words gate: without the short band it was not judged at all.
    let closed = DedupConfig {
        rewrite_short_threshold: 1.01,
        ..c
    };
    let (info, _) = verdict(&closed, ORIGINAL, SPUN);
    assert_eq!(info.status, DedupStatus::Unique, "{info:?}");
}

#[test]
fn a_short_real_pair_of_other_articles_is_not_a_rewrite() {
    let c = DedupConfig::default();
    // Another outlet's short report of the same arrest: other sentences, shared names.
    let other =
        "A local teacher was arrested by police on Tuesday over the downtown library fire.\n\
        The mayor promised to rebuild the old library and thanked firefighters for their work.";
    let (info, tier) = verdict(&c, ORIGINAL, other);
    assert_eq!(info.status, DedupStatus::Unique, "{info:?} {tier:?}");
    // A one-sentence report reworded by an editor (a word added, one changed) looks like a
    // spun copy of it to every feature: the band never takes a single matched sentence.
    let old = "A former colleague has been charged in the 1967 killings of two clerks at a candy shop in Millbrook, but prosecutors say the suspect is gravely ill.";
    let new = "A longtime former colleague has been charged in the 1967 killings of two clerks at a candy shop in Millbrook, but prosecutors said the suspect is gravely ill.";
    let (info, tier) = verdict(&c, old, new);
    assert_eq!(info.status, DedupStatus::Unique, "{info:?} {tier:?}");
    // Scored as a short matching of two sentences, it would be taken.
    let mut d = Deduper::new(&c);
    d.observe(&id(old), old);
    let probe = align::Probe::new(align::Sketch::of(new));
    let old_sketch = align::Sketch::of(old);
    let a = probe.align(&old_sketch, c.align_overlap, 0.0);
    assert_eq!(a.matches, 1, "{a:?}");
    assert!(a.aligned_words < c.rewrite_min_words, "{a:?}");
    let two = align::Alignment { matches: 2, ..a };
    assert!(
        c.rewrite_model
            .score(&two, c.rewrite_floor(), c.rewrite_min_reworded)
            >= c.rewrite_bar(&two),
        "{a:?}"
    );
    assert!(c.rewrite_bar(&a) > 1.0);
}
