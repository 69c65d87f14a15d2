//! Owns the entity model file: a header with magic, version and checksum, then aligned
//! little-endian arrays that the tagger reads in place, from the bytes compiled into the binary
//! or from a memory map. Nothing is inflated or parsed at start-up beyond the header.
//!
//! Layout: a 64-byte header (magic `DLENTMAP`, version, tag and template counts, number of
//! passes, body length, xxh3-64 of the file with this field zeroed, gazetteer phrase length), then a directory of
//! `(offset, length)` pairs, one per array, then the arrays, each at a 64-byte boundary:
//! per pass `meta` (bits, scale, templates read), `trans`, `bitmap`, `rank`, `shifts`, `rows`; then the
//! cluster table (`dir`, `keys`, `vals`, `triples`) and the gazetteer table (`dir`, `keys`,
//! `vals`).

use super::features::N_FEATURES;
use super::perceptron::{CompiledStage, StageView, N_TAGS, ROW};
use super::resources::{ResourceTables, ResourcesView};
use super::table::TableView;
use std::path::Path;

const MAGIC: &[u8; 8] = b"DLENTMAP";
/// Bumped whenever the layout or the features change.
pub const VERSION: u32 = 4;
const HEADER: usize = 64;
const ALIGN: usize = 64;
/// Most passes a model may have.
pub const MAX_STAGES: usize = 4;
const PER_STAGE: usize = 6;
const RESOURCE_ARRAYS: usize = 7;

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("entity model file is truncated ({have} bytes, the header says {need})")]
    Truncated { need: u64, have: u64 },
    #[error("not a dropline entity model (bad magic)")]
    BadMagic,
    #[error("entity model version {found} is not supported (this build reads version {VERSION}); retrain it with `dropline train entities`")]
    Version { found: u32 },
    #[error("entity model was built for other features (tags {tags}, templates {templates})")]
    Features { tags: u32, templates: u32 },
    #[error("entity model checksum mismatch: the file is corrupted")]
    Checksum,
    #[error("entity model layout is invalid: {0}")]
    Layout(&'static str),
    #[error("this build reads entity models on little-endian machines only")]
    BigEndian,
    #[error("cannot read entity model {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Bytes aligned for in-place reading; `include_bytes!` wraps the shipped model in it.
#[repr(C, align(64))]
pub struct Aligned<B: ?Sized>(pub B);

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; ALIGN]);

enum Backing {
    Static(&'static [u8]),
    Mapped(memmap2::Mmap),
    /// Copied into 64-byte blocks, so arrays are aligned; the length is the file's.
    Owned(Vec<Block>, usize),
}

/// A validated model file; [`ModelFile::view`] borrows its arrays.
pub struct ModelFile {
    backing: Backing,
    stages: usize,
    max_len: usize,
    /// Byte ranges of the arrays, in directory order.
    arrays: Vec<(usize, usize)>,
}

impl std::fmt::Debug for ModelFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFile")
            .field("bytes", &self.bytes().len())
            .field("stages", &self.stages)
            .finish()
    }
}

/// The arrays of a model, borrowed from its file.
#[derive(Debug, Clone, Copy)]
pub struct ModelView<'a> {
    stages: [Option<StageView<'a>>; MAX_STAGES],
    pub resources: ResourcesView<'a>,
}

impl<'a> ModelView<'a> {
    /// Returns the passes, first to last.
    pub fn stages(&self) -> impl Iterator<Item = StageView<'a>> + '_ {
        self.stages.iter().map_while(|s| *s)
    }
}

impl ModelFile {
    /// Uses bytes that live as long as the program (the model compiled into the binary).
    pub fn from_static(bytes: &'static Aligned<[u8]>) -> Result<Self, ModelError> {
        Self::validate(Backing::Static(&bytes.0))
    }

    /// Maps a model file into memory.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let io = |source| ModelError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process; a model file rewritten
        // while mapped is outside the contract (training writes a new file, not in place).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::validate(Backing::Mapped(map))
    }

    /// Copies bytes into an aligned buffer (training, tests).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut blocks = vec![Block([0; ALIGN]); bytes.len().div_ceil(ALIGN)];
        bytemuck_blocks(&mut blocks)[..bytes.len()].copy_from_slice(bytes);
        Self::validate(Backing::Owned(blocks, bytes.len()))
    }

    fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Static(b) => b,
            Backing::Mapped(m) => m,
            Backing::Owned(blocks, len) => &blocks_bytes(blocks)[..*len],
        }
    }

    fn validate(backing: Backing) -> Result<Self, ModelError> {
        if cfg!(target_endian = "big") {
            return Err(ModelError::BigEndian);
        }
        let mut file = Self {
            backing,
            stages: 0,
            max_len: 0,
            arrays: Vec::new(),
        };
        let b = file.bytes();
        let have = b.len() as u64;
        if b.len() < HEADER {
            return Err(ModelError::Truncated {
                need: HEADER as u64,
                have,
            });
        }
        if &b[..8] != MAGIC {
            return Err(ModelError::BadMagic);
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version != VERSION {
            return Err(ModelError::Version { found: version });
        }
        let (tags, templates) = (u32_at(12), u32_at(16));
        if tags as usize != N_TAGS || templates as usize != N_FEATURES {
            return Err(ModelError::Features { tags, templates });
        }
        let stages = u32_at(20) as usize;
        let body = u64_at(24);
        let need = body.saturating_add(HEADER as u64);
        if need != have {
            return Err(if need > have {
                ModelError::Truncated { need, have }
            } else {
                ModelError::Layout("the file is longer than its header says")
            });
        }
        if checksum(b) != u64_at(32) {
            return Err(ModelError::Checksum);
        }
        if !(1..=MAX_STAGES).contains(&stages) {
            return Err(ModelError::Layout("bad number of passes"));
        }
        let max_len = u32_at(40) as usize;
        let n = stages * PER_STAGE + RESOURCE_ARRAYS;
        let dir_end = HEADER + n * 16;
        if dir_end > b.len() {
            return Err(ModelError::Layout("directory past the end"));
        }
        let mut arrays = Vec::with_capacity(n);
        for k in 0..n {
            let (off, len) = (u64_at(HEADER + 16 * k), u64_at(HEADER + 16 * k + 8));
            let end = off.saturating_add(len);
            if off as usize % ALIGN != 0 || off < dir_end as u64 || end > have {
                return Err(ModelError::Layout("an array is misplaced"));
            }
            arrays.push((off as usize, end as usize));
        }
        file.stages = stages;
        file.max_len = max_len;
        file.arrays = arrays;
        // Every cast and every lookup bound is checked once here, so views never fail later.
        let view = file.try_view()?;
        if !view.stages().all(|s| s.is_well_formed()) {
            return Err(ModelError::Layout("a pass's tables do not fit together"));
        }
        let r = view.resources;
        if !r.clusters.is_well_formed()
            || !r.gazetteer.is_well_formed()
            || r.triples.is_empty()
            || r.clusters
                .vals
                .iter()
                .any(|&v| usize::from(v) >= r.triples.len())
        {
            return Err(ModelError::Layout("a resource table is malformed"));
        }
        Ok(file)
    }

    fn try_view(&self) -> Result<ModelView<'_>, ModelError> {
        let b = self.bytes();
        let mut k = 0;
        let mut next = || {
            let (s, e) = self.arrays[k];
            k += 1;
            &b[s..e]
        };
        fn cast<T: bytemuck::Pod>(a: &[u8]) -> Result<&[T], ModelError> {
            bytemuck::try_cast_slice(a).map_err(|_| ModelError::Layout("an array has a bad size"))
        }
        let mut stages = [None; MAX_STAGES];
        for slot in stages.iter_mut().take(self.stages) {
            let meta: &[u32] = cast(next())?;
            let [bits, scale, templates] = meta else {
                return Err(ModelError::Layout("bad pass header"));
            };
            if !(8..=26).contains(bits) {
                return Err(ModelError::Layout("bad table size"));
            }
            if !(1..=N_FEATURES as u32).contains(templates) {
                return Err(ModelError::Layout("bad template count"));
            }
            *slot = Some(StageView {
                bits: *bits,
                templates: *templates,
                scale: f32::from_bits(*scale),
                trans: cast(next())?,
                bitmap: cast(next())?,
                rank: cast(next())?,
                shifts: next(),
                rows: cast::<[i8; ROW]>(next())?,
            });
        }
        let clusters = TableView {
            dir: cast(next())?,
            keys: cast(next())?,
            vals: cast(next())?,
        };
        let triples = cast::<[u16; 3]>(next())?;
        let gazetteer = TableView {
            dir: cast(next())?,
            keys: cast(next())?,
            vals: next(),
        };
        Ok(ModelView {
            stages,
            resources: ResourcesView {
                clusters,
                triples,
                gazetteer,
                max_len: self.max_len,
            },
        })
    }

    /// Returns the model's arrays.
    pub fn view(&self) -> ModelView<'_> {
        self.try_view()
            .expect("the layout was checked when the file was loaded")
    }
}

fn blocks_bytes(blocks: &[Block]) -> &[u8] {
    // SAFETY: `Block` is 64 plain bytes with no padding.
    unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast(), blocks.len() * ALIGN) }
}

fn bytemuck_blocks(blocks: &mut [Block]) -> &mut [u8] {
    // SAFETY: `Block` is 64 plain bytes with no padding; any byte pattern is valid.
    unsafe { std::slice::from_raw_parts_mut(blocks.as_mut_ptr().cast(), blocks.len() * ALIGN) }
}

/// Serialises passes and resources into the model file format.
pub fn write(stages: &[CompiledStage], res: &ResourceTables) -> Vec<u8> {
    assert!(
        (1..=MAX_STAGES).contains(&stages.len()),
        "a model has 1 to {MAX_STAGES} passes"
    );
    let mut arrays: Vec<Vec<u8>> = Vec::new();
    for s in stages {
        let meta = [s.bits, s.scale.to_bits(), s.templates];
        arrays.push(bytemuck::cast_slice(&meta).to_vec());
        arrays.push(bytemuck::cast_slice(&s.trans).to_vec());
        arrays.push(bytemuck::cast_slice(&s.bitmap).to_vec());
        arrays.push(bytemuck::cast_slice(&s.rank).to_vec());
        arrays.push(s.shifts.clone());
        arrays.push(bytemuck::cast_slice(&s.rows).to_vec());
    }
    arrays.push(bytemuck::cast_slice(&res.clusters.dir).to_vec());
    arrays.push(bytemuck::cast_slice(&res.clusters.keys).to_vec());
    arrays.push(bytemuck::cast_slice(&res.clusters.vals).to_vec());
    arrays.push(bytemuck::cast_slice(&res.triples).to_vec());
    arrays.push(bytemuck::cast_slice(&res.gazetteer.dir).to_vec());
    arrays.push(bytemuck::cast_slice(&res.gazetteer.keys).to_vec());
    arrays.push(res.gazetteer.vals.clone());
    let pad = |n: usize| n.div_ceil(ALIGN) * ALIGN;
    let mut out = vec![0u8; pad(HEADER + arrays.len() * 16)];
    for (k, a) in arrays.iter().enumerate() {
        let off = out.len() as u64;
        out[HEADER + 16 * k..HEADER + 16 * k + 8].copy_from_slice(&off.to_le_bytes());
        out[HEADER + 16 * k + 8..HEADER + 16 * k + 16]
            .copy_from_slice(&(a.len() as u64).to_le_bytes());
        out.extend_from_slice(a);
        out.resize(pad(out.len()), 0);
    }
    out[..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(N_TAGS as u32).to_le_bytes());
    out[16..20].copy_from_slice(&(N_FEATURES as u32).to_le_bytes());
    out[20..24].copy_from_slice(&(stages.len() as u32).to_le_bytes());
    let body = (out.len() - HEADER) as u64;
    out[24..32].copy_from_slice(&body.to_le_bytes());
    out[40..44].copy_from_slice(&(res.max_len as u32).to_le_bytes());
    let sum = checksum(&out);
    out[32..40].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Returns the xxh3-64 of the whole file with the checksum field read as zero.
fn checksum(b: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&b[..32]);
    h.update(&[0; 8]);
    h.update(&b[40..]);
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::features::N_FEATURES;
    use crate::entities::perceptron::{tag, Part, Trainer};

    /// A small model: one toy pass and a few resource lines.
    fn toy_file() -> (Vec<u8>, Vec<u32>, Vec<u8>) {
        let feats: Vec<u32> = (0..2u32)
            .flat_map(|tok| (0..N_FEATURES as u32).map(move |f| tok * 100 + f))
            .collect();
        let gold = vec![tag(Part::Unit, 0) as u8, 0];
        let mut tr = Trainer::new(10);
        let mut pred = Vec::new();
        for _ in 0..5 {
            tr.learn(&feats, &gold, &mut pred);
        }
        let (res, bad) = ResourceTables::parse("C\talmaty\t5\t6\t7\nG\t2\tNew York\n");
        assert_eq!(bad, 0);
        (write(&[tr.averaged().compile()], &res), feats, gold)
    }

    #[test]
    fn round_trips_and_decodes_in_place() {
        let (bytes, feats, gold) = toy_file();
        let file = ModelFile::from_bytes(&bytes).unwrap();
        let view = file.view();
        let stages: Vec<_> = view.stages().collect();
        assert_eq!(stages.len(), 1);
        let (mut scratch, mut out) = (Default::default(), Vec::new());
        stages[0].decode(&feats, &mut scratch, &mut out);
        assert_eq!(out, gold);
        assert_eq!(view.resources.sizes(), (1, 1));
        assert_eq!(
            view.resources
                .clusters(crate::entities::features::lower_hash("ALMATY")),
            [6, 7, 8]
        );
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_not_a_panic() {
        let (bytes, _, _) = toy_file();
        for cut in 0..bytes.len() {
            assert!(ModelFile::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        // Every byte of the header and directory, and a stride through the arrays.
        let dir_end = HEADER + (PER_STAGE + RESOURCE_ARRAYS) * 16;
        for at in (0..dir_end).chain((dir_end..bytes.len()).step_by(97)) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x41;
            assert!(ModelFile::from_bytes(&bad).is_err(), "flip at {at}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ModelFile::from_bytes(&longer).is_err());
    }
}
