//! The register-blocked Q8_0 kernel gives the same bits as the published `vec_dot` loop.
use qbench::*;

// 2 and 3 rows keep the `vec_dot` loop (the kernel starts at 4); 5, 6, 7, 197 leave 1–3 rows over.
const MS: &[usize] = &[1, 2, 3, 4, 5, 6, 7, 16, 197, 512];
const BLOCKS: &[(usize, usize)] = &[(4, 2), (2, 4), (4, 3), (3, 4), (4, 4), (4, 1), (1, 4), (2, 2), (1, 1)];

fn check(k: usize, n: usize, ms: &[usize], blocks: &[(usize, usize)], seed: u64) {
    let mut rng = Lcg(seed);
    let mm = q8_0_weights(&mut rng, k, n);
    for &m in ms {
        let x = activations(&mut rng, m, k);
        set_block(None);
        let old = forward(&mm, &x);
        assert_eq!(old.len(), m * n);
        for &b in blocks {
            set_block(Some(b));
            let new = forward(&mm, &x);
            let bad = old.iter().zip(&new).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            assert_eq!(bad, 0, "k={k} n={n} m={m} block={b:?}: {bad} of {} outputs differ", m * n);
        }
        // And each row alone (m = 1: the published per-row loop) gives the same bits too.
        if m > 1 {
            for row in [0, m / 2, m - 1] {
                let one = forward(&mm, &x.narrow(0, row, 1).unwrap());
                let same = old[row * n..(row + 1) * n].iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "k={k} n={n} m={m}: row {row} differs from the m=1 result");
            }
        }
        eprintln!("k={k} n={n} m={m}: {} outputs bit-identical for {} blocks", m * n, blocks.len());
    }
    set_block(None);
}

// One test (the block switch is process-wide), all shapes.
#[test]
fn q8_0_blocked_matmul_is_bit_identical() {
    for (i, &(_, k, n)) in SHAPES.iter().enumerate() {
        if n > 10_000 {
            // The vocabulary matrix: fewer blocks and rows (the largest m costs seconds per call).
            check(k, n, &[1, 2, 3, 5, 16, 197], &[(4, 2), (2, 4), (4, 4), (3, 3)], 100 + i as u64);
            check(k, n, &[512], &[(4, 2)], 200 + i as u64);
        } else {
            check(k, n, MS, BLOCKS, 100 + i as u64);
        }
    }
    // n not a multiple of the 16-column tile nor of the column block, k of one block.
    for &(k, n) in &[(576, 577), (576, 33), (32, 7), (64, 17), (1536, 250), (96, 1)] {
        check(k, n, MS, BLOCKS, k as u64 * 1000 + n as u64);
    }
}
