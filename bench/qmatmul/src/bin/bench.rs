//! Old (0001 tile loop of `vec_dot`) vs new (register-blocked kernel) Q8_0 QMatMul forward, timed
//! back to back and interleaved in one process; prints a markdown table of medians and ratios.
//! Usage: bench [reps] [blocks like 4x2,2x4] [ms like 1,16,197] [shapes like 0,1,2,3,4]
use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};
use candle_core::Module;
use qbench::*;
use std::time::Instant;

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}
extern "C" {
    fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
}
/// CPU seconds used by this process (all threads): unlike wall time, hardly moved by other
/// processes competing for the 2 cores (the machine is shared), as long as rayon's idle threads
/// do not spin much (use RAYON_NUM_THREADS=1 for the cleanest figure).
fn cpu_now() -> f64 {
    let mut t = Timespec { sec: 0, nsec: 0 };
    unsafe { clock_gettime(2 /* CLOCK_PROCESS_CPUTIME_ID */, &mut t) };
    t.sec as f64 + t.nsec as f64 * 1e-9
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(7);
    let blocks: Vec<(usize, usize)> = args
        .get(2)
        .map(|s| {
            s.split(',')
                .map(|b| {
                    let (r, c) = b.split_once('x').unwrap();
                    (r.parse().unwrap(), c.parse().unwrap())
                })
                .collect()
        })
        .unwrap_or(vec![(4, 2)]);
    let ms: Vec<usize> = args
        .get(3)
        .map(|s| s.split(',').map(|v| v.parse().unwrap()).collect())
        .unwrap_or(vec![2, 16, 197, 512]);
    let shapes: Vec<usize> = args
        .get(4)
        .map(|s| s.split(',').map(|v| v.parse().unwrap()).collect())
        .unwrap_or((0..SHAPES.len()).collect());
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or("default".into());
    let use_cpu = std::env::var_os("QBENCH_WALL").is_none();
    let clock = if use_cpu { "process CPU time" } else { "wall time" };
    println!("RAYON_NUM_THREADS={threads}, {clock}, median of {reps} interleaved runs\n");
    print!("| shape | m | old ms | old GFLOP/s |");
    for b in &blocks {
        print!(" {}x{} ms | GFLOP/s | old/new |", b.0, b.1);
    }
    println!(" quantize share |");
    print!("|---|---|---|---|");
    for _ in &blocks {
        print!("---|---|---|");
    }
    println!("---|");
    let mut rng = Lcg(7);
    for &si in &shapes {
        let (name, k, n) = SHAPES[si];
        let mm = q8_0_weights(&mut rng, k, n);
        for &m in &ms {
            let x = activations(&mut rng, m, k);
            let flop = 2.0 * (m * k * n) as f64;
            // Enough calls per sample to take ~20 ms at least.
            set_block(None);
            let t = Instant::now();
            forward(&mm, &x);
            let once = t.elapsed().as_secs_f64();
            let calls = ((0.02 / once).ceil() as usize).clamp(1, 1000);
            let mut cfgs: Vec<Option<(usize, usize)>> = vec![None];
            cfgs.extend(blocks.iter().map(|b| Some(*b)));
            let mut times = vec![Vec::new(); cfgs.len()];
            for rep in 0..reps + 1 {
                for ci in 0..cfgs.len() {
                    // Alternate the order from rep to rep.
                    let ci = if rep % 2 == 0 { ci } else { cfgs.len() - 1 - ci };
                    set_block(cfgs[ci]);
                    let t = Instant::now();
                    let c = cpu_now();
                    for _ in 0..calls {
                        std::hint::black_box(mm.forward(&x).unwrap());
                    }
                    if rep > 0 {
                        let v = if use_cpu { cpu_now() - c } else { t.elapsed().as_secs_f64() };
                        times[ci].push(v / calls as f64);
                    }
                }
            }
            let med: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
            // The activation quantizer (f32 -> Q8_0, one thread, as in `matmul`) alone.
            let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut ys = vec![BlockQ8_0::zeros(); m * k / 32];
            let t = Instant::now();
            let c = cpu_now();
            for _ in 0..calls {
                for r in 0..m {
                    BlockQ8_0::from_float(&xs[r * k..(r + 1) * k], &mut ys[r * k / 32..(r + 1) * k / 32]);
                }
                std::hint::black_box(&ys);
            }
            let tq = if use_cpu { cpu_now() - c } else { t.elapsed().as_secs_f64() } / calls as f64;
            print!("| {name} | {m} | {:.3} | {:.1} |", med[0] * 1e3, flop / med[0] / 1e9);
            for t in &med[1..] {
                print!(" {:.3} | {:.1} | **{:.2}×** |", t * 1e3, flop / t / 1e9, med[0] / t);
            }
            println!(" {:.0} % |", 100.0 * tq / med[med.len() - 1]);
        }
    }
    set_block(None);
}
