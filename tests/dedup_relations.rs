//! The relations the dedup stage names: versions of one wire story reuse each other and share a
//! story, a spun copy is a rewrite, re-posts are duplicates, and drop mode drops only these.

mod util;

use serde_json::Value;
use util::{dropline, stdout_records};

const LEAD: &str = "\
Flooding along the Marrow river forced about four thousand residents from their homes on Sunday.
Emergency crews evacuated two villages after the embankment gave way near the old mill.";

const BODY: &str = "\
The regional governor declared a state of emergency for the whole valley late in the evening.
Army engineers were sandbagging bridges while helicopters lifted stranded farmers from rooftops.
Meteorologists expect another fifty millimetres of rain before the weekend storms move east.
Schools across the district will stay closed until inspectors confirm the buildings are safe.
Hospital staff reported minor injuries among volunteers who helped carry elderly patients.
The railway company suspended trains between Ardley and Coltham because tracks were submerged.
Insurance firms said early estimates of the damage already exceeded last spring's floods.
Residents criticised delays in the warning system that should have sounded on Saturday night.";

const NEW_LEAD: &str = "\
Thousands of people fled rising water in the Marrow valley overnight as rescuers raced to reach cut-off hamlets.
Officials blamed a breach in an earthen dam upstream for the sudden surge through low-lying streets.";

const UPDATE: &str = "\
By Monday afternoon the water level at the central gauge had dropped by almost half a metre.
The prime minister visited a shelter in a sports hall and promised compensation for lost harvests.
Engineers began pumping water out of the flooded power station that supplies the valley towns.";

const LATER: &str = "\
Police recovered the body of a fisherman who had been missing since the first night of the floods.
Charities opened collection points for blankets, bottled water and baby food in neighbouring cities.
An independent inquiry into the failed embankment will report its findings before the winter.
Farmers' unions asked for emergency credit lines to replant fields that were washed away.";

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// The first version, a later one with the lead rewritten and paragraphs added, and a third
/// with one more update and a paragraph cut.
fn versions() -> [String; 3] {
    let v1 = format!("{LEAD}\n{BODY}\n");
    let v2 = format!("{NEW_LEAD}\n{BODY}\n{UPDATE}\n");
    let body: Vec<&str> = lines(BODY);
    let v3 = format!(
        "{NEW_LEAD}\n{}\n{UPDATE}\n{LATER}\n",
        body[..body.len() - 2].join("\n")
    );
    [v1, v2, v3]
}

/// A spun copy: every third word of four letters or more gets another form (as a spinner's
/// synonyms would), punctuation and sentences kept.
fn spin(text: &str) -> String {
    let mut n = 0;
    text.split(' ')
        .map(|w| {
            let letters = w.trim_end_matches(|c: char| !c.is_alphanumeric());
            if letters.len() >= 4 {
                n += 1;
                if n % 3 == 0 {
                    return format!("{}x{}", letters, &w[letters.len()..]);
                }
            }
            w.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn process(dir: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "process",
        "--set",
        "entities.enabled=false",
        "--set",
        "strip.enabled=false",
    ];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    let out = dropline(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_records(&out)
}

fn by_name<'a>(recs: &'a [Value], name: &str) -> &'a Value {
    recs.iter()
        .find(|r| r["source"]["path"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("{name} not in output"))
}

fn reuse_of(r: &Value) -> Vec<(String, f64)> {
    r["dedup"]["reuse"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["of"].as_str().unwrap().to_string(),
                        e["shared"].as_f64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn wire_story_in_three_versions_is_one_story_with_reuse_and_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    for (i, v) in versions().iter().enumerate() {
        std::fs::write(dir.path().join(format!("v{}.txt", i + 1)), v).unwrap();
    }
    let recs = process(dir.path(), &[]);
    assert_eq!(recs.len(), 3);
    for r in &recs {
        assert_eq!(r["dedup"]["status"], "unique", "{}", r["dedup"]);
        assert!(r["dedup"].get("duplicate_of").is_none());
        assert_eq!(r["dedup"]["story"], recs[0]["dedup"]["story"]);
    }
    assert!(reuse_of(&recs[0]).is_empty());
    let v2 = reuse_of(&recs[1]);
    assert_eq!(v2.len(), 1, "{v2:?}");
    assert_eq!(v2[0].0, recs[0]["id"].as_str().unwrap());
    // Eight of the thirteen sentences come from the first version.
    assert!((0.45..0.75).contains(&v2[0].1), "{v2:?}");
    let v3 = reuse_of(&recs[2]);
    let of: Vec<&str> = v3.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(of[0], recs[1]["id"].as_str().unwrap(), "{v3:?}");
    assert!(of.contains(&recs[0]["id"].as_str().unwrap()), "{v3:?}");
    assert!(v3[0].1 > v3[1].1, "the closer version first: {v3:?}");
}

#[test]
fn spun_copy_is_a_rewrite_of_its_original() {
    let dir = tempfile::tempdir().unwrap();
    let [v1, _, _] = versions();
    std::fs::write(dir.path().join("a.txt"), &v1).unwrap();
    std::fs::write(dir.path().join("b.txt"), spin(&v1)).unwrap();
    let recs = process(dir.path(), &[]);
    let b = &recs[1]["dedup"];
    assert_eq!(b["status"], "rewrite", "{b}");
    assert_eq!(b["duplicate_of"], recs[0]["id"]);
    assert_eq!(b["story"], recs[0]["dedup"]["story"]);
    assert!(b["similarity"].as_f64().unwrap() >= 0.8, "{b}");
}

#[test]
fn spun_copy_with_sentences_merged_and_dropped_is_still_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let [v1, _, _] = versions();
    let spun = spin(&v1);
    let mut s: Vec<String> = spun.lines().map(str::to_string).collect();
    // The first two sentences merged, the sixth dropped.
    let second = s.remove(1);
    s[0] = format!("{}, and {}", s[0].trim_end_matches('.'), second);
    s.remove(5);
    std::fs::write(dir.path().join("a.txt"), &v1).unwrap();
    std::fs::write(dir.path().join("b.txt"), s.join("\n") + "\n").unwrap();
    let recs = process(dir.path(), &[]);
    let b = &recs[1]["dedup"];
    assert_eq!(b["status"], "rewrite", "{b}");
    assert_eq!(b["duplicate_of"], recs[0]["id"]);
}

/// An edited version of the first: a clause added to most sentences (as a later wire version
/// attributes and updates them), one sentence cut and one added. Nearly all of it is covered,
/// sentence by sentence, but by insertions rather than words swapped in place.
#[test]
fn edited_wire_version_is_reuse_not_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let [v1, _, _] = versions();
    let clauses = [
        "according to the regional police spokesman",
        "as heavy rain continued through Monday evening",
        "while opposition politicians demanded answers",
    ];
    let mut s: Vec<String> = v1
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let l = l.trim_end_matches('.');
            if i % 4 == 3 {
                format!("{l}.")
            } else {
                format!("{l}, {}.", clauses[i % 3])
            }
        })
        .collect();
    s.remove(4);
    s.push("Volunteers from three neighbouring provinces arrived with boats and pumps.".into());
    std::fs::write(dir.path().join("a.txt"), &v1).unwrap();
    std::fs::write(dir.path().join("b.txt"), s.join("\n") + "\n").unwrap();
    let recs = process(dir.path(), &[]);
    let b = &recs[1]["dedup"];
    assert_eq!(b["status"], "unique", "{b}");
    assert_eq!(b["story"], recs[0]["dedup"]["story"], "{b}");
    let reuse = reuse_of(&recs[1]);
    assert_eq!(reuse.len(), 1, "{reuse:?}");
    assert_eq!(reuse[0].0, recs[0]["id"].as_str().unwrap());
    assert!(reuse[0].1 > 0.7, "{reuse:?}");
}

/// A folder with every relation: an original, a later version, a spun copy, an exact copy and
/// a re-post with one line added.
fn mixed_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let [v1, v2, _] = versions();
    let files = [
        ("a_original.txt", v1.clone()),
        ("b_version.txt", v2),
        ("c_spun.txt", spin(&v1)),
        ("d_copy.txt", v1.clone()),
        (
            "e_repost.txt",
            format!("{v1}Reporting by the regional desk.\n"),
        ),
    ];
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

#[test]
fn every_relation_gets_its_own_status() {
    let dir = mixed_folder();
    let recs = process(dir.path(), &[]);
    let status = |n: &str| {
        by_name(&recs, n)["dedup"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("a_original.txt"), "unique");
    assert_eq!(status("b_version.txt"), "unique");
    assert_eq!(status("c_spun.txt"), "rewrite");
    assert_eq!(status("d_copy.txt"), "exact_duplicate");
    assert_eq!(status("e_repost.txt"), "near_duplicate");
}

#[test]
fn drop_mode_keeps_rewrites_and_reuses_unless_told_otherwise() {
    let dir = mixed_folder();
    let kept = |recs: &[Value]| -> Vec<String> { recs.iter().map(util::record_name).collect() };
    let recs = process(dir.path(), &["--set", "dedup.on_duplicate=\"drop\""]);
    assert_eq!(
        kept(&recs),
        ["a_original.txt", "b_version.txt", "c_spun.txt"]
    );
    let recs = process(
        dir.path(),
        &["--set", "dedup.on_duplicate=\"drop_rewrites\""],
    );
    assert_eq!(kept(&recs), ["a_original.txt", "b_version.txt"]);
}

#[test]
fn two_runs_over_one_folder_give_identical_dedup_fields() {
    let dir = mixed_folder();
    for (i, seed) in std::fs::read_dir(util::seeds()).unwrap().enumerate() {
        std::fs::copy(seed.unwrap().path(), dir.path().join(format!("s{i}.txt"))).unwrap();
    }
    let fields = |recs: Vec<Value>| -> Vec<(Value, Value)> {
        recs.into_iter()
            .map(|r| (r["source"]["path"].clone(), r["dedup"].clone()))
            .collect()
    };
    let one = fields(process(dir.path(), &["--set", "pipeline.strip_workers=1"]));
    let two = fields(process(dir.path(), &["--set", "pipeline.strip_workers=4"]));
    assert_eq!(one.len(), 10);
    assert_eq!(one, two);
}
