use super::*;
use std::ffi::OsStr;

#[test]
fn non_utf8_names_stay_apart() {
    let a = Path::new(OsStr::from_bytes(b"d/caf\xe9.txt"));
    let b = Path::new(OsStr::from_bytes(b"d/caf\xe8.txt"));
    let (pa, ba) = display_path(a);
    let (pb, bb) = display_path(b);
    assert_eq!(pa, "d/caf\\xE9.txt");
    assert_ne!(pa, pb);
    assert_eq!(ba.as_deref(), Some("ZC9jYWbpLnR4dA=="));
    assert_ne!(ba, bb);
    assert_eq!(
        display_path(Path::new("d/café.txt")),
        ("d/café.txt".into(), None)
    );
}

#[test]
fn fingerprint_sees_a_same_size_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.txt");
    std::fs::write(&p, "first version").unwrap();
    let meta = std::fs::metadata(&p).unwrap();
    let one = probe(&p, &meta).unwrap();
    std::fs::write(&p, "other version").unwrap();
    let two = probe(&p, &std::fs::metadata(&p).unwrap()).unwrap();
    assert_ne!(one.fp, two.fp);
    assert_ne!(one.fp, 0);
    assert_eq!(one.inflated_hint, None);
}

#[test]
fn the_fingerprint_of_read_bytes_equals_the_probed_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.txt");
    // Sizes around the edges: empty, inside one edge, overlapping edges, disjoint edges.
    for size in [0usize, 1, 4095, 4096, 4097, 8191, 8192, 8193, 50_000] {
        let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&p, &bytes).unwrap();
        let probed = probe(&p, &std::fs::metadata(&p).unwrap()).unwrap();
        assert_eq!(probed.fp, fingerprint_bytes(&bytes), "size {size}");
    }
}

#[test]
fn discovery_probes_only_gzip_names_and_colliding_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (txt, gz) = (dir.path().join("a.txt"), dir.path().join("b.TXT.GZ"));
    std::fs::write(&txt, "text").unwrap();
    std::fs::write(&gz, "not really gzip").unwrap();
    let mut cache = KeyCache::default();
    let meta = std::fs::symlink_metadata(&txt).unwrap();
    let (k, _) = cache.key(&txt, &meta, |_| false);
    assert_eq!(k.fp, 0, "a new plain file is not read at discovery");
    let (k, _) = cache.key(&txt, &meta, |_| true);
    assert_eq!(
        k.fp,
        fingerprint_bytes(b"text"),
        "a colliding key is probed"
    );
    let (k, _) = cache.key(&txt, &meta, |_| false);
    assert_ne!(k.fp, 0, "and its fingerprint is kept");
    let meta = std::fs::symlink_metadata(&gz).unwrap();
    let (k, _) = cache.key(&gz, &meta, |_| false);
    assert_eq!(k.fp, fingerprint_bytes(b"not really gzip"));
}

/// A sweep keeps the fingerprints looked up since the one before and drops the others, also
/// after sweeps in a row (the mark an entry keeps is the parity of its sweep period).
#[test]
fn a_fingerprint_not_looked_up_between_two_sweeps_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    std::fs::write(&a, "first").unwrap();
    std::fs::write(&b, "second").unwrap();
    let (meta_a, meta_b) = (
        std::fs::symlink_metadata(&a).unwrap(),
        std::fs::symlink_metadata(&b).unwrap(),
    );
    let mut cache = KeyCache::default();
    let cached = |cache: &mut KeyCache, p: &Path, m: &Metadata| cache.key(p, m, |_| false).0.fp;
    assert_eq!(
        cache.key(&a, &meta_a, |_| true).0.fp,
        fingerprint_bytes(b"first")
    );
    assert_eq!(
        cache.key(&b, &meta_b, |_| true).0.fp,
        fingerprint_bytes(b"second")
    );
    cache.sweep();
    assert_eq!(cached(&mut cache, &a, &meta_a), fingerprint_bytes(b"first"));
    cache.sweep();
    assert_eq!(cached(&mut cache, &b, &meta_b), 0, "not looked up: dropped");
    assert_eq!(cached(&mut cache, &a, &meta_a), fingerprint_bytes(b"first"));
    cache.sweep();
    cache.sweep();
    assert_eq!(cached(&mut cache, &a, &meta_a), 0);
}

#[test]
fn gzip_trailer_gives_the_inflated_hint() {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&vec![b'a'; 100_000]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.gz");
    std::fs::write(&p, e.finish().unwrap()).unwrap();
    let got = probe(&p, &std::fs::metadata(&p).unwrap()).unwrap();
    assert_eq!(got.inflated_hint, Some(100_000));
}

#[test]
fn symlink_out_of_root_is_refused_on_the_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("drop");
    std::fs::create_dir(&root).unwrap();
    let root = std::fs::canonicalize(&root).unwrap();
    std::fs::write(dir.path().join("secret"), "s").unwrap();
    std::fs::write(root.join("inside"), "i").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("out.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("inside"), root.join("in.txt")).unwrap();
    assert!(matches!(
        open_checked(&root.join("out.txt"), Some(&root)),
        Err(ReadError::SymlinkOutside(_))
    ));
    assert!(open_checked(&root.join("in.txt"), Some(&root)).is_ok());
    assert!(open_checked(&root.join("out.txt"), None).is_ok());
}

#[test]
fn sparse_file_is_refused_without_reading() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sparse.txt");
    let f = File::create(&p).unwrap();
    f.set_len(1 << 40).unwrap();
    let o = open_checked(&p, None).unwrap();
    let got = refuse_holes(&o.file, o.meta.len());
    // Filesystems without SEEK_HOLE report no hole; tmpfs and ext4 have it.
    if let Err(e) = got {
        assert!(matches!(e, ReadError::Sparse { data: 0, .. }), "{e}");
    }
}

#[test]
fn bounded_read_stops_past_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.txt");
    std::fs::write(&p, vec![b'x'; 3 * CHUNK + 5]).unwrap();
    let mut f = File::open(&p).unwrap();
    assert_eq!(read_bounded(&mut f, 10).unwrap().len(), 11);
    let mut f = File::open(&p).unwrap();
    assert_eq!(read_bounded(&mut f, 1 << 30).unwrap().len(), 3 * CHUNK + 5);
}
