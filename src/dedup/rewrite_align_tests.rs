//! Tests of the sentence alignment and the features the rewrite model reads.

use super::*;

const A: &str = "Rebels seized the airport in the largest city on Monday morning.\n\
    Government troops withdrew towards the capital after heavy fighting overnight.\n\
    Officials said the president would address parliament about the crisis tomorrow.\n\
    Neighbouring countries promised humanitarian convoys carrying food and medicine.";

fn align(new: &str, old: &str) -> Alignment {
    Probe::new(Sketch::of(new)).align(&Sketch::of(old), 0.5, 0.0)
}

#[test]
fn sentences_cut_at_stops_and_lines() {
    let s: Vec<&str> = sentences("One two. Three 3.5 four!\nFive").collect();
    assert_eq!(s, ["One two.", " Three 3.5 four!", "\n", "Five"]);
}

#[test]
fn identical_text_is_fully_covered() {
    let a = align(A, A);
    assert_eq!((a.shared, a.covered_new, a.covered_old), (1.0, 1.0, 1.0));
    assert_eq!(a.aligned_words, Sketch::of(A).words().len());
}

#[test]
fn quoting_two_sentences_is_partial_reuse_not_coverage() {
    let quote = "Analysts expected markets across the region to fall sharply this week.\n\
        Rebels seized the airport in the largest city on Monday morning.\n\
        Investors moved money into gold and government bonds during trading.\n\
        Government troops withdrew towards the capital after heavy fighting overnight.\n\
        Currency traders reported thin volumes before the holiday weekend began.\n\
        Banks raised their forecasts for inflation over the coming quarters.";
    let a = align(quote, A);
    assert!((a.shared - a.covered_new).abs() < 1e-6, "{a:?}");
    assert!(a.shared > 0.2 && a.shared < 0.5, "{a:?}");
    assert!((a.covered_old - 0.5).abs() < 0.15, "{a:?}");
    assert!(a.coverage(0, 0.0) < 0.5);
}

#[test]
fn reordered_sentences_keep_their_coverage() {
    let mut lines: Vec<&str> = A.lines().collect();
    lines.reverse();
    let a = align(&lines.join("\n"), A);
    assert_eq!((a.shared, a.covered_new, a.covered_old), (1.0, 1.0, 1.0));
    // Verbatim sentences: an edited version, not a reworded copy.
    assert_eq!(a.reworded, 0.0);
    assert_eq!(a.coverage(0, 0.5), 0.0);
}

#[test]
fn merged_dropped_and_moved_reworded_sentences_are_covered() {
    let old = format!(
        "{A}\nThe harbour stayed closed to shipping while engineers inspected damaged cranes."
    );
    // Reworded, the first two merged, the third dropped, the last two swapped.
    let new = "Insurgents captured the airport in the biggest city on Monday morning, and \
        government soldiers retreated towards the capital after fierce fighting overnight.\n\
        The harbour remained closed to shipping while engineers examined broken cranes.\n\
        Bordering countries pledged humanitarian convoys bringing food and medicine.";
    let a = align(new, &old);
    assert_eq!(a.covered_new, 1.0, "{a:?}");
    assert!(a.covered_old > 0.6 && a.covered_old < 0.9, "{a:?}");
    assert_eq!(a.reworded, 1.0, "{a:?}");
    assert_eq!(a.coverage(0, 0.5), a.covered_old);
}

#[test]
fn substitutions_in_place_and_inserted_clauses_differ() {
    // Two content words of each sentence swapped in place.
    let spun = "Rebels grabbed the airport in the largest town on Monday morning.\n\
        Government soldiers withdrew towards the capital after fierce fighting overnight.\n\
        Officials said the leader would address parliament about the crisis tomorrow.\n\
        Bordering countries promised humanitarian convoys bringing food and medicine.";
    let a = align(spun, A);
    assert_eq!((a.covered_new, a.covered_old), (1.0, 1.0), "{a:?}");
    assert!(a.substituted > 0.1 && a.inserted_deleted == 0.0, "{a:?}");
    assert_eq!(a.clustered, 0.0, "{a:?}");
    // A clause added to each sentence.
    let edited = "Rebels seized the airport in the largest city on Monday morning, witnesses \
        living nearby told local radio.\n\
        Government troops withdrew towards the capital after heavy fighting overnight, \
        leaving checkpoints abandoned.\n\
        Officials said the president would address parliament about the crisis tomorrow.\n\
        Neighbouring countries promised humanitarian convoys carrying food and medicine.";
    let b = align(edited, A);
    assert!(b.inserted_deleted > 0.1 && b.substituted == 0.0, "{b:?}");
    assert!(b.clustered > 0.5, "{b:?}");
}

#[test]
fn sentences_between_matches_pair_up_by_place() {
    // The second sentence reworded past the overlap bar, still in its place.
    let new = "Rebels seized the airport in the largest city on Monday morning.\n\
        Army units retreated to the capital following intense battles overnight.\n\
        Officials said the president would address parliament about the crisis tomorrow.\n\
        Neighbouring countries promised humanitarian convoys carrying food and medicine.";
    let a = align(new, A);
    assert!(a.covered_new < 0.8, "{a:?}");
    assert_eq!((a.placed_new, a.placed_old), (1.0, 1.0), "{a:?}");
    // A sentence in its place that shares no word is not paired.
    let other = new.replace(
        "Army units retreated to the capital following intense battles overnight.",
        "Weather forecasters predicted snowfall across mountain passes.",
    );
    let b = align(&other, A);
    assert_eq!(b.placed_new, b.covered_new, "{b:?}");
}

#[test]
fn bytes_round_trip_and_reject_damage() {
    let s = Sketch::of(A);
    assert_eq!(s.sentence_count(), 4);
    let b = s.to_bytes();
    assert_eq!(Sketch::from_bytes(&b), Some(s));
    assert_eq!(Sketch::from_bytes(&b[..b.len() - 2]), None);
}

#[test]
fn one_endless_line_keeps_the_first_words_only() {
    // 200,000 distinct words with no sentence end: the sketch keeps MAX_WORDS of them, the
    // same as for the line's first part, without scanning the rest word by word.
    let line: String = (0..200_000).map(|i| format!("w{i:07}x ")).collect();
    let long = Sketch::of(&line);
    assert_eq!(long.words().len(), MAX_WORDS);
    let head: String = line.split(' ').take(4_000).collect::<Vec<_>>().join(" ");
    assert_eq!(long.words(), Sketch::of(&head).words());
}

#[test]
fn sketch_bytes_flag_the_word_order() {
    let s = Sketch::of(A);
    let b = s.to_bytes();
    assert_eq!(b[0], IN_ORDER | 4);
    assert!(!Sketch::from_bytes(&b).unwrap().is_sorted());
    // Without the flag (a sketch written before it): read back sorted, and written so again.
    let mut legacy = b.clone();
    legacy[0] = 4;
    let old = Sketch::from_bytes(&legacy).unwrap();
    assert!(old.is_sorted());
    assert_eq!(old.sentence_count(), 4);
    for i in 0..4 {
        let mut want = s.sentence(i).to_vec();
        want.sort_unstable();
        assert_eq!(old.sentence(i), want.as_slice());
    }
    assert_eq!(old.to_bytes()[0], 4);
    assert_eq!(Sketch::from_bytes(&old.to_bytes()), Some(old));
}

#[test]
fn sorted_and_ordered_sketches_are_compared_sorted() {
    // Words swapped in place and a clause added: the edit scripts depend on the word order.
    let new = "Rebels grabbed the airport in the largest town on Monday morning.\n\
        Government soldiers withdrew towards the capital after fierce fighting overnight, \
        leaving checkpoints abandoned.\n\
        Officials said the leader would address parliament about the crisis tomorrow.\n\
        Bordering countries promised humanitarian convoys bringing food and medicine.";
    let sorted = |text: &str| {
        let mut b = Sketch::of(text).to_bytes();
        b[0] &= !IN_ORDER;
        Sketch::from_bytes(&b).unwrap()
    };
    let both_sorted = Probe::new(sorted(new)).align(&sorted(A), 0.5, 0.0);
    let ordered = Probe::new(Sketch::of(new)).align(&Sketch::of(A), 0.5, 0.0);
    assert_ne!(both_sorted, ordered, "the order matters to this pair");
    // A sorted earlier sketch, a new one in order, and the reverse: as if both were sorted.
    let mixed = Probe::new(Sketch::of(new)).align(&sorted(A), 0.5, 0.0);
    assert_eq!(mixed, both_sorted);
    let mixed = Probe::new(sorted(new)).align(&Sketch::of(A), 0.5, 0.0);
    assert_eq!(mixed, both_sorted);
}

#[test]
fn a_refilled_word_table_aligns_as_a_new_one() {
    // Documents of very different sizes in turn, so the table is both reused and replaced.
    let long: String = (0..80)
        .map(|i| {
            format!(
                "Sentence {i} mentions harbour{i} cargo{} and ferry{}.\n",
                i % 7,
                i % 3
            )
        })
        .collect();
    let texts = [
        A,
        long.as_str(),
        "",
        A,
        "Officials said the president would address parliament about the crisis tomorrow.",
        long.as_str(),
        A,
    ];
    let mut masks = WordMasks::default();
    for new in texts {
        let fresh = Probe::new(Sketch::of(new));
        let refilled = Probe::with_masks(Sketch::of(new), masks);
        for old in texts {
            let old = Sketch::of(old);
            assert_eq!(fresh.align(&old, 0.5, 0.0), refilled.align(&old, 0.5, 0.0));
        }
        masks = refilled.into_parts().1;
    }
}
