//! Poll schedules compared on simulated Personalize jobs (pure arithmetic on a simulated clock, no
//! sleeping): for each job duration T (Create returned → ACTIVE), how many Describe calls a
//! schedule makes until the first one at or after T, and how many seconds after ACTIVE that call
//! comes; and, since a round T flatters fixed grids, the worst such delay over durations within
//! ±5 % of T. Every schedule starts at elapsed 0 (the Create call returning) and waits before its
//! first Describe.
//!
//! `cargo bench --bench polling` prints Markdown tables.

use recflow::tasks::polling::next_poll_delay;

/// A schedule: the wait before the next poll, given the elapsed seconds and the polls so far.
type Schedule<'a> = Box<dyn Fn(f64, u32) -> f64 + 'a>;

/// (Describe calls, seconds between ACTIVE at `t` and the detecting call).
fn simulate(t: f64, schedule: &Schedule) -> (u32, f64) {
    let (mut now, mut calls) = (0.0, 0);
    while now < t {
        now += schedule(now, calls);
        calls += 1;
    }
    (calls, now - t)
}

const EARLIER: [f64; 5] = [0.92, 1.05, 0.97, 1.1, 0.95];

fn label(t: f64) -> String {
    if t < 3600.0 { format!("{} min", t / 60.0) } else { format!("{} h", t / 3600.0) }
}

fn main() {
    let durations = [300.0, 3600.0, 21600.0];
    println!("## Describe calls until ACTIVE is seen, and seconds from ACTIVE to that call\n");
    println!(
        "| T | strategy | Describe calls | detection delay (s) | worst delay, T' in [0.95 T, 1.05 T] (s) |"
    );
    println!("|---|---|---:|---:|---:|");
    for t in durations {
        let earlier: Vec<f64> = EARLIER.iter().map(|f| f * t).collect();
        let strategies: Vec<(&str, Schedule)> = vec![
            ("recflow, no earlier runs", Box::new(|now, _| next_poll_delay(now, &[]))),
            ("recflow, earlier runs T × {0.92, 1.05, 0.97, 1.1, 0.95}", {
                let earlier = earlier.clone();
                Box::new(move |now, _| next_poll_delay(now, &earlier))
            }),
            ("fixed 60 s poll", Box::new(|_, _| 60.0)),
            ("fixed 300 s wait", Box::new(|_, _| 300.0)),
            ("60 s × 1.02^n", Box::new(|_, n| 60.0 * 1.02f64.powi(n as i32))),
        ];
        for (i, (name, schedule)) in strategies.iter().enumerate() {
            let (calls, lag) = simulate(t, schedule);
            // T itself is a round number, which flatters fixed grids: also the worst delay over
            // durations near T (2001 of them).
            let worst = (0..=2000)
                .map(|k| simulate(t * (0.95 + 0.1 * k as f64 / 2000.0), schedule).1)
                .fold(0.0, f64::max);
            println!("| {} | {name} | {calls} | {lag:.1} | {worst:.1} |", label(t));
            // Only what the module promises.
            match i {
                0 => assert!(lag <= (0.05 * t).max(60.0), "{name} at {t}: {lag}"),
                1 => assert!(lag <= (0.02 * t).max(15.0) && calls <= 25, "{name} at {t}: {calls}, {lag}"),
                _ => {}
            }
        }
    }

    // The fallback: the same earlier runs, but this job takes a different time E × factor.
    println!("\n## recflow with earlier runs E × {{0.92, 1.05, 0.97, 1.1, 0.95}}, job taking E × factor\n");
    println!("| E | factor | Describe calls | detection delay (s) | bound (s) |");
    println!("|---|---:|---:|---:|---:|");
    for e in durations {
        let earlier: Vec<f64> = EARLIER.iter().map(|f| f * e).collect();
        let schedule: Schedule = Box::new(|now, _| next_poll_delay(now, &earlier));
        let lo = 0.92 * e;
        for factor in [0.05, 0.3, 0.6, 0.85, 1.0, 1.3, 2.0, 3.0] {
            let t = e * factor;
            let (calls, lag) = simulate(t, &schedule);
            // The module's bounds: before the window, inside it, after it.
            let bound = if t < lo {
                t.min(lo / 6.0).max(60.0)
            } else if t <= 1.1 * e {
                (0.02 * t).max(15.0)
            } else {
                (0.05 * t).max(60.0)
            };
            assert!(lag <= bound + 1e-6, "E {e} × {factor}: {lag} > {bound}");
            println!("| {} | {factor} | {calls} | {lag:.1} | {bound:.1} |", label(e));
        }
    }
}
