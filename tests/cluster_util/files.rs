//! The files the cluster tests drop: deterministic articles, exact copies and files too large
//! to travel inline.

use std::path::Path;

/// A deterministic article: sentences drawn from a word list by a small LCG.
pub fn article(seed: u64) -> String {
    const WORDS: &[&str] = &[
        "minister", "council", "bridge", "river", "budget", "election", "harbour", "police",
        "school", "market", "storm", "court", "hospital", "railway", "festival", "union", "mayor",
        "museum", "factory", "airport", "farmers", "teachers", "rates", "housing",
    ];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    let mut s = format!("Report number {seed}\n\n");
    for _ in 0..6 {
        let n = 8 + next() % 8;
        let words: Vec<&str> = (0..n).map(|_| WORDS[next() % WORDS.len()]).collect();
        s.push_str(&format!(
            "The {} said on day {} that {}. ",
            words[0],
            next() % 28,
            words[1..].join(" ")
        ));
    }
    s.push('\n');
    s
}

/// Drops `n` files (every tenth an exact copy of an earlier one) and returns their names.
pub fn drop_files(drop: &Path, n: usize, from: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in from..from + n {
        let seed = if i % 10 == 9 { i - 5 } else { i };
        let name = format!("f{i:05}.txt");
        let tmp = drop.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, article(seed as u64)).unwrap();
        std::fs::rename(&tmp, drop.join(&name)).unwrap();
        names.push(name);
    }
    names
}

/// Writes a file over the 512 KiB the work message carries inline (so it travels through the
/// files bucket) and returns its name.
pub fn big_file(drop: &Path, name: &str, seed: u64) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 540_000 {
        text.push_str(&article(seed * 10_000 + i));
        i += 1;
    }
    let tmp = drop.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, drop.join(name)).unwrap();
    name.to_string()
}

/// Drops copies of the first `n` (at most 9) files [`drop_files`] writes (`againI.txt`, the article of
/// `fI.txt`); returns their names.
pub fn drop_copies(drop: &Path, n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let name = format!("again{i}.txt");
            std::fs::write(drop.join(&name), article(i)).unwrap();
            name
        })
        .collect()
}
