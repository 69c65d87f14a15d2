//! Pages as browsers read them: legacy charsets, BOMs, NUL bytes, CR line ends, binary refused,
//! hostile attribute counts, and a per-source memory that is deterministic and content-safe.

mod util;

use serde_json::Value;
use std::path::{Path, PathBuf};
use util::{dropline, stdout_records, without_timestamps};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/strip")
}

fn process(args: &[&str]) -> (Vec<Value>, Vec<u8>) {
    let mut all = vec![
        "process",
        "--set",
        "dedup.enabled=false",
        "--set",
        "entities.enabled=false",
    ];
    all.extend_from_slice(args);
    let out = dropline(&all);
    (stdout_records(&out), out.stdout)
}

fn record<'a>(recs: &'a [Value], name: &str) -> &'a Value {
    recs.iter()
        .find(|r| r["source"]["path"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no record for {name}"))
}

#[test]
fn legacy_charsets_boms_nul_and_cr_are_read_like_a_browser() {
    let dir = fixtures();
    let (recs, _) = process(&[dir.to_str().unwrap()]);
    assert_eq!(recs.len(), 7, "{recs:#?}");
    let cases = [
        (
            "win1252_meta.html",
            "windows-1252",
            "s’est réuni mardi soir",
        ),
        (
            "latin1_nometa.html",
            "windows-1252",
            "die Größe der Klassen",
        ),
        (
            "shift_jis.html",
            "shift_jis",
            "東京都は火曜日、新しい学校予算を発表した。",
        ),
        ("utf16_bom.txt", "utf-16le", "Budget passes in Zoë’s town"),
        ("nul_byte.html", "utf-8", "agreed on a new budget"),
    ];
    for (name, encoding, phrase) in cases {
        let r = record(&recs, name);
        assert_eq!(r["type"], "document", "{name}: {r}");
        assert_eq!(r["source"]["encoding"], encoding, "{name}");
        let text = r["text"].as_str().unwrap();
        assert!(text.contains(phrase), "{name}: {text:?}");
        assert!(
            !text.contains('\u{fffd}') || name == "nul_byte.html",
            "{name}: {text:?}"
        );
    }
    let title = record(&recs, "win1252_meta.html")["title"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(title, "Budget des écoles");

    // CR-only line ends are line breaks: the title is the first line, not the whole file.
    let cr = record(&recs, "cr_only.txt");
    assert_eq!(cr["type"], "document", "{cr}");
    assert_eq!(cr["title"], "Budget passes");
    assert!(cr["text"].as_str().unwrap().contains("on Thursday"), "{cr}");

    let pdf = record(&recs, "report.pdf.html");
    assert_eq!(pdf["type"], "error");
    assert_eq!(pdf["stage"], "read");
    assert!(pdf["error"].as_str().unwrap().contains("pdf file"), "{pdf}");
}

#[test]
fn an_element_with_200k_attributes_is_capped_and_its_page_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let attrs: String = (0..200_000)
        .map(|i| format!(" data-a{i}=\"{i}\""))
        .collect();
    let para = "The council met on Tuesday and agreed on a new budget for the schools of the town, after a long and heated debate.";
    let page = format!(
        "<html><head><title>Budget</title></head><body><div{attrs}><p>{para}</p><img{attrs}><p>{para}</p></div></body></html>"
    );
    std::fs::write(dir.path().join("wide.html"), &page).unwrap();
    for strip in ["true", "false"] {
        let (recs, _) = process(&[
            "--set",
            &format!("strip.enabled={strip}"),
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(recs[0]["type"], "document", "{}", recs[0]);
        assert!(recs[0]["text"].as_str().unwrap().contains("heated debate"));
    }
    let capped = dropline::strip::markup::guard(&page);
    assert!(capped.len() < 20_000, "attributes past the cap are gone");
    // An image keeps its first attributes up to the cap; the div's, read by nothing, all go.
    assert!(capped.contains("<img data-a0=\"0\"") && !capped.contains("data-a64=\"64\""));
    assert_eq!(capped.matches("data-a0=").count(), 1);
}

/// Forty pages of one site: recurring chrome lines, a quoted sentence on five of them.
fn one_site(dir: &Path) {
    let site = dir.join("town.example");
    std::fs::create_dir_all(&site).unwrap();
    for i in 0..40 {
        let quote = if i % 8 == 0 {
            "\"We take our stature in the community very seriously.\"\n"
        } else {
            ""
        };
        let body = format!(
            "Story number {i} from the town\nHome\nSubscribe to our weekly digest today\nThe council met on day {i} and agreed on budget {} for the schools of the town, after a long debate.\n{quote}Members said plan {i} would take effect next year and that more money would go to teachers.\nShare this\n",
            i * 7 % 13
        );
        std::fs::write(site.join(format!("{i:03}.txt")), body).unwrap();
    }
}

#[test]
fn output_bytes_do_not_depend_on_the_strip_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    one_site(dir.path());
    let path = dir.path().to_str().unwrap();
    let (recs, one) = process(&["--set", "pipeline.strip_workers=1", path]);
    for _ in 0..3 {
        let (_, four) = process(&["--set", "pipeline.strip_workers=4", path]);
        assert_eq!(without_timestamps(&one), without_timestamps(&four));
    }
    // The memory did learn: the recurring digest line is gone from later pages.
    let last = recs.last().unwrap()["text"].as_str().unwrap();
    assert!(!last.contains("Subscribe to our weekly digest"), "{last}");
    let first = recs[0]["text"].as_str().unwrap();
    assert!(first.contains("agreed on budget"), "{first}");
}

#[test]
fn a_quoted_sentence_repeated_across_five_pages_survives() {
    let dir = tempfile::tempdir().unwrap();
    one_site(dir.path());
    let (recs, _) = process(&[
        "--set",
        "strip.keep_removed=true",
        dir.path().to_str().unwrap(),
    ]);
    let quoted: Vec<&Value> = recs
        .iter()
        .filter(|r| {
            let n: usize = r["source"]["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()[..3]
                .parse()
                .unwrap();
            n % 8 == 0
        })
        .collect();
    assert_eq!(quoted.len(), 5);
    for r in quoted {
        assert!(
            r["text"]
                .as_str()
                .unwrap()
                .contains("We take our stature in the community very seriously."),
            "{r}"
        );
    }
    let recurring = recs
        .iter()
        .flat_map(|r| r["boilerplate"].as_array().cloned().unwrap_or_default());
    assert!(
        recurring.into_iter().any(|l| l["kind"] == "recurring"),
        "the memory removed nothing"
    );
}

/// Short plain-text articles with a short line after a blank line (issue 9's "Copy N." files):
/// no line clears the line model's body bar, yet the article's sentence must come out.
#[test]
fn a_short_article_with_a_short_last_line_keeps_its_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "a.txt",
            "MAPLETON COUNCIL Approved budget, schools. Named Ana Ruiz treasurer.\n\nCopy 0.\n",
            "MAPLETON COUNCIL Approved budget, schools. Named Ana Ruiz treasurer.",
        ),
        (
            "b.txt",
            "Flood closes river road\nTue., Mar. 4, 2025 9: 10 AM EST\nLate Tuesday night, around 11: 15 p. m., the 40 - year - old bridge over the Mill River was closed by county engineers,\n\nCopy 0.\n",
            "Late Tuesday night, around 11: 15 p. m., the 40 - year - old bridge over the Mill River was closed by county engineers,",
        ),
        (
            "c.txt",
            "RIVERTON HAWKS Signed Tom Lee, guard. Released Sam Park, forward.\n\nEnd.\n",
            "RIVERTON HAWKS Signed Tom Lee, guard. Released Sam Park, forward.",
        ),
    ];
    for (name, body, _) in cases {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let (recs, _) = process(&[dir.path().to_str().unwrap()]);
    assert_eq!(recs.len(), cases.len());
    for (name, _, sentence) in cases {
        let r = record(&recs, name);
        assert_eq!(r["type"], "document", "{r}");
        assert_eq!(r["text"], sentence, "{r}");
    }
}
