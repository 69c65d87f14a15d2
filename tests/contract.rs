//! The record contract and the operator's surface: every emitted line validates against
//! `schema/record.schema.json`, `line_id` keys file versions, include/exclude globs, a strict
//! `check`, `--version`, completions and the man page.

mod util;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use util::{bin, dropline, read_records, seeds, signal, stdout_records, wait_exit, Workspace};

fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/record.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

fn assert_valid(v: &jsonschema::Validator, rec: &Value) {
    let errors: Vec<String> = v.iter_errors(rec).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?} in {rec}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn every_emitted_line_validates_against_the_schema() {
    let v = schema();
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("in");
    std::fs::create_dir(&drop).unwrap();
    let body = std::fs::read(seeds().join("000_5072810ba3105ce7.txt")).unwrap();
    for entry in std::fs::read_dir(seeds()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, drop.join(p.file_name().unwrap())).unwrap();
    }
    // An exact copy, a near copy, an HTML page, a gzipped one, and bad inputs of every kind.
    std::fs::write(drop.join("100_copy.txt"), &body).unwrap();
    let mut near = body.clone();
    near.extend_from_slice(b"\nThe Herald desk contributed reporting to this story.\n");
    std::fs::write(drop.join("101_near.txt"), &near).unwrap();
    let paragraphs: String = String::from_utf8_lossy(&body)
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("<p>{l}</p>"))
        .collect();
    std::fs::write(
        drop.join("102_page.html"),
        format!("<html><head><title>A page</title></head><body><nav>Home | World</nav><article>{paragraphs}</article></body></html>"),
    )
    .unwrap();
    std::fs::write(
        drop.join("103_zip.txt.gz"),
        gzip(b"Zipped\nA zipped article body."),
    )
    .unwrap();
    std::fs::write(drop.join("200_empty.txt"), "").unwrap();
    std::fs::write(drop.join("201_binary.txt"), b"GIF89a\x00\x01").unwrap();
    std::fs::write(drop.join("203_corrupt.gz"), b"\x1f\x8b\x08\x00garbage").unwrap();
    std::fs::write(drop.join("204_blank.txt"), " \n\t\n").unwrap();
    let state = dir.path().join("state");
    let out = dropline(&[
        "process",
        "--set",
        &format!("state.dir={}", state.display()),
        "--set",
        "strip.keep_removed=true",
        drop.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "bad inputs exit 1");
    let recs = stdout_records(&out);
    assert_eq!(recs.len(), 13, "{recs:#?}");
    let kinds = |k: &str| recs.iter().filter(|r| r["type"] == k).count();
    assert_eq!((kinds("document"), kinds("error")), (9, 4), "{recs:#?}");
    let statuses: Vec<&str> = recs
        .iter()
        .filter_map(|r| r["dedup"]["status"].as_str())
        .collect();
    assert!(statuses.contains(&"exact_duplicate") && statuses.contains(&"near_duplicate"));
    for r in &recs {
        assert_valid(&v, r);
        assert_eq!(r["schema"], "dropline.record/1");
    }
    let errors = read_records(&state.join("errors.jsonl"));
    assert_eq!(errors.len(), 4);
    for e in &errors {
        assert_valid(&v, e);
    }

    // The schema is not vacuous: records that break the contract are refused.
    let doc = recs.iter().find(|r| r["type"] == "document").unwrap();
    let mut broken = Vec::new();
    for (field, value) in [
        ("processed_at", Value::from("2026-12-02 10:00:00")),
        ("line_id", Value::from("not-hex")),
        ("schema", Value::from("dropline.record/0")),
        ("text", Value::from(3)),
    ] {
        let mut bad = doc.clone();
        bad[field] = value;
        broken.push(bad);
    }
    let mut no_line_id = doc.clone();
    no_line_id.as_object_mut().unwrap().remove("line_id");
    broken.push(no_line_id);
    let mut bad_label = doc.clone();
    bad_label["entities"] = serde_json::json!([
        {"text": "X", "label": "PERSON", "start": 0, "end": 1, "canonical": "X"}
    ]);
    broken.push(bad_label);
    let mut dup_without_original = doc.clone();
    dup_without_original["dedup"] = serde_json::json!({"status": "exact_duplicate"});
    broken.push(dup_without_original);
    for b in &broken {
        assert!(!v.is_valid(b), "accepted {b}");
    }
}

#[test]
fn output_bytes_do_not_depend_on_worker_counts() {
    let s = seeds();
    let run = |workers: &str| {
        let out = dropline(&[
            "process",
            "--set",
            &format!("pipeline.strip_workers={workers}"),
            "--set",
            &format!("pipeline.read_workers={workers}"),
            s.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
        stdout_records(&out)
            .into_iter()
            .map(|mut r| {
                let at = r.as_object_mut().unwrap().remove("processed_at").unwrap();
                assert!(at.as_str().unwrap().ends_with('Z'), "{at}");
                serde_json::to_string(&r).unwrap()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run("1"), run("3"));
}

#[test]
fn line_id_is_stable_on_re_emission_and_distinct_per_file_version() {
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read(seeds().join("001_94d74b6c5d6451ef.txt")).unwrap();
    std::fs::write(dir.path().join("a.txt"), &body).unwrap();
    std::fs::write(dir.path().join("b.txt"), &body).unwrap();
    let run = || {
        let out = dropline(&[
            "process",
            "--set",
            "entities.enabled=false",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
        stdout_records(&out)
    };
    let first = run();
    let again = run();
    let ids = |recs: &[Value]| -> Vec<String> {
        recs.iter()
            .map(|r| r["line_id"].as_str().unwrap().to_string())
            .collect()
    };
    // The stdout sink re-emits a file's line: it keeps its line_id.
    assert_eq!(ids(&first), ids(&again));
    // An exact duplicate shares the content `id`, never the `line_id` (the upsert key).
    assert_eq!(first[0]["id"], first[1]["id"]);
    assert_ne!(first[0]["line_id"], first[1]["line_id"]);
    assert_eq!(first[1]["dedup"]["status"], "exact_duplicate");
    // A new version of a.txt (new content, new mtime) is a new line_id.
    std::thread::sleep(Duration::from_millis(20));
    let mut edited = body.clone();
    edited.extend_from_slice(b"\nCorrection: an earlier version misstated a date.\n");
    std::fs::write(dir.path().join("a.txt"), &edited).unwrap();
    let third = run();
    assert_ne!(third[0]["line_id"], first[0]["line_id"]);
    assert_eq!(third[1]["line_id"], first[1]["line_id"], "b.txt unchanged");
}

#[test]
fn csv_is_skipped_by_default_and_read_when_included() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "Headline\nAn article body.").unwrap();
    std::fs::write(dir.path().join("table.csv"), "id,name\n1,Astana\n").unwrap();
    std::fs::write(dir.path().join("notes.md"), "# Notes\nNot an article.").unwrap();
    std::fs::write(dir.path().join("b.txt.filepart"), "Half an upl").unwrap();
    let path = dir.path().to_str().unwrap();
    let out = dropline(&["process", "--set", "entities.enabled=false", path]);
    let names = |out: &std::process::Output| -> Vec<String> {
        stdout_records(out)
            .iter()
            .map(|r| {
                let p = r["source"]["path"].as_str().unwrap();
                p.rsplit('/').next().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(names(&out), vec!["a.txt"]);
    let out = dropline(&[
        "process",
        "--set",
        "entities.enabled=false",
        "--set",
        r#"source.include=["*.txt", "*.CSV"]"#,
        path,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(names(&out), vec!["a.txt", "table.csv"]);
}

#[test]
fn a_filepart_upload_written_in_two_chunks_yields_one_document() {
    let ws = Workspace::new();
    // Strip off: the record's text is then the whole file, halves and all.
    let cfg = ws.config("[strip]\nenabled = false\n");
    let mut d = ws.spawn_daemon(&cfg, &[]);
    let part = ws.drop_dir().join("story.txt.filepart");
    std::fs::write(&part, "Headline\nThe first half of the upload, ").unwrap();
    // Longer than settle (200 ms) and a rescan (1 s): without the rule the half would be read.
    std::thread::sleep(Duration::from_millis(1500));
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&part)
        .unwrap();
    f.write_all(b"and the second half that completes it.\n")
        .unwrap();
    drop(f);
    std::fs::rename(&part, ws.drop_dir().join("story.txt")).unwrap();
    let recs = ws.wait_for(1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1500));
    let recs_after = ws.records();
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, Duration::from_secs(20)).is_some_and(|s| s.success()));
    assert_eq!(recs.len(), 1, "{recs:#?}");
    assert_eq!(recs_after.len(), 1, "{recs_after:#?}");
    assert!(
        recs[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("second half")),
        "{recs:#?}"
    );
    assert!(recs[0]["source"]["path"]
        .as_str()
        .unwrap()
        .ends_with("/story.txt"));
}

/// Runs `check` and returns (exit code, stderr).
fn check(cfg: &Path, set: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["check", "--config", cfg.to_str().unwrap()];
    for s in set {
        args.extend(["--set", s]);
    }
    let out = dropline(&args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_is_as_strict_as_run_and_names_file_and_key() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let file = cfg.display().to_string();
    let (code, err) = check(&cfg, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!ws.state_dir().exists(), "check creates nothing");

    let (code, err) = check(&cfg, &["log.level=infoo"]);
    assert_eq!(code, Some(2));
    assert!(err.contains(&file) && err.contains("log.level"), "{err}");

    let missing = ws.tmp.path().join("nowhere");
    let (code, err) = check(&cfg, &[&format!("source.dir={}", missing.display())]);
    assert_eq!(code, Some(2));
    assert!(err.contains(&file) && err.contains("source.dir"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let listen = format!("metrics.listen={addr}");
    let (code, err) = check(&cfg, &["metrics.enabled=true", &listen]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&file) && err.contains("metrics.listen"),
        "{err}"
    );

    // `run` refuses the same things the same way, before it starts.
    let out = Command::new(bin())
        .args([
            "run",
            "--once",
            "--config",
            &file,
            "--set",
            "log.level=infoo",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&file) && err.contains("log.level"), "{err}");

    // With log.format = json, the fatal error is one JSON object.
    let (code, err) = check(&cfg, &["log.format=json", &listen, "metrics.enabled=true"]);
    assert_eq!(code, Some(2));
    let line: Value = serde_json::from_str(err.trim()).expect("one JSON line");
    assert_eq!(line["level"], "ERROR");
    assert!(line["fields"]["error"]
        .as_str()
        .unwrap()
        .contains("metrics.listen"));
    drop(taken);
}

#[test]
fn check_explain_prints_meaning_default_and_current() {
    let ws = Workspace::new();
    let cfg = ws.config("");
    let out = dropline(&[
        "check",
        "--config",
        cfg.to_str().unwrap(),
        "--explain",
        "source.settle",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ready"), "{text}");
    assert!(text.contains("default: \"2s\""), "{text}");
    assert!(text.contains("current: \"200ms\""), "{text}");
    let out = dropline(&["check", "--explain", "source.nope"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn version_names_the_commit() {
    let out = dropline(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let expected = head.unwrap_or_else(|| "unknown".into());
    assert!(
        text.starts_with("dropline ") && text.contains(&format!("({expected})")),
        "{text} lacks {expected}"
    );
}

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = dropline(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("dropline") && text.contains("check"),
            "{shell}"
        );
    }
    let out = dropline(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(".TH dropline 1"), "{text}");
    assert!(text.contains("completions"));
}
