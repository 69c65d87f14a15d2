use super::*;
use crate::entities::resources::ResourceTables;

#[test]
fn lower_hash_ignores_case_and_forms_differ() {
    let a = token_form("Almaty", false);
    let b = token_form("ALMATY", false);
    assert_eq!(a.lower, b.lower);
    assert_eq!(a.lower, lower_hash("almaty"));
    assert_ne!(a.word, b.word);
    assert_ne!(a.short, b.short);
    assert!(a.flags & flag::TITLE != 0 && b.flags & flag::ALL_CAPS != 0);
}

#[test]
fn ascii_fast_paths_hash_as_full_case_mapping_does() {
    fn reference(word: &str) -> u64 {
        let mut h = FNV_OFFSET;
        for c in word.chars() {
            for l in c.to_lowercase() {
                h = feed(h, l as u32);
            }
        }
        mix(h)
    }
    for w in [
        "McDonald's",
        "NATO",
        "3-D",
        "U.S.",
        "ÉCOLE",
        "Straße",
        "İstanbul",
        "Zoë",
        "",
    ] {
        assert_eq!(lower_hash(w), reference(w), "{w}");
    }
    let t = token_form("Ab1-é", false);
    assert_eq!(
        t.flags & (flag::TITLE | flag::DIGIT),
        flag::TITLE | flag::DIGIT
    );
    for c in (0u8..128).map(char::from) {
        let slow = if c.is_uppercase() {
            'X' as u32
        } else if c.is_lowercase() {
            'x' as u32
        } else if c.is_numeric() {
            'd' as u32
        } else {
            c as u32
        };
        assert_eq!(shape_code(c), slow, "{c:?}");
    }
}

#[test]
fn hash_filter_never_misses_what_it_holds() {
    let mut f = HashFilter::default();
    let held: Vec<u64> = (0..300u64).map(|i| mix(i * 7 + 1)).collect();
    for &h in &held {
        f.insert(h);
    }
    assert!(held.iter().all(|&h| f.may_hold(h)));
    let others = (1000..3000u64).map(mix).filter(|&h| !f.may_hold(h)).count();
    assert!(others > 0, "a filter that holds everything spares nothing");
}

#[test]
fn priors_see_other_occurrences_and_pairs() {
    let tables = ResourceTables::empty();
    let words = ["New", "York", "is", "big", ".", "New", "York", "again", "."];
    let sents = [0..5, 5..9];
    let mut infos = doc_infos(&words, &sents, &tables.view());
    // "New York" tagged LOC (type 2: B 9, L 11) once, left untagged the second time.
    set_priors(&mut infos, &[9, 11, 0, 0, 0, 0, 0, 0, 0]);
    let masks: Vec<(u8, u8, u8)> = infos
        .iter()
        .map(|t| (t.prior_mask, t.pair_next, t.pair_prev))
        .collect();
    let loc = 1 << 2;
    assert_eq!(masks[0], (0, 0, 0), "its own tags are not evidence");
    assert_eq!(masks[5], (loc, loc, 0));
    assert_eq!(masks[6], (loc, 0, loc));
    assert!(masks[2..5]
        .iter()
        .chain(&masks[7..])
        .all(|&m| m == (0, 0, 0)));
    assert_eq!((infos[5].prior, infos[0].first), (3, 9));
}

#[test]
fn doc_evidence_sees_other_mentions() {
    let tables = ResourceTables::empty();
    let res = tables.view();
    let words = ["Rose", "won", ".", "A", "rose", "grew", "near", "Rose", "."];
    let sents = [0..3, 3..9];
    let infos = doc_infos(&words, &sents, &res);
    // "Rose" at the start sees the lower-case "rose" and the mid-sentence "Rose".
    assert_eq!(infos[0].doc, 3);
    let mut out = Vec::new();
    sentence_features(&infos[0..3], 20, &mut out);
    assert_eq!(out.len(), 3 * N_FEATURES);
    assert!(out.iter().all(|&b| b < (1 << 20)));
    // Refreshing the second-pass templates gives what a full recomputation gives.
    let mut infos = infos;
    set_priors(&mut infos, &[4, 0, 0, 0, 0, 0, 0, 4, 0]);
    let mut full = Vec::new();
    sentence_features(&infos[0..3], 20, &mut full);
    assert_ne!(full, out);
    refresh_second_pass(&infos[0..3], 20, &mut out);
    assert_eq!(full, out);
}
