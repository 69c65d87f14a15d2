//! Entity model tests: the golden tags of a fixed corpus, and loading the model file.

use dropline::entities::{EntitiesConfig, EntityTagger};

const SEEDS: [&str; 5] = [
    include_str!("../seeds/000_5072810ba3105ce7.txt"),
    include_str!("../seeds/001_94d74b6c5d6451ef.txt"),
    include_str!("../seeds/002_1644ae0d42b8da59.txt"),
    include_str!("../seeds/003_e25e52eb3b0ac7af.txt"),
    include_str!("../seeds/004_855ed4ede24fe742.txt"),
];

/// News-like text written for this test: headlines in capitals, lower-case names, lists of
/// organisations, numbers of every kind, non-ASCII names and a repeated surname to link.
const FIXTURE: [&str; 4] = [
    "EU SANCTIONS HIT MOSCOW BANKS\n\
     BRUSSELS, March 3 (Reuters) - The European Union on Tuesday froze the assets of \
     Sberbank and VTB Bank, said Ursula von der Leyen, president of the European Commission. \
     Von der Leyen told reporters in Brussels that 27 member states backed the package, worth \
     about $4.5 billion, or 12% of the bloc's trade with Russia.\n\
     Sberbank shares fell 3.2 percent in Frankfurt. Germany's Olaf Scholz and France's \
     Emmanuel Macron spoke by phone on Monday night.",
    "Soccer - Bayern Munich beat Borussia Dortmund 3-1 in the Bundesliga on Saturday.\n\
     Robert Lewandowski scored twice before half-time and Thomas Müller added a third at the \
     Allianz Arena. Dortmund coach Edin Terzić said his side had played the second half \
     without Marco Reus, who injured his ankle on 14 February.",
    "apple said on thursday that tim cook would visit beijing and shanghai next week, \
     its first trip to china since 2019. the company's market value topped $3 trillion \
     at 10:30 a.m. new york time.",
    "São Paulo's mayor met officials from the World Health Organization (WHO) and UNICEF in \
     Brasília. The WHO said 1,200 cases were reported in the third week of June, up from 850. \
     Dr. Tedros Adhanom Ghebreyesus, the WHO director-general, arrived at 9 pm. Tedros \
     praised Brazil's response.",
];

fn tagged_dump(tagger: &EntityTagger) -> String {
    let mut dump = String::new();
    for (k, text) in SEEDS.iter().chain(FIXTURE.iter()).enumerate() {
        for e in tagger.tag(text) {
            dump.push_str(&format!(
                "{k}\t{}\t{}\t{}\t{}\t{}\n",
                e.start, e.end, e.label, e.text, e.canonical
            ));
        }
    }
    dump
}

/// The hash of every span, label, text and canonical form the shipped model gives the seeds
/// and the fixture. Speed work must leave it alone; a deliberate model change re-records it
/// (with the reason in the commit) after checking the dump printed on failure.
// Re-recorded for the read-in-place model (i8 rows with per-row scales instead of halved
// i16; testa F1 0.9302 -> 0.9288): 6 of 395 lines changed, e.g. "Central Asian" ORG -> MISC.
// Re-recorded for the model trained with lower-cased copies and census names, epochs chosen by
// grouped CV on eng.train (testa F1 0.9288 -> 0.9254, btc-news 0.4641 -> 0.4727).
// Re-recorded for the document-level consistency pass (same model; chosen by grouped CV on
// eng.train, held-out F1 0.8882 -> 0.8886): 1 line added, seed 003's first "republic" (for
// Kazakhstan) as LOC, as the model itself tags its two later occurrences.
// Re-recorded for the model chosen by grouped CV on eng.train (pass 1 without the second-pass
// templates, pass 2 only on sentences whose document evidence disagrees with pass 1, epochs
// 10/6; held-out F1 0.8886 -> 0.8917; testa 0.9255 -> 0.9277, btc-news 0.4717 -> 0.4711).
// Re-recorded for the gate (same model; radius 1, document scope, chosen by grouped CV on
// eng.train, held-out F1 0.8917 -> 0.8953, lower-cased 0.8659 unchanged; testa 0.9277 ->
// 0.9294): 3 of 395 lines gone, all lower-case spans in cased text that the gate fixes to O:
// seed 002 "interior ministry" ORG ("The interior ministry told"), seed 003's two "republic"
// (LOC and MISC, "of the republic and", "in the republic insane").
const GOLDEN: &str = "79bb4a2acc028ee1";

#[test]
fn golden_tags_of_a_fixed_corpus() {
    let tagger = EntityTagger::load(&EntitiesConfig::default()).expect("shipped model loads");
    let dump = tagged_dump(&tagger);
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(dump.as_bytes()));
    assert!(dump.lines().count() > 100, "too few entities:\n{dump}");
    assert_eq!(hash, GOLDEN, "tags changed; the dump:\n{dump}");
}

static SHIPPED_BYTES: &[u8] = include_bytes!("../models/entities.bin");

fn load_path(path: &std::path::Path) -> anyhow::Result<EntityTagger> {
    EntityTagger::load(&EntitiesConfig {
        model: Some(path.to_path_buf()),
        ..EntitiesConfig::default()
    })
}

fn error_text(r: anyhow::Result<EntityTagger>) -> String {
    format!("{:#}", r.expect_err("the model must be refused"))
}

#[test]
fn model_loads_from_embedded_bytes_and_from_a_path_alike() {
    let embedded = EntityTagger::load(&EntitiesConfig::default()).expect("embedded model loads");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("entities.bin");
    std::fs::write(&path, SHIPPED_BYTES).unwrap();
    let mapped = load_path(&path).expect("model file loads");
    assert_eq!(tagged_dump(&embedded), tagged_dump(&mapped));
}

#[test]
fn corrupted_or_truncated_model_files_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.bin");
    let mut flipped = SHIPPED_BYTES.to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x20;
    std::fs::write(&path, &flipped).unwrap();
    let e = error_text(load_path(&path));
    assert!(e.contains("corrupted") && e.contains("bad.bin"), "{e}");

    std::fs::write(&path, &SHIPPED_BYTES[..SHIPPED_BYTES.len() / 3]).unwrap();
    let e = error_text(load_path(&path));
    assert!(e.contains("truncated"), "{e}");
    for cut in [0, 7, 63, 64, 200] {
        std::fs::write(&path, &SHIPPED_BYTES[..cut]).unwrap();
        let e = error_text(load_path(&path));
        assert!(e.contains("truncated") || e.contains("magic"), "{cut}: {e}");
    }

    // The old zlib-compressed format, or anything else that is not a model.
    std::fs::write(&path, [&b"\x78\xda"[..], &[7u8; 200]].concat()).unwrap();
    assert!(error_text(load_path(&path)).contains("magic"));

    let mut future = SHIPPED_BYTES.to_vec();
    future[8] = 99;
    std::fs::write(&path, &future).unwrap();
    assert!(error_text(load_path(&path)).contains("version 99"));

    let e = error_text(load_path(&dir.path().join("missing.bin")));
    assert!(e.contains("missing.bin"), "{e}");
}
