//! Every kind of bad input yields one clear error record and the daemon keeps going.

mod util;

use flate2::write::GzEncoder;
use std::io::Write;
use std::time::Duration;
use util::{read_records, signal, wait_exit, Workspace};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn bad_inputs_become_error_records_and_good_files_still_flow() {
    let ws = Workspace::new();
    let cfg = ws.config("[pipeline]\nread_workers = 2\n");
    util::edit_config(&cfg, |t| {
        t.replace(
            "[source]\n",
            "[source]\ndone = \"move\"\nmax_file_bytes = 100000\nmax_inflated_bytes = 200000\n",
        )
    });
    let outside = ws.tmp.path().join("secret.txt");
    std::fs::write(&outside, "Secret\nNot for the drop folder.").unwrap();

    let mut d = ws.spawn_daemon(&cfg, &[]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "binary.txt",
            b"GIF89a\x00\x01\x02".to_vec(),
            "binary content",
        ),
        ("empty.txt", Vec::new(), "file is empty"),
        ("blank.txt", b"  \n\n \t".to_vec(), "no text after decoding"),
        ("huge.txt", vec![b'a'; 100_001], "over the cap"),
        (
            "bomb.txt.gz",
            gzip(&vec![b'a'; 10_000_000]),
            "gzip inflates past the cap",
        ),
        (
            "corrupt.gz",
            b"\x1f\x8b\x08\x00garbage".to_vec(),
            "corrupt gzip",
        ),
    ];
    for (name, body, _) in &cases {
        ws.drop_file(name, body);
    }
    std::os::unix::fs::symlink(&outside, ws.drop_dir().join("link.txt")).unwrap();
    std::fs::create_dir(ws.drop_dir().join("folder.txt")).unwrap();
    // Not UTF-8 is not bad input: a Latin-1 file is an article like any other.
    ws.drop_file(
        "latin1.txt",
        b"Caf\xe9 au lait\nLe caf\xe9 \xe9tait ferm\xe9 ce matin.",
    );
    ws.drop_file(
        "good.txt",
        b"Headline\nA good article after all the bad ones.",
    );
    ws.drop_file(
        "good.html.gz",
        &gzip(
            b"<html><head><title>T</title></head><body><p>Zipped page body text.</p></body></html>",
        ),
    );

    let total = cases.len() + 5;
    let recs = ws.wait_for(total, Duration::from_secs(20));
    signal(&d, "TERM");
    assert!(wait_exit(&mut d, Duration::from_secs(20)).is_some_and(|s| s.success()));
    assert_eq!(recs.len(), total, "{recs:#?}");

    let by_name = |n: &str| {
        recs.iter()
            .find(|r| {
                r["source"]["path"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/{n}"))
            })
            .unwrap_or_else(|| panic!("no record for {n}"))
            .clone()
    };
    for (name, _, msg) in &cases {
        let r = by_name(name);
        assert_eq!(r["type"], "error", "{name}: {r}");
        assert!(r["error"].as_str().unwrap().contains(msg), "{name}: {r}");
        assert!(
            ws.drop_dir().join("failed").join(name).exists(),
            "{name} not in failed/"
        );
    }
    let link = by_name("link.txt");
    assert!(
        link["error"]
            .as_str()
            .unwrap()
            .contains("outside the drop folder"),
        "{link}"
    );
    let folder = by_name("folder.txt");
    assert_eq!(folder["error"], "not a regular file");
    assert!(outside.exists(), "the symlink target is never touched");
    assert_eq!(by_name("good.txt")["type"], "document");
    let latin = by_name("latin1.txt");
    assert_eq!(latin["type"], "document", "{latin}");
    assert_eq!(latin["source"]["encoding"], "windows-1252");
    assert!(latin["text"]
        .as_str()
        .unwrap()
        .contains("caf\u{e9} \u{e9}tait ferm\u{e9}"));
    let html = by_name("good.html.gz");
    assert_eq!(html["source"]["format"], "html");
    assert_eq!(html["source"]["compression"], "gzip");
    assert!(html["text"]
        .as_str()
        .unwrap()
        .contains("Zipped page body text."));

    let errors = read_records(&ws.state_dir().join("errors.jsonl"));
    assert_eq!(errors.len(), total - 3);
    assert!(errors
        .iter()
        .all(|e| e["type"] == "error" && e["stage"] == "read"));
}
