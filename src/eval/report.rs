//! The per-round tables of a run and their renderings: Markdown (`report.md`), plain text (the
//! terminal) and JSON (`summary.json`).
//!
//! One table per task and system. Every row is computed on the items that have all rounds, so
//! rounds are paired: round r's flips are against round r−1, its delta and exact McNemar p-value
//! against round 1. In a comparison, each later system's rounds are also set against the first
//! system's round 1 on the items both completed (the "PTR model vs the untrained model's first
//! answer" reading of DESIGN.md §1).

use serde::{Deserialize, Serialize};

use super::stats::{flips, mcnemar_exact, wilson, Flips};
use super::{EvalSpec, RoundsMode, TaskKind};

/// The scores of one item's rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemOutcome {
    pub item: String,
    /// Per round, from round 1.
    pub correct: Vec<bool>,
    /// Per round: whether an answer could be extracted.
    pub parsed: Vec<bool>,
}

/// A whole run's results.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub rounds: u32,
    pub systems: Vec<String>,
    pub tables: Vec<TaskTable>,
    /// Items that failed in this run; a rerun with the same output folder retries them.
    pub failed_items: usize,
}

/// One task on one system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskTable {
    pub task: TaskKind,
    pub system: String,
    /// Items with every round: the denominator of each row.
    pub items: usize,
    /// Items asked for.
    pub planned: usize,
    pub rows: Vec<RoundRow>,
}

/// One round of a [`TaskTable`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundRow {
    pub round: u32,
    pub correct: usize,
    pub accuracy: f64,
    /// 95 % Wilson interval of the accuracy.
    pub ci95: Option<(f64, f64)>,
    /// Accuracy minus round 1's.
    pub delta_vs_round1: f64,
    /// Flips from the previous round; `None` in round 1.
    pub flips_from_previous: Option<Flips>,
    /// Exact McNemar p-value of this round against round 1; `None` in round 1.
    pub p_vs_round1: Option<f64>,
    /// Answers from which nothing could be extracted (scored wrong).
    pub unparsed: usize,
    /// Against the first system's round 1, in a comparison.
    pub vs_baseline: Option<VsBaseline>,
}

/// A round set against the baseline system's round 1 on the items both completed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VsBaseline {
    pub system: String,
    pub items: usize,
    pub delta: f64,
    pub p: f64,
}

/// The table of one task on one system; `baseline` is the first system's outcomes on the same
/// task, when this system is compared with it.
pub fn table(
    task: TaskKind,
    system: &str,
    planned: usize,
    outcomes: &[ItemOutcome],
    baseline: Option<(&str, &[ItemOutcome])>,
) -> TaskTable {
    let rounds = outcomes.first().map_or(0, |o| o.correct.len());
    let column = |r: usize| -> Vec<bool> { outcomes.iter().map(|o| o.correct[r]).collect() };
    let n = outcomes.len();
    let accuracy = |c: &[bool]| c.iter().filter(|&&x| x).count() as f64 / n.max(1) as f64;
    let first = column(0);
    let rows = (0..rounds)
        .map(|r| {
            let this = column(r);
            let correct = this.iter().filter(|&&x| x).count();
            RoundRow {
                round: r as u32 + 1,
                correct,
                accuracy: accuracy(&this),
                ci95: wilson(correct, n),
                delta_vs_round1: accuracy(&this) - accuracy(&first),
                flips_from_previous: (r > 0).then(|| flips(&column(r - 1), &this)),
                p_vs_round1: (r > 0).then(|| mcnemar_exact(flips(&first, &this))),
                unparsed: outcomes.iter().filter(|o| !o.parsed[r]).count(),
                vs_baseline: baseline.map(|(name, base)| vs_baseline(name, base, outcomes, r)),
            }
        })
        .collect();
    TaskTable {
        task,
        system: system.to_string(),
        items: n,
        planned,
        rows,
    }
}

fn vs_baseline(
    name: &str,
    base: &[ItemOutcome],
    outcomes: &[ItemOutcome],
    round: usize,
) -> VsBaseline {
    let (b, c): (Vec<bool>, Vec<bool>) = base
        .iter()
        .filter_map(|b| {
            outcomes
                .iter()
                .find(|o| o.item == b.item)
                .map(|o| (b.correct[0], o.correct[round]))
        })
        .unzip();
    let rate = |x: &[bool]| x.iter().filter(|&&v| v).count() as f64 / x.len().max(1) as f64;
    VsBaseline {
        system: name.to_string(),
        items: b.len(),
        delta: rate(&c) - rate(&b),
        p: mcnemar_exact(flips(&b, &c)),
    }
}

/// A table as rows of cells, header first.
fn cells(table: &TaskTable) -> Vec<Vec<String>> {
    let mut header: Vec<String> = [
        "round",
        "accuracy",
        "95 % CI",
        "Δ vs r1",
        "right→wrong",
        "wrong→right",
        "p vs r1",
        "unparsed",
    ]
    .map(String::from)
    .to_vec();
    let compared = table.rows.first().and_then(|r| r.vs_baseline.as_ref());
    if let Some(b) = compared {
        header.push(format!("Δ vs {} r1", b.system));
        header.push(format!("p vs {} r1", b.system));
    }
    let mut grid = vec![header];
    for row in &table.rows {
        let dash = || "—".to_string();
        let mut line = vec![
            row.round.to_string(),
            format!(
                "{} ({}/{})",
                percent(row.accuracy),
                row.correct,
                table.items
            ),
            row.ci95.map_or_else(dash, |(lo, hi)| {
                format!("{:.1}–{:.1} %", lo * 100.0, hi * 100.0)
            }),
            if row.round == 1 {
                dash()
            } else {
                points(row.delta_vs_round1)
            },
            row.flips_from_previous
                .map_or_else(dash, |f| f.right_to_wrong.to_string()),
            row.flips_from_previous
                .map_or_else(dash, |f| f.wrong_to_right.to_string()),
            row.p_vs_round1.map_or_else(dash, p_value),
            row.unparsed.to_string(),
        ];
        if let Some(b) = &row.vs_baseline {
            line.push(points(b.delta));
            line.push(p_value(b.p));
        }
        grid.push(line);
    }
    grid
}

fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn points(x: f64) -> String {
    format!("{:+.1} pp", x * 100.0)
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

fn heading(table: &TaskTable) -> String {
    let mut h = format!("{} — {} ({} items", table.task, table.system, table.items);
    if table.items < table.planned {
        h.push_str(&format!(" of {}", table.planned));
    }
    h.push(')');
    h
}

impl EvalReport {
    /// The tables as aligned plain text, for the terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for table in &self.tables {
            let grid = cells(table);
            let widths: Vec<usize> = (0..grid[0].len())
                .map(|c| {
                    grid.iter()
                        .map(|row| row[c].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            out.push_str(&format!("\n{}\n", heading(table)));
            for row in &grid {
                let padded: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
                    .collect();
                out.push_str(padded.join("  ").trim_end());
                out.push('\n');
            }
        }
        if self.failed_items > 0 {
            out.push_str(&format!(
                "\n{} items failed (see errors.jsonl); rerun with the same --out to retry them.\n",
                self.failed_items
            ));
        }
        out
    }

    /// `report.md`: the settings, one table per task and system, the chart and what the columns
    /// mean.
    pub fn markdown(&self, spec: &EvalSpec) -> String {
        let mut md = String::from("# Refinement evaluation\n\n");
        md.push_str(&format!(
            "{} rounds per item, `max_tokens` {} per round, temperature {}{}, instruction between rounds: \
             \"{}\".\n\n",
            spec.decoding.rounds,
            spec.decoding.max_tokens,
            spec.decoding.temperature,
            if spec.decoding.temperature == 0.0 { " (greedy)" } else { "" },
            spec.decoding.instruction
        ));
        for s in &spec.systems {
            let mode = match s.rounds_mode {
                RoundsMode::Client => "rounds built by the client",
                RoundsMode::Server => "rounds run by the server (`refinement` extension)",
            };
            md.push_str(&format!(
                "- **{}**: model `{}` at {}, {mode}\n",
                s.label, s.model, s.endpoint
            ));
        }
        for t in &spec.tasks {
            md.push_str(&format!(
                "- task `{}`: `{}`; its question ends `{}`\n",
                t.kind,
                t.data.display(),
                t.kind.answer_instruction()
            ));
        }
        for table in &self.tables {
            md.push_str(&format!("\n## {}\n\n", heading(table)));
            let grid = cells(table);
            for (i, row) in grid.iter().enumerate() {
                md.push_str(&format!("| {} |\n", row.join(" | ")));
                if i == 0 {
                    md.push_str(&format!("|{}\n", "---|".repeat(row.len())));
                }
            }
        }
        md.push_str(
            "\n![accuracy by round](accuracy.svg)\n\n\
             95 % CI: Wilson score interval. Δ: percentage points against round 1 of the same system. \
             right→wrong / wrong→right: items whose score flipped since the previous round. p vs r1: \
             exact two-sided McNemar (binomial) test of the round against round 1 on the same items. \
             Unparsed answers count as wrong. Every item and round: `items.jsonl`.\n",
        );
        if self.failed_items > 0 {
            md.push_str(&format!(
                "\n{} items failed (see `errors.jsonl`) and are not counted.\n",
                self.failed_items
            ));
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(item: &str, correct: &[bool]) -> ItemOutcome {
        ItemOutcome {
            item: item.into(),
            correct: correct.to_vec(),
            parsed: vec![true; correct.len()],
        }
    }

    #[test]
    fn rows_pair_rounds_and_compare_with_the_baseline() {
        let base = [
            outcome("1", &[true, false]),
            outcome("2", &[false, false]),
            outcome("3", &[false, true]),
        ];
        let mut tuned = vec![outcome("1", &[true, true]), outcome("2", &[false, true])];
        tuned[1].parsed[0] = false;
        let t = table(TaskKind::Gsm8k, "tuned", 3, &tuned, Some(("base", &base)));
        assert_eq!((t.items, t.planned), (2, 3));
        let r2 = &t.rows[1];
        assert_eq!(r2.correct, 2);
        assert!((r2.delta_vs_round1 - 0.5).abs() < 1e-12);
        assert_eq!(
            r2.flips_from_previous,
            Some(Flips {
                right_to_wrong: 0,
                wrong_to_right: 1
            })
        );
        assert_eq!(r2.p_vs_round1, Some(1.0));
        assert_eq!(t.rows[0].unparsed, 1);
        let vs = r2.vs_baseline.as_ref().unwrap();
        // On items 1 and 2: base round 1 got 1 of 2, tuned round 2 gets 2 of 2.
        assert_eq!(vs.items, 2);
        assert!((vs.delta - 0.5).abs() < 1e-12);
        let text = EvalReport {
            rounds: 2,
            systems: vec![],
            tables: vec![t],
            failed_items: 0,
        }
        .text();
        assert!(text.contains("gsm8k — tuned (2 items of 3)"), "{text}");
        assert!(text.contains("Δ vs base r1"), "{text}");
        assert!(text.contains("100.0 % (2/2)"), "{text}");
    }
}
