//! Tests of the story tier.

use super::super::text::words;
use super::*;

fn params() -> StoryParams {
    StoryParams {
        threshold: 0.2,
        window: 100,
        name_boost: 2.0,
        idf_power: 1.0,
        name_weight: 0.0,
    }
}

#[test]
fn same_event_joins_and_other_event_does_not() {
    let mut idx = StoryIndex::new(params());
    let a = terms(&words(
        "An earthquake struck Sumatra killing dozens; rescuers in Padang search rubble",
    ));
    idx.add(1, &a);
    let b = terms(&words(
        "Rescuers in Padang dig through rubble after the Sumatra earthquake killed dozens",
    ));
    let ranked = idx.rank(&idx.vector(&b), &b);
    assert_eq!(idx.choose(&ranked), Some(1));
    let c = terms(&words(
        "Apple unveiled a thinner laptop at its Cupertino launch event",
    ));
    assert_eq!(idx.choose(&idx.rank(&idx.vector(&c), &c)), None);
}

#[test]
fn window_closes_stories() {
    let mut idx = StoryIndex::new(StoryParams {
        window: 2,
        ..params()
    });
    let a = terms(&words("Sumatra earthquake Padang rescuers rubble"));
    idx.add(1, &a);
    for _ in 0..3 {
        idx.advance_only();
    }
    assert!(idx.rank(&idx.vector(&a), &a).is_empty());
}

#[test]
fn terms_pack_round_trip() {
    let t = Term {
        id: 0xabcdef,
        tf: 99,
        name_like: true,
    };
    assert_eq!(Term::unpack(t.pack()), t);
}

#[test]
fn closed_stories_free_their_slots_and_forget_terms_seen_once() {
    let mut idx = StoryIndex::new(StoryParams {
        window: 50,
        ..params()
    });
    // Every document is its own story: a term of its own and a shared one.
    let doc = |i: u32| {
        vec![
            Term {
                id: 7,
                tf: 1,
                name_like: false,
            },
            Term {
                id: 1000 + i,
                tf: 2,
                name_like: true,
            },
        ]
    };
    for i in 0..20_000u32 {
        idx.add(u128::from(i) + 1, &doc(i));
        // No document pays for the whole table: slots close a few at a time.
        assert!(idx.closed.len() <= 2 * SWEEP_EVERY as usize + 100);
    }
    // Open stories are the last 50; closed ones wait at most two rounds for their slot.
    assert!(
        idx.slots.len() < 3 * SWEEP_EVERY as usize,
        "{}",
        idx.slots.len()
    );
    assert_eq!(idx.terms.df(7), 20_000);
    // A term of a story closed rounds ago is forgotten, one of an open story is not.
    assert_eq!(idx.terms.df(1000 + 100), 0);
    assert_eq!(idx.terms.df(1000 + 19_990), 1);
    let live = idx.slots.iter().flatten().count();
    assert!(
        (50..=50 + 2 * SWEEP_EVERY as usize).contains(&live),
        "{live}"
    );
    // A freed slot is only reused once no posting names it any more.
    let mut listed: Vec<u32> = idx.terms.stories(7).collect();
    listed.sort_unstable();
    let n = listed.len();
    listed.dedup();
    assert_eq!(listed.len(), n, "a slot listed twice: a stale posting");
    for slot in listed {
        assert!(idx.slots[slot as usize].is_some() || idx.closed.iter().any(|c| c.0 == slot));
    }
}

#[test]
fn inserted_cells_land_in_term_order() {
    let cell = |t: u32| Cell::new(t << 2, t as f32);
    let mut centroid: Vec<Cell> = [3u32, 7, 9].into_iter().map(cell).collect();
    // New terms before, between (two at one place) and after the old ones.
    let new = [1u32, 4, 5, 8, 12];
    let inserts: Vec<(usize, Cell)> = new
        .iter()
        .map(|&t| (centroid.partition_point(|c| c.key() >> 2 < t), cell(t)))
        .collect();
    insert_cells(&mut centroid, &inserts);
    let terms: Vec<u32> = centroid.iter().map(|c| c.key() >> 2).collect();
    assert_eq!(terms, [1, 3, 4, 5, 7, 8, 9, 12]);
    assert!(centroid.iter().all(|c| c.mass() == (c.key() >> 2) as f32));
}

#[test]
fn seek_scan_and_the_directory_find_what_a_binary_search_finds() {
    let mut rng = crate::dedup::eval::Rng(7);
    let mut dir = Vec::new();
    let cases = [
        (0usize, 5000usize),
        (1, 5000),
        (3, 5000),
        (33, 5000),
        (300, 5000),
    ];
    let large = [
        (256, 1 << 24),
        (1000, 1 << 24),
        (5000, 1 << 24),
        (300, 1 << 12),
    ];
    for (len, span) in cases.into_iter().chain(large) {
        let mut terms: Vec<u32> = (0..len).map(|_| rng.below(span) as u32).collect();
        terms.sort_unstable();
        terms.dedup();
        let centroid: Vec<Cell> = terms.iter().map(|&t| Cell::new(t << 2 | 3, 1.0)).collect();
        directory(&centroid, &mut dir);
        assert!(((dir.len() - 1) / 3).is_power_of_two());
        assert_eq!((dir.len() - 1) % 3, 0);
        // The filter never rules out a term the centroid holds, and rules out most others.
        assert!(terms.iter().all(|&t| may_hold(&dir, t)));
        let absent: Vec<u32> = (0..3000)
            .map(|_| rng.below(1 << 24) as u32)
            .filter(|t| terms.binary_search(t).is_err())
            .collect();
        let passed = absent.iter().filter(|&&t| may_hold(&dir, t)).count();
        assert!(
            passed * 3 < absent.len(),
            "{passed} of {} absent terms pass",
            absent.len()
        );
        let probes: Vec<u32> = (0..3000)
            .map(|_| rng.below(span + 10) as u32)
            .chain(terms.iter().copied())
            .chain([0, span as u32 - 1, (1 << 24) - 1])
            .collect();
        for from in [0, centroid.len() / 3, centroid.len()] {
            for &t in &probes {
                let i = from + centroid[from..].partition_point(|c| c.key() >> 2 < t);
                let hit = centroid.get(i).is_some_and(|c| c.key() >> 2 == t);
                let want = if hit { (Some(i), i + 1) } else { (None, i) };
                let at = format!("len {len} from {from} term {t}");
                assert_eq!(seek(&centroid, from, t), want, "{at}");
                assert_eq!(scan(&centroid, from, t), want, "{at}");
                assert_eq!(seek_in(&centroid, &dir, from, t), want, "{at}");
            }
        }
    }
}

#[test]
fn dots_sum_the_same_whatever_the_search() {
    let mut rng = crate::dedup::eval::Rng(13);
    let mut dir = Vec::new();
    for (len, q) in [(300usize, 120usize), (2000, 400), (256, 5), (600, 1)] {
        let mut terms: Vec<u32> = (0..len).map(|_| rng.below(1 << 24) as u32).collect();
        terms.sort_unstable();
        terms.dedup();
        let centroid: Vec<Cell> = terms
            .iter()
            .map(|&t| Cell::new(t << 2 | (t & 1), (1 + t % 97) as f32 / 50.0))
            .collect();
        directory(&centroid, &mut dir);
        // About half the query terms are in the centroid.
        let mut ids: Vec<u32> = (0..q)
            .map(|i| match i % 2 {
                0 => terms[rng.below(terms.len())],
                _ => rng.below(1 << 24) as u32,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let vector: Vec<(u32, f32)> = ids
            .iter()
            .map(|&t| (t, (1 + t % 13) as f32 / 7.0))
            .collect();
        let is_name: Vec<bool> = ids.iter().map(|&t| t % 3 == 0).collect();
        let idfs: Vec<f32> = ids.iter().map(|&t| 1.0 + (t % 5) as f32).collect();
        let mut bits = Vec::new();
        filter_bits(&vector, &mut bits);
        let query = Query {
            vector: &vector,
            is_name: &is_name,
            idfs: &idfs,
            bits: &bits,
        };
        let dir = Dir::new(&dir);
        assert!(dir.is_some());
        let by_dir = dots(&centroid, dir, false, query);
        assert!(by_dir.0 > 0.0, "{len} {q}");
        let want = |a: (f32, f32)| (a.0.to_bits(), a.1.to_bits());
        assert_eq!(want(dots(&centroid, None, true, query)), want(by_dir));
        assert_eq!(want(dots(&centroid, None, false, query)), want(by_dir));
        // Without the filter bits, the directory is still used for the seeks.
        let no_bits = Query { bits: &[], ..query };
        assert_eq!(want(dots(&centroid, dir, false, no_bits)), want(by_dir));
    }
}

#[test]
fn an_updated_directory_is_the_rebuilt_one() {
    let mut rng = crate::dedup::eval::Rng(11);
    for (len, span, adds) in [
        (256usize, 1usize << 24, 40usize),
        (700, 1 << 24, 5),
        (300, 1 << 12, 60),
    ] {
        let mut terms: Vec<u32> = (0..len).map(|_| rng.below(span) as u32).collect();
        terms.sort_unstable();
        terms.dedup();
        let mut centroid: Vec<Cell> = terms.iter().map(|&t| Cell::new(t << 2, 1.0)).collect();
        let mut dir = Vec::new();
        directory(&centroid, &mut dir);
        // Members adding a few new terms each, past a change of the bucket count.
        for _ in 0..200 {
            let mut new: Vec<u32> = (0..rng.below(adds + 1))
                .map(|_| rng.below(span) as u32)
                .collect();
            new.sort_unstable();
            new.dedup();
            let mut inserts = Vec::new();
            let mut at = 0;
            for t in new {
                let (found, next) = seek(&centroid, at, t);
                at = next;
                if found.is_none() {
                    inserts.push((at, Cell::new(t << 2, 1.0)));
                }
            }
            insert_cells(&mut centroid, &inserts);
            update_directory(&centroid, &inserts, &mut dir);
            let mut rebuilt = Vec::new();
            directory(&centroid, &mut rebuilt);
            assert_eq!(dir, rebuilt, "len {}", centroid.len());
        }
    }
}

#[test]
fn a_background_prior_keeps_common_words_from_joining_an_early_stream() {
    let a = terms(&words(
        "officials said police were working with people across the city on monday night \
         after the earthquake near Padang",
    ));
    let b = terms(&words(
        "officials said police were working with people across the city on monday night \
         after the fire near Lisbon",
    ));
    // Without a prior the second document of a stream sees every word as equally rare, and the
    // shared everyday words carry it into the first one's story.
    let mut plain = StoryIndex::new(params());
    plain.add(1, &a);
    assert_eq!(plain.choose(&plain.rank(&plain.vector(&b), &b)), Some(1));
    // Background documents that hold the everyday words but not the events' words.
    let background: Vec<Vec<Term>> = (0..50)
        .map(|i| {
            terms(&words(&format!(
                "officials said police were working with people across the city on monday \
                 night topic{i}"
            )))
        })
        .collect();
    let prior = std::sync::Arc::new(DfPrior::from_docs(background.iter().map(Vec::as_slice)));
    assert_eq!(prior.docs(), 50);
    let mut primed = StoryIndex::with_prior(params(), Some(prior));
    let idfs = primed.idfs(&a);
    let idf_of = |w: &str| {
        let t = terms(&words(w))[0];
        idfs[a.iter().position(|x| x.id == t.id).unwrap()]
    };
    assert!(idf_of("police") < idf_of("earthquake") / 2.0);
    primed.add(1, &a);
    assert_eq!(primed.choose(&primed.rank(&primed.vector(&b), &b)), None);
    // The same event still joins.
    let c = terms(&words(
        "rescuers dug through rubble after the earthquake near Padang on monday",
    ));
    assert_eq!(primed.choose(&primed.rank(&primed.vector(&c), &c)), Some(1));
}

#[test]
fn the_query_terms_chosen_among_the_listed_ones_are_the_heaviest_of_the_vector() {
    use story_postings::{heaviest, heaviest_among, listed_keys, LISTED_TERMS};
    let mut rng = crate::dedup::eval::Rng(21);
    for round in 0..3_000 {
        let len = rng.below(80);
        // Few distinct weights, so ties (broken by position) are common.
        let levels = 1 + rng.below(if round % 2 == 0 { 4 } else { 1000 });
        let vector: Vec<(u32, f32)> = (0..len as u32)
            .map(|t| (t * 3, (1 + rng.below(levels)) as f32 / 7.0))
            .collect();
        let listed = listed_keys(&vector);
        for k in [0, 1, 5, QUERY_TERMS, LISTED_TERMS] {
            let mut want = heaviest(&vector, k);
            let mut got: Vec<usize> = heaviest_among(&listed, k).collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "len {len} k {k}");
        }
    }
}

#[test]
fn a_recount_weighs_every_centroid_term_by_its_idf_before_the_add() {
    // Stories grown past the recount sizes (powers of two, every 64 members) and past the
    // directory size, documents given their IDF values (as a decision gives them) or not.
    let mut rng = crate::dedup::eval::Rng(33);
    let mut idx = StoryIndex::new(StoryParams {
        window: 10_000,
        ..params()
    });
    let mut recounts = 0;
    for doc in 0..700u32 {
        let story = u128::from(doc % 3);
        let len = 5 + rng.below(80);
        let mut t: Vec<Term> = (0..len)
            .map(|_| Term {
                id: rng.below(if story == 0 { 400 } else { 4000 }) as u32,
                tf: 1 + rng.below(4) as u8,
                name_like: rng.below(3) == 0,
            })
            .collect();
        t.sort_unstable();
        t.dedup_by_key(|x| x.id);
        // The IDF of every term the centroid may hold after the add, as it stands before it.
        let slot = idx.by_id.get(&story).copied();
        let centroid = slot.and_then(|s| idx.slots[s as usize].as_ref());
        let mut idf = idx.idf();
        let before: std::collections::HashMap<u32, f32> = centroid
            .map_or(&[][..], |s| &s.centroid[..])
            .iter()
            .map(|c| c.term())
            .chain(t.iter().map(|x| x.id))
            .map(|x| (x, idf.of(x)))
            .collect();
        let idfs = idx.idfs(&t);
        match doc % 3 {
            0 => idx.add(story, &t),
            1 => idx.add_with(story, &t, Some(&idfs), None),
            _ => {
                let vector = idx.vector_with(&t, &idfs);
                let keys = StoryIndex::listed_keys(&vector);
                idx.add_with(story, &t, Some(&idfs), Some((&vector, &keys)));
            }
        }
        let slot = idx.by_id[&story];
        let s = idx.slots[slot as usize].as_ref().unwrap();
        if !(s.size.is_power_of_two() || s.size % 64 == 0) {
            continue;
        }
        recounts += 1;
        let (mut norm_sq, mut names_sq) = (0.0f32, 0.0f32);
        for c in &s.centroid {
            let w = c.mass() * before[&c.term()];
            norm_sq += w * w;
            if c.key() & 1 != 0 {
                names_sq += w * w;
            }
        }
        assert_eq!(s.norm_sq.to_bits(), norm_sq.to_bits(), "doc {doc}");
        assert_eq!(s.names_sq.to_bits(), names_sq.to_bits(), "doc {doc}");
    }
    assert!(
        recounts > 20 && idx.dirs.len() == 3,
        "{recounts} {}",
        idx.dirs.len()
    );
}
