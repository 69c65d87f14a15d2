//! How the shipped binary is linked (build.rs): on Linux a fixed-address executable, so the
//! loader applies no relocations to it and its pointer tables stay clean file pages.

#[cfg(target_os = "linux")]
#[test]
fn the_binary_is_a_fixed_address_executable() {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_dropline")).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    // e_type at offset 16 (little-endian on the targets dropline ships for): 2 = ET_EXEC,
    // 3 = ET_DYN (a position-independent executable, whose absolute pointers the loader patches).
    let e_type = u16::from_le_bytes([bytes[16], bytes[17]]);
    assert_eq!(e_type, 2, "expected ET_EXEC (non-PIE), got e_type {e_type}");
}
