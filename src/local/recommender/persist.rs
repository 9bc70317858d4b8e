//! The model file: a compact little-endian binary (JSON would be several times larger and slower
//! to load for millions of neighbour and history entries). Layout: magic, a JSON header (recipe,
//! metrics), the id tables, then the arrays of [`Core`], each length-prefixed. Every count and
//! offset is checked on load, so a damaged file is an error, never a panic.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use super::Recipe;
use super::model::{Core, Csr, Model};

const MAGIC: &[u8; 8] = b"RFLWMDL1";

/// Everything small; the metrics are stored as f64 bits beside it, since serde_json's default
/// float parsing may change the last bit.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    recipe: Recipe,
    metric_names: Vec<String>,
}

impl Model {
    /// Writes the model atomically: to a temporary file beside `path`, then renamed over it.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        crate::atomic_file::write_atomic_with(path, crate::atomic_file::Durability::Fsync, |w| {
            self.write_to(w)
        })
    }

    pub fn load(path: &Path) -> io::Result<Model> {
        Model::read_from(&mut BufReader::with_capacity(1 << 20, File::open(path)?))
    }

    fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(MAGIC)?;
        let metric_names = self.metrics.keys().cloned().collect();
        write_bytes(w, &serde_json::to_vec(&Header { recipe: self.core.recipe, metric_names })?)?;
        for v in self.metrics.values() {
            w.write_all(&v.to_le_bytes())?;
        }
        write_strings(w, &self.user_ids)?;
        write_strings(w, &self.item_ids)?;
        let c = &self.core;
        for csr in [&c.history, &c.item_users, &c.neighbours] {
            write_u32s(w, &csr.offsets)?;
            write_u32s(w, &csr.ids)?;
            write_f32s(w, &csr.weights)?;
        }
        write_f32s(w, &c.popularity)?;
        write_u32s(w, &c.popular)?;
        write_u32s(w, &c.active)?;
        w.flush()
    }

    fn read_from(r: &mut impl Read) -> io::Result<Model> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(invalid("not a recflow model file"));
        }
        let header: Header = serde_json::from_slice(&read_bytes(r)?)?;
        let mut metrics = std::collections::BTreeMap::new();
        for name in header.metric_names {
            let mut b = [0u8; 8];
            r.read_exact(&mut b)?;
            metrics.insert(name, f64::from_le_bytes(b));
        }
        let user_ids = read_strings(r)?;
        let item_ids = read_strings(r)?;
        let (users, items) = (user_ids.len(), item_ids.len());
        let history = read_csr(r, users, items)?;
        let item_users = read_csr(r, items, users)?;
        let neighbours = read_csr(r, items, items)?;
        let popularity = read_f32s(r)?;
        let popular = read_u32s(r)?;
        let active = read_u32s(r)?;
        if popularity.len() != items || !is_permutation(&popular, items) || !is_permutation(&active, users) {
            return Err(invalid("the model's popularity tables do not match its catalogue"));
        }
        let core =
            Core { recipe: header.recipe, history, item_users, neighbours, popularity, popular, active };
        Ok(Model::from_parts(core, user_ids, item_ids, metrics))
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

fn is_permutation(v: &[u32], n: usize) -> bool {
    let mut seen = vec![false; n];
    v.len() == n && v.iter().all(|&x| (x as usize) < n && !std::mem::replace(&mut seen[x as usize], true))
}

fn read_csr(r: &mut impl Read, rows: usize, columns: usize) -> io::Result<Csr> {
    let csr = Csr { offsets: read_u32s(r)?, ids: read_u32s(r)?, weights: read_f32s(r)? };
    let ok = csr.offsets.len() == rows + 1
        && csr.offsets.first() == Some(&0)
        && csr.offsets.windows(2).all(|w| w[0] <= w[1])
        && csr.offsets.last().is_some_and(|&l| l as usize == csr.ids.len())
        && csr.ids.len() == csr.weights.len()
        && csr.ids.iter().all(|&i| (i as usize) < columns);
    if ok { Ok(csr) } else { Err(invalid("the model's tables are inconsistent")) }
}

fn write_len(w: &mut impl Write, n: usize) -> io::Result<()> {
    w.write_all(&(n as u64).to_le_bytes())
}

fn read_len(r: &mut impl Read, unit: usize) -> io::Result<usize> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    let n = u64::from_le_bytes(b);
    // Refuse absurd lengths before allocating for them.
    if n.saturating_mul(unit as u64) > (1u64 << 40) {
        return Err(invalid("a length in the model file is too large"));
    }
    Ok(n as usize)
}

fn write_bytes(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    write_len(w, b.len())?;
    w.write_all(b)
}

fn read_bytes(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let n = read_len(r, 1)?;
    let mut b = Vec::new();
    r.take(n as u64).read_to_end(&mut b)?;
    if b.len() != n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(b)
}

fn write_strings(w: &mut impl Write, v: &[String]) -> io::Result<()> {
    write_len(w, v.len())?;
    for s in v {
        write_bytes(w, s.as_bytes())?;
    }
    Ok(())
}

fn read_strings(r: &mut impl Read) -> io::Result<Vec<String>> {
    let n = read_len(r, 16)?;
    let mut v = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        v.push(String::from_utf8(read_bytes(r)?).map_err(|_| invalid("an id in the model is not UTF-8"))?);
    }
    Ok(v)
}

fn write_u32s(w: &mut impl Write, v: &[u32]) -> io::Result<()> {
    write_words(w, v, u32::to_le_bytes)
}

fn write_f32s(w: &mut impl Write, v: &[f32]) -> io::Result<()> {
    write_words(w, v, f32::to_le_bytes)
}

/// A length, then 4-byte little-endian words, written in 256 KB slices.
fn write_words<T: Copy>(w: &mut impl Write, v: &[T], convert: fn(T) -> [u8; 4]) -> io::Result<()> {
    write_len(w, v.len())?;
    let mut buf = Vec::with_capacity(v.len().min(1 << 16) * 4);
    for chunk in v.chunks(1 << 16) {
        buf.clear();
        for &x in chunk {
            buf.extend_from_slice(&convert(x));
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

fn read_words<T>(r: &mut impl Read, convert: fn([u8; 4]) -> T) -> io::Result<Vec<T>> {
    let n = read_len(r, 4)?;
    let mut out = Vec::with_capacity(n.min(1 << 24));
    let mut buf = vec![0u8; 4 << 16];
    let mut left = n;
    while left > 0 {
        let take = left.min(1 << 16);
        r.read_exact(&mut buf[..take * 4])?;
        out.extend(buf[..take * 4].chunks_exact(4).map(|c| convert([c[0], c[1], c[2], c[3]])));
        left -= take;
    }
    Ok(out)
}

fn read_u32s(r: &mut impl Read) -> io::Result<Vec<u32>> {
    read_words(r, u32::from_le_bytes)
}

fn read_f32s(r: &mut impl Read) -> io::Result<Vec<f32>> {
    read_words(r, f32::from_le_bytes)
}
