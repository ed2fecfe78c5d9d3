//! Property tests of the spool reader: logs built from good frames, torn
//! frames (a prefix of a real frame, as a failed or interrupted write
//! leaves), frames with a flipped byte, and random garbage, in any order.
//! The reader must never panic or fail, must return every intact frame in
//! order (and nothing else), and must do so in time proportional to the
//! file, whatever the damage.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use simtrack::record::{Event, Record};
use simtrack::spool::{RunDir, SpoolReader, SpoolWriter};

/// One piece of a log.
#[derive(Debug, Clone)]
enum Piece {
    /// An intact frame holding an event with a message of this length.
    Good(usize),
    /// The first `cut` bytes (modulo the frame's length) of a frame.
    Torn(usize, usize),
    /// A frame with the byte at `at` (modulo its length) XORed with `mask`.
    Flipped(usize, usize, u8),
    /// Random bytes.
    Garbage(Vec<u8>),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => (0usize..3000).prop_map(Piece::Good),
        1 => (0usize..3000, any::<usize>()).prop_map(|(n, c)| Piece::Torn(n, c)),
        1 => (0usize..3000, any::<usize>(), 1u8..=255).prop_map(|(n, a, m)| Piece::Flipped(n, a, m)),
        1 => proptest::collection::vec(any::<u8>(), 1..600).prop_map(Piece::Garbage),
    ]
}

fn record(tag: usize, len: usize) -> Record {
    let mut message = format!("{tag}:");
    while message.len() < len {
        message.push((b'a' + (message.len() % 26) as u8) as char);
    }
    Record::Events(vec![Event {
        message,
        timestamp: tag as f64,
        level: None,
    }])
}

/// The bytes of each record as the writer frames it (one log for all).
fn frames(dir: &tempfile::TempDir, records: &[Record]) -> Vec<Vec<u8>> {
    let run = RunDir::new(dir.path().join("frames"));
    let _ = std::fs::remove_dir_all(&run.root);
    let mut w = SpoolWriter::create(&run).expect("writer");
    for r in records {
        w.append(r).expect("append");
    }
    drop(w);
    let bytes = std::fs::read(run.log()).expect("read frames");
    let entries = SpoolReader::open(&run, 0, 0)
        .expect("open")
        .read_all()
        .expect("read");
    assert_eq!(entries.len(), records.len());
    entries
        .iter()
        .map(|e| bytes[e.offset as usize..e.end as usize].to_vec())
        .collect()
}

fn frame(dir: &tempfile::TempDir, record: &Record) -> Vec<u8> {
    frames(dir, std::slice::from_ref(record)).remove(0)
}

/// Builds the log; returns its bytes and the records a reader must return.
fn build(dir: &tempfile::TempDir, pieces: &[Piece]) -> (Vec<u8>, Vec<Record>) {
    let records: Vec<Record> = pieces
        .iter()
        .enumerate()
        .map(|(tag, p)| match p {
            Piece::Good(n) | Piece::Torn(n, _) | Piece::Flipped(n, _, _) => record(tag, *n),
            Piece::Garbage(_) => record(tag, 0),
        })
        .collect();
    let framed = frames(dir, &records);
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for ((p, r), f) in pieces.iter().zip(records).zip(framed) {
        match p {
            Piece::Good(_) => {
                bytes.extend(f);
                expected.push(r);
            }
            Piece::Torn(_, cut) => bytes.extend_from_slice(&f[..cut % f.len()]),
            Piece::Flipped(_, at, mask) => {
                let mut f = f;
                let i = at % f.len();
                f[i] ^= mask;
                bytes.extend(f);
            }
            Piece::Garbage(g) => bytes.extend_from_slice(g),
        }
    }
    (bytes, expected)
}

fn read(dir: &tempfile::TempDir, bytes: &[u8]) -> (Vec<Record>, Duration) {
    let run = RunDir::new(dir.path().join("log"));
    std::fs::create_dir_all(&run.root).expect("dir");
    std::fs::write(run.log(), bytes).expect("write log");
    let t0 = Instant::now();
    let got = SpoolReader::open(&run, 0, 0)
        .expect("open")
        .read_all()
        .expect("read_all never fails on damage");
    (got.into_iter().map(|e| e.record).collect(), t0.elapsed())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_intact_frame_is_recovered_in_order(pieces in proptest::collection::vec(piece(), 0..40)) {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, expected) = build(&dir, &pieces);
        let (got, took) = read(&dir, &bytes);
        prop_assert_eq!(got, expected);
        prop_assert!(took < Duration::from_secs(2), "{} bytes took {:?}", bytes.len(), took);
    }

    #[test]
    fn garbage_never_panics_and_yields_nothing(bytes in proptest::collection::vec(any::<u8>(), 0..20_000)) {
        let dir = tempfile::tempdir().unwrap();
        let (got, took) = read(&dir, &bytes);
        prop_assert!(got.is_empty());
        prop_assert!(took < Duration::from_secs(2));
    }
}

/// The worst case for a scanning reader: a megabyte of nothing but frame
/// markers (every offset is a candidate) with one good frame at the end.
#[test]
fn a_megabyte_of_false_frame_markers_is_scanned_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    while bytes.len() < 1 << 20 {
        bytes.extend_from_slice(&[0xC1, b'S', b'T', 0x01]);
    }
    let good = record(7, 100);
    bytes.extend(frame(&dir, &good));
    let (got, took) = read(&dir, &bytes);
    assert_eq!(got, [good]);
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
