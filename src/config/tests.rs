use super::*;

#[test]
fn overrides_apply_and_type() {
    let c = Config::load(
        None,
        &[
            "strip.enabled=false".into(),
            "source.dir=/tmp/x".into(),
            "pipeline.read_workers=3".into(),
            "source.settle=250ms".into(),
        ],
    )
    .unwrap();
    assert!(!c.strip.enabled);
    assert_eq!(c.source.dir, PathBuf::from("/tmp/x"));
    assert_eq!(c.pipeline.read_workers, 3);
    assert_eq!(c.source.settle, Duration::from_millis(250));
}

#[test]
fn unknown_key_is_named() {
    let err = Config::load(None, &["source.dirx=a".into()]).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("dirx"), "{msg}");
}

fn refusal(sets: &[&str]) -> String {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    format!("{:#}", Config::load(None, &sets).unwrap_err())
}

#[test]
fn dangerous_paths_and_durations_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let drop = format!("source.dir={d}/drop");
    let msg = refusal(&[&drop, "source.rescan_interval=50ms"]);
    assert!(msg.contains("source.rescan_interval"), "{msg}");
    let msg = refusal(&[&drop, "source.done_dir=../../x"]);
    assert!(msg.contains("source.done_dir"), "{msg}");
    let msg = refusal(&[&drop, "source.failed_dir=a/../../b"]);
    assert!(msg.contains("source.failed_dir"), "{msg}");
    let msg = refusal(&[&drop, &format!("state.dir={d}/drop/st")]);
    assert!(msg.contains("state.dir"), "{msg}");
    let file = ["output.kind=file", &drop];
    let msg = refusal(&[
        file[0],
        file[1],
        &format!("output.path={d}/drop/../drop/o.jsonl"),
    ]);
    assert!(msg.contains("output.path"), "{msg}");
    let msg = refusal(&[
        file[0],
        file[1],
        &format!("state.dir={d}/st"),
        &format!("output.path={d}/st/ledger.jsonl"),
    ]);
    assert!(
        msg.contains("output.path") && msg.contains("state file"),
        "{msg}"
    );
    // Still fine: inside-the-folder relative dirs, absolute dirs elsewhere, 100 ms.
    Config::load(
        None,
        &[
            drop.clone(),
            "source.done_dir=sub/../done".into(),
            format!("source.failed_dir={d}/failed"),
            "source.rescan_interval=100ms".into(),
            "output.kind=file".into(),
            format!("output.path={d}/st/out.jsonl"),
            format!("state.dir={d}/st"),
        ],
    )
    .unwrap();
}

#[test]
fn dropping_duplicates_from_a_cluster_file_sink_needs_a_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let sets = [
        format!("source.dir={d}/drop"),
        "output.kind=file".into(),
        format!("output.path={d}/out.jsonl"),
        "cluster.url=nats://127.0.0.1:4222".into(),
        "dedup.on_duplicate=drop".into(),
    ];
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let msg = refusal(&sets);
    assert!(
        msg.contains("dedup.on_duplicate") && msg.contains("state.dir"),
        "{msg}"
    );
    let mut with_state: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    with_state.push(format!("state.dir={d}/st"));
    Config::load(None, &with_state).unwrap();
    let emit: Vec<String> = sets[..4].iter().map(|s| s.to_string()).collect();
    Config::load(None, &emit).unwrap();
}

#[test]
fn file_output_needs_path() {
    assert!(Config::load(None, &["output.kind=file".into()]).is_err());
}

#[test]
fn a_story_prior_is_loaded_with_the_config_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("prior.txt");
    let prior = crate::dedup::story_prior::count(["Madrid police", "Madrid storm"], 1);
    let mut bytes = Vec::new();
    crate::dedup::story_prior::write(&prior, &mut bytes).unwrap();
    std::fs::write(&good, bytes).unwrap();
    let c = Config::load(None, &[format!("dedup.story_prior={}", good.display())]).unwrap();
    let loaded = c.dedup.story_df_prior.expect("the prior is loaded");
    assert_eq!(loaded.docs(), 2);
    assert_eq!(loaded.counts(), prior.counts());
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "not a prior\n").unwrap();
    let msg = refusal(&[&format!("dedup.story_prior={}", bad.display())]);
    assert!(msg.contains("dedup.story_prior"), "{msg}");
    let msg = refusal(&["dedup.story_prior=/nonexistent/prior.txt"]);
    assert!(msg.contains("cannot read the story prior"), "{msg}");
}

/// The in-flight bound's default: 1024 files held 2.2-2.5 MiB less peak RSS than 2048 on the
/// 100,000-file burst at the same docs/s within the noise (docs/measurements.md, mem14); the
/// shipped pipeline.toml lists the same default.
#[test]
fn in_flight_bound_defaults_to_1024_in_code_and_in_the_shipped_file() {
    assert_eq!(PipelineConfig::default().max_in_flight, 1024);
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml");
    let shipped: toml::Table = std::fs::read_to_string(shipped).unwrap().parse().unwrap();
    assert_eq!(
        shipped["pipeline"]["max_in_flight"].as_integer(),
        Some(1024)
    );
}
