//! Unit tests of the dedup tiers working together: decisions, replay and eviction.

use super::*;

fn id(s: &str) -> String {
    format!("{:032x}", hash128(s.as_bytes()))
}

fn seed(n: usize) -> String {
    super::eval::seed_texts().swap_remove(n)
}

/// Replaces every `step`-th word with a word that occurs nowhere in the seeds.
fn swap_words(text: &str, step: usize) -> String {
    text.split(' ')
        .enumerate()
        .map(|(i, w)| {
            if i % step == step - 1 {
                format!("zq{i}x")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn same_text_other_wrapper_is_exact_duplicate() {
    let mut d = Deduper::new(&DedupConfig::default());
    let (a, _) = d.observe(&id("a"), "Hello, World!\nSecond line.");
    let (b, _) = d.observe(&id("b"), "hello world  second LINE");
    assert_eq!(a.status, DedupStatus::Unique);
    assert_eq!(b.status, DedupStatus::ExactDuplicate);
    assert_eq!(b.duplicate_of, Some(id("a")));
    assert_eq!(b.story, a.story);
}

#[test]
fn restore_rebuilds_decisions() {
    let mut d = Deduper::new(&DedupConfig::default());
    let (_, e) = d.observe(&id("a"), "some article text");
    let mut fresh = Deduper::new(&DedupConfig::default());
    fresh.restore(&e);
    let (b, _) = fresh.observe(&id("b"), "Some article text.");
    assert_eq!(b.status, DedupStatus::ExactDuplicate);
}

#[test]
fn capacity_evicts_oldest() {
    let cfg = DedupConfig {
        capacity: 1,
        ..DedupConfig::default()
    };
    let mut d = Deduper::new(&cfg);
    d.observe(&id("a"), "first text");
    d.observe(&id("b"), "second text");
    let (c, _) = d.observe(&id("c"), "first text");
    assert_eq!(c.status, DedupStatus::Unique);
    assert_eq!(d.len(), 1);
}

#[test]
fn copies_of_copies_resolve_to_the_first_even_after_it_is_evicted() {
    let cfg = DedupConfig {
        capacity: 3,
        ..DedupConfig::default()
    };
    let mut d = Deduper::new(&cfg);
    let (a, _) = d.observe(&id("a"), "The first text of all.");
    // Same normal form, other bytes: an exact duplicate by text, indexed under its own bytes.
    let (b, _) = d.observe(&id("b"), "the FIRST text of all");
    assert_eq!(b.duplicate_of, Some(id("a")));
    assert_eq!(d.is_known_raw(&id("b")), Some(id("a")));
    d.observe(&id("c"), "another text entirely");
    d.observe(&id("d"), "and a fourth one here");
    // `a` is evicted with its entries (the text entry was its); `b`'s raw entry still resolves
    // to it, with its story.
    assert_eq!(d.is_known_raw(&id("a")), None);
    assert_eq!(d.is_known_raw(&id("b")), Some(id("a")));
    let (e, _) = d.observe(&id("b"), "the FIRST text of all");
    assert_eq!(e.status, DedupStatus::ExactDuplicate);
    assert_eq!(e.duplicate_of, Some(id("a")));
    assert_eq!(e.story, a.story);
}

#[test]
fn edited_copy_is_near_duplicate_with_similarity() {
    let mut d = Deduper::new(&DedupConfig::default());
    let original = seed(0);
    let edited = original.replacen("Thursday", "Friday", 1) + "\nAdditional reporting by staff.";
    let (a, _) = d.observe(&id("a"), &original);
    let (b, _) = d.observe(&id("b"), &edited);
    assert_eq!(a.status, DedupStatus::Unique);
    assert_eq!(b.status, DedupStatus::NearDuplicate);
    assert_eq!(b.duplicate_of, Some(id("a")));
    assert!(b.similarity.is_some_and(|s| (0.7..1.0).contains(&s)));
    assert_eq!(b.story, a.story);
}

#[test]
fn synonym_swap_is_caught_by_rewrite_tier() {
    let mut d = Deduper::new(&DedupConfig::default());
    let original = seed(0);
    d.observe(&id("a"), &original);
    // One word in six replaced (about 17 %): 5-gram Jaccard falls far below the near threshold.
    let (info, tier) = d.check(&id("b"), &swap_words(&original, 6));
    assert_eq!(tier, Tier::Rewrite, "{info:?}");
    assert_eq!(info.status, DedupStatus::Rewrite);
    assert_eq!(info.duplicate_of, Some(id("a")));
}

#[test]
fn spun_copy_with_sentences_moved_and_merged_is_a_rewrite() {
    let mut d = Deduper::new(&DedupConfig::default());
    let original = seed(0);
    d.observe(&id("a"), &original);
    let mut lines: Vec<String> = original.lines().map(|l| swap_words(l, 6)).collect();
    // Two long paragraphs change places (an ordered alignment loses one of them) and two
    // others become one sentence.
    lines.swap(4, 5);
    let merged = format!(
        "{}, and {}",
        lines[12].trim_end().trim_end_matches('.'),
        lines[13]
    );
    lines[12] = merged;
    lines.remove(13);
    let (info, tier) = d.check(&id("b"), &lines.join("\n"));
    assert_eq!(tier, Tier::Rewrite, "{info:?}");
    assert_eq!(info.duplicate_of, Some(id("a")));
}

#[test]
fn other_outlets_on_the_same_story_are_unique_but_share_the_story() {
    // Judged on the raw seed text, boilerplate lines included.
    let mut d = Deduper::new(&DedupConfig::default());
    let infos: Vec<DedupInfo> = (0..5)
        .map(|n| d.observe(&id(&n.to_string()), &seed(n)).0)
        .collect();
    for info in &infos {
        assert_eq!(info.status, DedupStatus::Unique, "{info:?}");
        assert_eq!(info.story, infos[0].story);
    }
}

#[test]
fn unrelated_article_starts_its_own_story() {
    let mut d = Deduper::new(&DedupConfig::default());
    let (a, _) = d.observe(&id("a"), &seed(0));
    let (b, _) = d.observe(
        &id("b"),
        "The city council of Springfield approved a budget for new bicycle lanes and \
         repaired bridges on Tuesday, after months of debate about parking fees downtown.",
    );
    assert_eq!(b.status, DedupStatus::Unique);
    assert_ne!(b.story, a.story);
    assert_eq!(b.story, Some(id("b")));
}

#[test]
fn replayed_entries_make_the_same_decisions() {
    let cfg = DedupConfig {
        capacity: 5,
        ..DedupConfig::default()
    };
    let mut live = Deduper::new(&cfg);
    let mut ledger = Vec::new();
    let mut docs: Vec<String> = (0..5).map(seed).collect();
    docs.push(swap_words(&seed(1), 7));
    docs.push(seed(2).replacen("Kazakhstan", "Kazakstan", 2));
    docs.push(seed(3));
    for (n, text) in docs.iter().enumerate() {
        let (_, entry) = live.observe(&id(&format!("d{n}")), text);
        let json = serde_json::to_string(&entry).expect("entry serialises");
        ledger.push(json);
    }
    let mut replayed = Deduper::new(&cfg);
    for line in &ledger {
        let entry: IndexEntry = serde_json::from_str(line).expect("entry parses");
        replayed.restore(&entry);
    }
    for (n, text) in docs
        .iter()
        .enumerate()
        .chain([(99, &swap_words(&seed(4), 8))])
    {
        let probe = id(&format!("probe{n}"));
        assert_eq!(live.check(&probe, text), replayed.check(&probe, text));
    }
    let probe = id("new");
    let text = swap_words(&seed(4), 5);
    assert_eq!(
        live.observe(&probe, &text).0,
        replayed.observe(&probe, &text).0
    );
}

#[test]
fn entry_stays_compact() {
    let mut d = Deduper::new(&DedupConfig::default());
    let (_, e) = d.observe(&id("a"), &seed(3));
    let sig = e.sig.as_deref().map_or(0, str::len);
    assert!(sig <= 1000, "signature takes {sig} bytes");
    let json = serde_json::to_string(&e).expect("entry serialises");
    assert!(json.len() < 4096, "entry takes {} bytes", json.len());
}

#[test]
fn entries_without_signatures_still_restore_exact_matches() {
    let old = IndexEntry {
        id: id("a"),
        text_hash: format!("{:032x}", hash128(normalize("old text").as_bytes())),
        duplicate_of: None,
        story: Some(id("a")),
        sig: None,
        terms: None,
        sent: None,
    };
    let mut d = Deduper::new(&DedupConfig::default());
    d.restore(&old);
    let (b, _) = d.observe(&id("b"), "Old text!");
    assert_eq!(b.status, DedupStatus::ExactDuplicate);
    assert!(d.known_raw().contains(hash128(b"a")));
}

#[test]
fn empty_text_does_not_panic() {
    let mut d = Deduper::new(&DedupConfig::default());
    let (a, e) = d.observe(&id("a"), "");
    assert_eq!(a.status, DedupStatus::Unique);
    assert!(e.sig.is_none());
    let (b, _) = d.observe(&id("b"), " ... ");
    assert_eq!(b.status, DedupStatus::ExactDuplicate);
}

/// The prepared work of `text` with its sketch written as before the word-order flag.
fn unflagged_work(id: &str, text: &str) -> Prepared {
    let p = prepare(id, text);
    let sketch_len = p.sentences.sketch().to_bytes().len();
    let mut bytes = p.to_bytes();
    let at = bytes.len() - sketch_len;
    bytes[at] &= 0x7f;
    let mut back = Prepared::from_bytes(&bytes).expect("own layout parses");
    // The carried base64 is of the flagged sketch: left to the decision, as version 1 did.
    back.encoded = None;
    back
}

#[test]
fn reloaded_sketches_without_the_order_flag_align_as_sorted() {
    use base64::Engine as _;
    let original = seed(0);
    let spun = swap_words(&original, 6);
    let (_, entry) = Deduper::new(&DedupConfig::default()).observe(&id("a"), &original);
    // The entry as a ledger or checkpoint written before the flag holds it.
    let mut sent = entry
        .sent
        .as_deref()
        .and_then(super::prepared::decode_b64)
        .expect("a sketch");
    assert!(sent[0] & 0x80 != 0);
    sent[0] &= 0x7f;
    let legacy = IndexEntry {
        sent: Some(base64::engine::general_purpose::STANDARD_NO_PAD.encode(sent)),
        ..entry.clone()
    };
    let config = DedupConfig::default();
    let (mut ordered, mut reloaded, mut sorted) = (
        Deduper::new(&config),
        Deduper::new(&config),
        Deduper::new(&config),
    );
    ordered.restore(&entry);
    reloaded.restore(&legacy);
    sorted.restore(&legacy);
    assert!(ordered.sketches.iter().all(|s| !s.is_sorted()));
    assert!(reloaded.sketches.len() > 0);
    assert!(reloaded.sketches.iter().all(|s| s.is_sorted()));
    // A new document (words in order) against the reloaded sketch is decided as if both
    // were sorted, and the index it restored from in order still finds the rewrite.
    let (mixed, _) = reloaded.observe_prepared(prepare(&id("b"), &spun));
    let (both_sorted, _) = sorted.observe_prepared(unflagged_work(&id("b"), &spun));
    assert_eq!(mixed, both_sorted);
    let (info, _) = ordered.observe(&id("b"), &spun);
    assert_eq!(info.status, DedupStatus::Rewrite);
    assert_eq!(info.duplicate_of, Some(id("a")));
}
