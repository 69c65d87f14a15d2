use super::*;

fn doc(format: Format, body: &str, source: &str) -> RawDoc {
    RawDoc {
        id: "x".into(),
        format,
        body: body.into(),
        source_key: source.into(),
    }
}

fn seeds() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

/// Returns the kind a seed line must be removed as, `Some("")` for lines the test leaves open.
fn expected_removal(line: &str) -> Option<&'static str> {
    let dates = [
        "09.Jan.2026",
        "08.Jan.2026",
        "07.Jan.2026",
        "06.Jan.2026",
        "05.Jan.2026",
        "04.Jan.2026",
        "03.Jan.2026",
        "02.Jan.2026",
        "14 Jan 2026",
    ];
    if line.starts_with("READ MORE:") {
        Some("teaser")
    } else if dates.contains(&line) {
        Some("date_line")
    } else if line == "47 views0 comments" {
        Some("social_counter")
    } else if line.starts_with("Photo: official website") {
        Some("credit")
    } else if line == "Based on materials from TASS" {
        Some("attribution")
    } else if line.starts_with("GSV \"Russia") {
        Some("")
    } else {
        None
    }
}

#[test]
fn seeds_lose_every_boilerplate_line_and_keep_every_article_line() {
    let config = StripConfig {
        keep_removed: true,
        ..StripConfig::default()
    };
    let stripper = Stripper::new(&config, None).unwrap();
    for (name, body) in seeds() {
        let out = stripper.strip(&doc(Format::Text, &body, "seeds"));
        let kept: Vec<&str> = out
            .text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let lines: Vec<&str> = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(out.title, lines[0], "{name}: title is the first line");
        // The "Latest news" block: every line after the article's last sentence is another headline or a date.
        let latest = lines
            .iter()
            .position(|l| l.starts_with("Latest news"))
            .unwrap_or(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let removal = if i >= latest {
                if expected_removal(line).is_some() {
                    expected_removal(line)
                } else {
                    Some("related_headline")
                }
            } else {
                expected_removal(line)
            };
            match removal {
                Some("") => {}
                Some(kind) => {
                    assert!(!kept.contains(line), "{name}: kept boilerplate {line:?}");
                    let r = out.removed.iter().find(|r| r.text == *line);
                    assert_eq!(
                        r.map(|r| r.kind.as_str()),
                        Some(kind),
                        "{name}: kind of {line:?}"
                    );
                }
                // The headline doubles as the title; the body may or may not repeat it.
                None if i == 0 && name != "003_e25e52eb3b0ac7af.txt" => {}
                None => assert!(kept.contains(line), "{name}: dropped article line {line:?}"),
            }
        }
    }
}

#[test]
fn disabled_stripping_keeps_everything() {
    let config = StripConfig {
        enabled: false,
        ..StripConfig::default()
    };
    let stripper = Stripper::new(&config, None).unwrap();
    let out = stripper.strip(&doc(Format::Text, "Title\n\nREAD MORE: x\n", "s"));
    assert_eq!(
        out,
        Stripped {
            title: "Title".into(),
            text: "Title\nREAD MORE: x".into(),
            removed: vec![]
        }
    );
    let out = stripper.strip(&doc(
        Format::Html,
        "<title>T</title><p>a</p><script>b</script>",
        "s",
    ));
    assert_eq!((out.title.as_str(), out.text.as_str()), ("T", "a"));
}

#[test]
fn removed_lines_are_only_reported_when_asked() {
    let stripper = Stripper::new(&StripConfig::default(), None).unwrap();
    let (_, body) = &seeds()[2];
    let out = stripper.strip(&doc(Format::Text, body, "s"));
    assert!(out.removed.is_empty());
    assert!(!out.text.contains("47 views"));
}

#[test]
fn recurring_lines_of_a_source_are_learned_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let config = StripConfig {
        keep_removed: true,
        ..StripConfig::default()
    };
    let page = |i: usize| {
        format!(
            "Story {i}\nSubscribe to our weekly digest today\nThe council met on day {i} and agreed on a new budget for the schools of the town, after a long debate.\nMembers said the plan would take effect next year and that more money would go to teachers.\nShare this\n"
        )
    };
    {
        let stripper = Stripper::new(&config, Some(dir.path())).unwrap();
        for i in 0..3 {
            stripper.strip(&doc(Format::Text, &page(i), "town.example"));
        }
        stripper.persist().unwrap();
    }
    assert!(dir.path().join(memory::FILE_NAME).exists());
    let stripper = Stripper::new(&config, Some(dir.path())).unwrap();
    let out = stripper.strip(&doc(Format::Text, &page(7), "town.example"));
    assert!(out.text.contains("agreed on a new budget"));
    assert!(out
        .removed
        .iter()
        .any(|r| r.text == "Subscribe to our weekly digest today"));
    let fresh = stripper.strip(&doc(Format::Text, &page(7), "other.example"));
    assert!(fresh.text.contains("agreed on a new budget"));
}

#[test]
fn the_memory_never_removes_every_line_of_a_re_posted_text() {
    // A headline-only report (no line reads as a sentence) dropped again and again: each of its
    // lines recurs, yet the text stays whole (the third copy came out empty before).
    let stripper = Stripper::new(&StripConfig::default(), None).unwrap();
    let repost = "Mill River bridge, closed since Monday, reopens to traffic\nSubscribe to our weekly digest today\n";
    let mut texts = Vec::new();
    for _ in 0..4 {
        let out = stripper.strip(&doc(Format::Text, repost, "town.example"));
        texts.push(out.text);
    }
    assert!(!texts[0].is_empty());
    assert!(texts.iter().all(|t| t == &texts[0]), "{texts:?}");
    let new = "School board, after a long meeting, names a new head of schools\nSubscribe to our weekly digest today\n";
    let out = stripper.strip(&doc(Format::Text, new, "town.example"));
    assert!(out.text.contains("names a new head"), "{}", out.text);
}

#[test]
fn damaged_memory_file_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(memory::FILE_NAME), "{not json").unwrap();
    let stripper = Stripper::new(&StripConfig::default(), Some(dir.path())).unwrap();
    stripper.persist().unwrap();
    assert!(memory::LineMemory::load(dir.path()).is_ok());
}

#[test]
fn stripper_is_shareable_between_workers() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Stripper>();
}

#[test]
fn html_pages_keep_the_article_and_take_the_metadata_title() {
    let para = "The council met on Tuesday and agreed on a new budget for the schools of the town, after a long and heated debate that lasted well into the night.";
    let html = format!(
        "<html><head><title>Budget passes | Town News</title><meta property=\"og:title\" content=\"Budget passes\"></head><body><nav><ul><li><a href=/>Home</a></li><li><a href=/news>News</a></li></ul></nav><article><h1>Budget passes</h1><p>{para}</p><p>{para}</p><p>{para}</p><p>READ MORE: Schools get new roofs</p></article><footer>Copyright 2026 Town News. All rights reserved.</footer></body></html>"
    );
    let stripper = Stripper::new(&StripConfig::default(), None).unwrap();
    let out = stripper.strip(&doc(Format::Html, &html, "town.example"));
    assert_eq!(out.title, "Budget passes");
    assert!(out.text.contains("heated debate"), "{}", out.text);
    assert!(!out.text.contains("READ MORE"), "{}", out.text);
    assert!(!out.text.contains("All rights reserved"), "{}", out.text);
}

#[test]
fn html_pages_lose_their_table_of_contents() {
    let heads = [
        "Why budgets matter",
        "How the vote went",
        "What happens next",
        "Reactions",
    ];
    let para = "The council met on Tuesday and agreed on a new budget for the schools of the town, after a long debate that lasted well into the night.";
    let outline: String = heads.iter().map(|h| format!("<li>{h}</li>")).collect();
    let body: String = heads
        .iter()
        .map(|h| format!("<h2>{h}</h2><p>{para}</p><p>{para}</p>"))
        .collect();
    let html = format!(
        "<html><head><title>Budget passes</title></head><body><article><h1>Budget passes</h1>\
         <p>{para}</p><ol class=toc>{outline}</ol>{body}</article></body></html>"
    );
    let stripper = Stripper::new(&StripConfig::default(), None).unwrap();
    let out = stripper.strip(&doc(Format::Html, &html, "town.example"));
    for h in heads {
        assert_eq!(out.text.matches(h).count(), 1, "{h}: {}", out.text);
    }
    assert!(out.text.contains("new budget"), "{}", out.text);
}

#[test]
fn the_edge_pruner_drops_the_teaser_lines_at_the_edges_of_the_article() {
    // The extractor keeps a section kicker above the article and a link to more stories below
    // it; the block model rejects both, and the edge pruner drops them.
    let para = "The council met on Tuesday and agreed on a new budget for the schools of the town, after a long and heated debate that lasted well into the night.";
    let html = format!(
        "<html><head><title>Budget passes</title></head><body><article><p class=kicker>\
         <a href=/politics>Politics</a></p><h1>Budget passes</h1><p>{para}</p><p>{para}</p>\
         <p>{para}</p><p class=related><a href=/more>More stories from Town News</a></p>\
         </article></body></html>"
    );
    let stripper = Stripper::new(&StripConfig::default(), None).unwrap();
    let teasers = ["Politics", "More stories from Town News"];
    let (unpruned, _, kept) = stripper.strip_html_readability(&html, false);
    assert_eq!(kept.len(), 5, "{}", unpruned.text);
    for t in teasers {
        assert!(unpruned.text.lines().any(|l| l == t), "{}", unpruned.text);
    }
    let (pruned, _, kept) = stripper.strip_html_readability(&html, true);
    let lines: Vec<&str> = pruned.text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines, [para; 3], "{}", pruned.text);
    assert_eq!(kept.len(), 3);
    // The stage prunes them too: the pruner is on in the HTML path.
    let out = stripper.strip(&doc(Format::Html, &html, "town.example"));
    let lines: Vec<&str> = out.text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines, [para; 3], "{}", out.text);
}

#[test]
fn the_tail_trim_drops_a_promotion_after_the_story_container() {
    // The extractor keeps a promotion in its own block after the story's; the story's element
    // holds more than 0.7 of the output's words and the promotion is outside it.
    let para = "The council met on Tuesday and agreed on a new budget for the schools of the town, after a long and heated debate that lasted well into the night.";
    let promo = "Planning an event of your own? Our team of planners has helped more than a thousand towns, clubs and schools, and we would be glad to help you too.";
    let html = format!(
        "<html><head><title>Budget passes</title></head><body><main><div class=content>\
         <div class=story><h1>Budget passes</h1><p>{para}</p><p>{para}</p><p>{para}</p></div>\
         <div class=promo><p>{promo}</p></div></div></main></body></html>"
    );
    let lines = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut stripper = Stripper::new(&StripConfig::default(), None).unwrap();
    let out = stripper.strip(&doc(Format::Html, &html, "town.example"));
    assert_eq!(lines(&out.text), [para; 3], "{}", out.text);
    stripper.set_tail_share(0.0);
    let out = stripper.strip(&doc(Format::Html, &html, "town.example"));
    assert_eq!(lines(&out.text), [para, para, para, promo], "{}", out.text);
}
