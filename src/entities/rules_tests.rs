use super::*;

#[test]
fn list_lookup_answers_as_the_list_scans_do() {
    let lists_of = LIST_BITS;
    let mut words: Vec<String> = Vec::new();
    for (list, _) in lists_of {
        for w in list {
            words.push(w.to_string());
            words.push(w.to_ascii_uppercase());
            words.push(format!("{w}s"));
            let mut shorter = w.chars();
            shorter.next_back();
            words.push(shorter.as_str().to_string());
        }
    }
    words.extend(
        [
            "",
            "May",
            "Ünits",
            "kilometresxxxxxxxxx",
            "12",
            "$",
            "a.m.",
            "Straße",
        ]
        .map(String::from),
    );
    for w in &words {
        let mut want = 0;
        for (list, bit) in lists_of {
            if is(list, w) {
                want |= bit;
            }
        }
        assert_eq!(lists(w), want, "{w:?}");
    }
}

fn run(text: &str) -> Vec<(String, &'static str)> {
    let words: Vec<&str> = text.split(' ').collect();
    let taken = vec![false; words.len()];
    find(&words, 0..words.len(), &taken)
        .into_iter()
        .map(|s| (words[s.start..s.end].join(" "), s.label))
        .collect()
}

#[test]
fn hyphenated_number_words_split_as_split_once_does() {
    fn plain(w: &str) -> bool {
        lists(w) & NUMBER != 0
            || w.split_once('-')
                .is_some_and(|(a, b)| lists(a) & NUMBER != 0 && lists(b) & NUMBER != 0)
    }
    for w in [
        "twenty-five",
        "Twenty-Five",
        "twenty-",
        "-five",
        "twenty-five-six",
        "five--six",
        "well-known",
        "é-five",
        "five",
        "-",
        "",
    ] {
        assert_eq!(is_number_word(w), plain(w), "{w}");
    }
    assert!(is_number_word("twenty-five") && !is_number_word("twenty-five-six"));
}

#[test]
fn start_filter_answers_as_the_plain_lookup() {
    fn plain(w: &str) -> bool {
        let Some(c) = w.chars().next() else {
            return false;
        };
        if c.is_ascii_digit() || w.contains(['$', '€', '£', '¥']) {
            return true;
        }
        if w.len() > 12 || !c.is_alphabetic() {
            return false;
        }
        STARTERS.contains(w.to_ascii_lowercase().as_bytes())
            || w.split_once('-').is_some_and(|(a, _)| is(NUMBER_WORDS, a))
    }
    let mut words: Vec<String> = Vec::new();
    for s in STARTERS.iter() {
        let s = std::str::from_utf8(s).expect("starters are words");
        let mut chars = s.chars();
        let title: String = chars
            .next()
            .into_iter()
            .flat_map(char::to_uppercase)
            .chain(chars)
            .collect();
        words.extend([s.to_string(), title, s.to_ascii_uppercase()]);
    }
    for w in [
        "",
        "the",
        "Reuters",
        "said",
        "€5",
        "US$",
        "$",
        "£3m",
        "¥",
        "twenty-five",
        "é",
        "Éte",
        "mayday",
        "Marc",
        "dec.",
        "thirteenths",
        "x",
        "7th",
        "-",
        "-five",
        "forty-two",
        "Forty-Two-Three",
        "well-known",
        "é-five",
    ] {
        words.push(w.to_string());
    }
    assert!(words.iter().filter(|w| may_start(w)).count() > STARTERS.len());
    for w in &words {
        assert_eq!(may_start(w), plain(w), "{w}");
    }
}

#[test]
fn finds_numeric_entities() {
    assert_eq!(
        run("On Thursday , 30 August 1996 , prices rose 5 % to $ 2.5 million , or 12 percent"),
        vec![
            ("Thursday".into(), "DATE"),
            ("30 August 1996".into(), "DATE"),
            ("5 %".into(), "PERCENT"),
            ("$ 2.5 million".into(), "MONEY"),
            ("12 percent".into(), "PERCENT"),
        ]
    );
    assert_eq!(
        run("five aircraft flew 300 km at 10:30 p.m. for the second time in three years"),
        vec![
            ("five".into(), "CARDINAL"),
            ("300 km".into(), "QUANTITY"),
            ("10:30 p.m.".into(), "TIME"),
            ("second".into(), "ORDINAL"),
            ("three years".into(), "DATE"),
        ]
    );
    assert_eq!(
        run("09.Jan.2026 on 14 Jan 2026 , Mar 3 but Jun"),
        vec![
            ("09.Jan.2026".into(), "DATE"),
            ("14 Jan 2026".into(), "DATE"),
            ("Mar 3".into(), "DATE"),
        ]
    );
    assert_eq!(
        run("1996-08-30 last week $5 20% 4th"),
        vec![
            ("1996-08-30".into(), "DATE"),
            ("last week".into(), "DATE"),
            ("$5".into(), "MONEY"),
            ("20%".into(), "PERCENT"),
            ("4th".into(), "ORDINAL"),
        ]
    );
}

#[test]
fn respects_names_and_ambiguous_months() {
    let words = ["May", "said", "Seven", "Sisters", "grew"];
    let taken = [false, false, true, true, false];
    assert!(find(&words, 0..5, &taken).is_empty());
}
