//! The output folder's records: `items.jsonl`, one line per item, round and system, appended as
//! items finish (all rounds of an item in one write), and `run.json`, the settings the records
//! were made with.
//!
//! A rerun with the same `--out` reads both: items whose rounds 1..N are all present are not
//! asked again; a later line for the same item and round replaces an earlier one (an item redone
//! after a crash); a line torn by a crash is ignored. `run.json` refuses a rerun whose settings would
//! make old and new records incomparable.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TaskKind;

/// One round of one item on one system: a line of `items.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRound {
    pub system: String,
    pub task: TaskKind,
    pub item: String,
    pub round: u32,
    /// The conversation the round was generated from (OpenAI messages).
    pub messages: Value,
    pub answer: String,
    /// What the task's extraction read from the answer; `null` when unparseable.
    pub extracted: Option<String>,
    pub gold: String,
    pub correct: bool,
    pub finish_reason: Option<String>,
    pub completion_tokens: Option<u64>,
    pub elapsed_ms: u64,
}

/// Which item of which task on which system.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey {
    pub system: String,
    pub task: TaskKind,
    pub item: String,
}

impl ItemRound {
    pub fn key(&self) -> ItemKey {
        ItemKey {
            system: self.system.clone(),
            task: self.task,
            item: self.item.clone(),
        }
    }
}

/// Every record read so far, by item and round.
#[derive(Debug, Default)]
pub struct Records {
    by_item: HashMap<ItemKey, BTreeMap<u32, ItemRound>>,
}

impl Records {
    /// Reads `items.jsonl` if it exists.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let mut records = Self::default();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(records),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str::<ItemRound>(line) {
                Ok(record) => records.insert(record),
                // A crash can leave a line half-written; its item is simply redone.
                Err(e) if e.is_eof() => {}
                Err(e) => bail!("{} line {}: {e}", path.display(), i + 1),
            }
        }
        Ok(records)
    }

    pub fn insert(&mut self, record: ItemRound) {
        self.by_item
            .entry(record.key())
            .or_default()
            .insert(record.round, record);
    }

    /// Rounds 1..=`rounds` of an item, when all are present.
    pub fn complete(&self, key: &ItemKey, rounds: u32) -> Option<Vec<&ItemRound>> {
        let got = self.by_item.get(key)?;
        (1..=rounds).map(|r| got.get(&r)).collect()
    }
}

/// Appends finished items to `items.jsonl`.
pub struct Appender {
    file: File,
}

impl Appender {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        // A torn last line from a crash must not swallow the next record.
        if file.metadata()?.len() > 0 && !std::fs::read(path)?.ends_with(b"\n") {
            file.write_all(b"\n")?;
        }
        Ok(Self { file })
    }

    /// Writes all rounds of one item at once and flushes them.
    pub fn append(&mut self, rounds: &[ItemRound]) -> anyhow::Result<()> {
        let mut text = String::new();
        for r in rounds {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        self.file.write_all(text.as_bytes())?;
        self.file.flush()?;
        Ok(())
    }
}

/// Records `settings` in `run.json`, or checks them against an earlier run's.
///
/// `settings` is `{"decoding": …, "systems": {label: …}, "tasks": {task: …}}`. The decoding must
/// be equal; a system or task present in both runs must be equal; new systems and tasks may join
/// (a comparison added later), and `run.json` then holds the union.
pub fn check_settings(out: &Path, settings: &Value) -> anyhow::Result<()> {
    let path: PathBuf = out.join("run.json");
    let mut merged = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<Value>(&text)
            .with_context(|| format!("reading {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => settings.clone(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let differs = |what: &str, earlier: &Value, now: &Value| {
        anyhow::anyhow!(
            "{} holds a run with other {what} ({earlier} there, {now} now): use another --out, or the \
             same settings to resume it",
            out.display()
        )
    };
    if merged["decoding"] != settings["decoding"] {
        return Err(differs(
            "decoding settings",
            &merged["decoding"],
            &settings["decoding"],
        ));
    }
    for part in ["systems", "tasks"] {
        let now = settings[part]
            .as_object()
            .context("settings are built by `run`: this is a bug")?;
        let earlier = merged[part]
            .as_object_mut()
            .with_context(|| format!("{} has no `{part}`", path.display()))?;
        for (name, value) in now {
            match earlier.get(name) {
                Some(old) if old != value => {
                    return Err(differs(&format!("settings for `{name}`"), old, value))
                }
                Some(_) => {}
                None => {
                    earlier.insert(name.clone(), value.clone());
                }
            }
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&merged)?)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(item: &str, round: u32, answer: &str) -> ItemRound {
        ItemRound {
            system: "s".into(),
            task: TaskKind::Gsm8k,
            item: item.into(),
            round,
            messages: json!([]),
            answer: answer.into(),
            extracted: None,
            gold: "1".into(),
            correct: false,
            finish_reason: None,
            completion_tokens: None,
            elapsed_ms: 0,
        }
    }

    #[test]
    fn complete_items_later_lines_and_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.jsonl");
        let mut out = Appender::open(&path).unwrap();
        out.append(&[record("1", 1, "a"), record("1", 2, "b")])
            .unwrap();
        out.append(&[record("2", 1, "x")]).unwrap();
        out.append(&[record("1", 2, "b2")]).unwrap();
        drop(out);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"system\":")
            .unwrap();

        let records = Records::read(&path).unwrap();
        let key = |item: &str| ItemKey {
            system: "s".into(),
            task: TaskKind::Gsm8k,
            item: item.into(),
        };
        let one = records.complete(&key("1"), 2).unwrap();
        assert_eq!(one[1].answer, "b2", "a later line replaces an earlier one");
        assert!(records.complete(&key("2"), 2).is_none());
        assert!(records.complete(&key("2"), 1).is_some());

        // Appending after the torn line starts a fresh line.
        Appender::open(&path)
            .unwrap()
            .append(&[record("2", 2, "y")])
            .unwrap();
        let records = Records::read(&path).unwrap();
        assert!(records.complete(&key("2"), 2).is_some());
    }

    #[test]
    fn a_broken_line_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.jsonl");
        std::fs::write(&path, "nope\n{}\n").unwrap();
        assert!(Records::read(&path).is_err());
    }

    #[test]
    fn settings_must_match_to_resume_but_systems_may_join() {
        let dir = tempfile::tempdir().unwrap();
        let settings = |tokens: u32, systems: Value| json!({"decoding": {"max_tokens": tokens}, "systems": systems, "tasks": {"gsm8k": "sha"}});
        check_settings(dir.path(), &settings(48, json!({"a": "m1"}))).unwrap();
        check_settings(dir.path(), &settings(48, json!({"b": "m2"}))).unwrap();
        let err = check_settings(dir.path(), &settings(64, json!({"a": "m1"}))).unwrap_err();
        assert!(err.to_string().contains("other decoding settings"), "{err}");
        let err = check_settings(dir.path(), &settings(48, json!({"b": "m3"}))).unwrap_err();
        assert!(err.to_string().contains("settings for `b`"), "{err}");
        let run: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("run.json")).unwrap())
                .unwrap();
        assert_eq!(run["systems"], json!({"a": "m1", "b": "m2"}));
    }
}
