//! The one-shot `process` and `check` commands: exit codes, config handling, the seeds.

mod util;

use util::{dropline, seeds, stdout_records};

#[test]
fn process_seeds_yields_five_documents_in_path_order() {
    let s = seeds();
    let out = dropline(&["process", s.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = stdout_records(&out);
    assert_eq!(recs.len(), 5);
    let paths: Vec<&str> = recs
        .iter()
        .map(|r| r["source"]["path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    for r in &recs {
        assert_eq!(r["type"], "document");
        assert_eq!(r["id"].as_str().unwrap().len(), 32);
        assert_eq!(r["source"]["format"], "text");
        assert!(r["text"].as_str().unwrap().contains("Kazakhstan"));
        assert!(!r["title"].as_str().unwrap().is_empty());
        assert!(r["dedup"]["status"].is_string());
    }
}

#[test]
fn switched_off_stages_leave_their_fields_out() {
    let s = seeds();
    let out = dropline(&[
        "process",
        "--set",
        "dedup.enabled=false",
        "--set",
        "entities.enabled=false",
        s.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    for r in stdout_records(&out) {
        assert!(r.get("dedup").is_none(), "{r}");
        assert!(r.get("entities").is_none(), "{r}");
    }
}

#[test]
fn same_bytes_under_another_name_is_an_exact_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read(seeds().join("000_5072810ba3105ce7.txt")).unwrap();
    std::fs::write(dir.path().join("a.txt"), &body).unwrap();
    std::fs::write(dir.path().join("b.txt"), &body).unwrap();
    let out = dropline(&["process", dir.path().to_str().unwrap()]);
    let recs = stdout_records(&out);
    assert_eq!(recs[0]["dedup"]["status"], "unique");
    assert_eq!(recs[1]["dedup"]["status"], "exact_duplicate");
    assert_eq!(recs[1]["dedup"]["duplicate_of"], recs[0]["id"]);
    assert_eq!(recs[0]["id"], recs[1]["id"]);
}

#[test]
fn a_bad_input_exits_one_with_an_error_record() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.txt"), "A headline\nSome text here.").unwrap();
    std::fs::write(dir.path().join("zero.txt"), "").unwrap();
    let out = dropline(&["process", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let recs = stdout_records(&out);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["type"], "document");
    assert_eq!(recs[1]["type"], "error");
    assert_eq!(recs[1]["stage"], "read");
    assert_eq!(recs[1]["error"], "file is empty");
}

#[test]
fn usage_and_config_errors_exit_two() {
    let s = seeds();
    let out = dropline(&["process", "--set", "dedup.nope=1", s.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    let out = dropline(&["process", "/nonexistent/path/x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = dropline(&["process"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn shipped_config_parses_and_unknown_keys_are_refused() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline.toml");
    // The metrics port is left out: `check` binds it, and a daemon elsewhere may hold 9464.
    let out = dropline(&[
        "check",
        "--config",
        shipped.to_str().unwrap(),
        "--set",
        "metrics.enabled=false",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let effective: toml::Table = String::from_utf8_lossy(&out.stdout).parse().unwrap();
    assert_eq!(effective["source"]["dir"].as_str(), Some("seeds"));
    assert_eq!(effective["source"]["done"].as_str(), Some("leave"));
    assert_eq!(
        effective["metrics"]["listen"].as_str(),
        Some("127.0.0.1:9464")
    );
    assert_eq!(effective["source"]["include"][0].as_str(), Some("*.txt"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[source]\ndir = \"x\"\nsetle = \"1s\"\n").unwrap();
    let out = dropline(&["check", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("setle"), "{err}");
}

#[test]
fn seeds_end_to_end_one_story_clean_text_linked_entities() {
    let s = seeds();
    let out = dropline(&["process", s.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let recs = stdout_records(&out);
    let story = &recs[0]["dedup"]["story"];
    for r in &recs {
        assert_eq!(&r["dedup"]["story"], story, "the five seeds are one story");
        let text = r["text"].as_str().unwrap();
        for boilerplate in [
            "READ MORE",
            "views0 comments",
            "Photo: official website",
            "Based on materials from TASS",
        ] {
            assert!(
                !text.contains(boilerplate),
                "{boilerplate:?} left in {}",
                r["source"]["path"]
            );
        }
        // Every entity span is the code-point slice of the text it claims to be.
        let chars: Vec<char> = text.chars().collect();
        for e in r["entities"].as_array().unwrap() {
            let (a, b) = (
                e["start"].as_u64().unwrap() as usize,
                e["end"].as_u64().unwrap() as usize,
            );
            let slice: String = chars[a..b].iter().collect();
            assert_eq!(slice, e["text"].as_str().unwrap());
        }
    }
    let first = &recs[0];
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .contains("Nationwide emergency"),
        "subheading kept"
    );
    let tokayev = first["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["text"] == "Tokayev")
        .expect("Tokayev tagged");
    assert_eq!(tokayev["label"], "PER");
    assert_eq!(tokayev["canonical"], "Kassym-Jomart Tokayev");
}

#[test]
fn re_posts_of_one_story_keep_their_body_and_are_near_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read_to_string(seeds().join("000_5072810ba3105ce7.txt")).unwrap();
    let outlets = [
        "Tribune",
        "Courier",
        "Herald",
        "Gazette",
        "Observer",
        "Chronicle",
        "Ledger",
        "Sentinel",
    ];
    for (i, outlet) in outlets.iter().enumerate() {
        // Each outlet adds a sentence of its own: near-copies, not exact ones.
        let copy = format!("{body}\nThe {outlet} desk contributed reporting to this story.\n");
        std::fs::write(dir.path().join(format!("{i}.txt")), copy).unwrap();
    }
    let out = dropline(&[
        "process",
        "--set",
        "entities.enabled=false",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = stdout_records(&out);
    assert_eq!(recs[0]["dedup"]["status"], "unique");
    for (i, r) in recs.iter().enumerate().skip(1) {
        // The outlet's sentence is stripped as trailing boilerplate, so a copy may clean up to
        // the very same body (exact) or differ by a line the source memory removed (near).
        let status = r["dedup"]["status"].as_str().unwrap();
        let path = &r["source"]["path"];
        assert!(
            matches!(status, "exact_duplicate" | "near_duplicate"),
            "{path}: {status}"
        );
        let earlier: Vec<_> = recs[..i].iter().map(|e| &e["id"]).collect();
        assert!(earlier.contains(&&r["dedup"]["duplicate_of"]), "{path}");
        assert_eq!(r["dedup"]["story"], recs[0]["dedup"]["story"]);
        if status == "near_duplicate" {
            let text = r["text"].as_str().unwrap();
            assert!(
                text.contains("Tokayev urges Collective Security Treaty Organisation"),
                "{text}"
            );
        }
    }
}

#[test]
fn run_once_processes_a_backlog_larger_than_the_pending_cap() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    std::fs::create_dir(&drop).unwrap();
    for i in 0..120 {
        std::fs::write(
            drop.join(format!("{i:03}.txt")),
            format!("Title {i}\nBody number {i} here."),
        )
        .unwrap();
    }
    let out = dropline(&[
        "run",
        "--once",
        "--set",
        &format!("source.dir=\"{}\"", drop.display()),
        "--set",
        "source.max_pending=50",
        "--set",
        "source.settle=\"0s\"",
        "--set",
        &format!("state.dir=\"{}\"", dir.path().join("state").display()),
        "--set",
        "metrics.enabled=false",
        "--set",
        "entities.enabled=false",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_records(&out).len(), 120);
}

#[test]
fn removed_lines_are_kept_by_kind_when_asked() {
    let seed = seeds().join("000_5072810ba3105ce7.txt");
    let out = dropline(&[
        "process",
        "--set",
        "strip.keep_removed=true",
        "--set",
        "entities.enabled=false",
        seed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let rec = &stdout_records(&out)[0];
    let removed = rec["boilerplate"].as_array().expect("boilerplate field");
    let teasers: Vec<_> = removed.iter().filter(|r| r["kind"] == "teaser").collect();
    assert_eq!(teasers.len(), 2, "{removed:?}");
    assert!(teasers[0]["text"]
        .as_str()
        .unwrap()
        .starts_with("READ MORE:"));
    let plain = dropline(&[
        "process",
        "--set",
        "entities.enabled=false",
        seed.to_str().unwrap(),
    ]);
    assert!(
        stdout_records(&plain)[0].get("boilerplate").is_none(),
        "off by default"
    );
}

/// Runs `dropline args` with its standard output a pipe whose reader is already gone.
fn into_closed_pipe(args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(util::bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn an_eval_report_into_a_closed_pipe_is_an_error_not_a_panic() {
    // A page set of the seeds (text and its own gold) and a CoNLL file of two sentences.
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    for sub in ["text", "gold"] {
        std::fs::create_dir_all(set.join(sub)).unwrap();
    }
    for e in std::fs::read_dir(seeds()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap();
        std::fs::copy(&p, set.join("text").join(name)).unwrap();
        std::fs::copy(&p, set.join("gold").join(name)).unwrap();
    }
    let conll = tmp.path().join("tiny.conll");
    std::fs::write(
        &conll,
        "-DOCSTART- -X- -X- O\n\nAnna NNP B-NP B-PER\nvisited VBD B-VP O\nParis NNP B-NP B-LOC\n. . O O\n\nReuters NNP B-NP B-ORG\nsaid VBD B-VP O\n. . O O\n",
    )
    .unwrap();
    for args in [
        vec!["eval", "strip", set.to_str().unwrap(), "--input", "text"],
        vec!["eval", "entities", "--conll", conll.to_str().unwrap()],
    ] {
        let out = into_closed_pipe(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
        assert!(err.contains("writing the report"), "{args:?}: {err}");
    }
}
