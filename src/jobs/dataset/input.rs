//! Query files: JSONL or a JSON array of objects, in one of the shapes PTR's sources come in —
//! `{question}`, GSM8K `{question, answer}` (gold after `####`), WizardLM `{question, output}`,
//! the PTR sample `{question, output1, output2}` — named for the whole file, or (`auto`) detected
//! record by record, so one file may mix them (WizardLM queries beside GSM8K ones with their gold).
//! Each query gets a `custom_id` (the record's own, else its index) so a resumed job writes
//! every record exactly once.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The shape of a query file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    #[default]
    Auto,
    Question,
    Gsm8k,
    Wizardlm,
    PtrSample,
}

/// One query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub custom_id: String,
    /// Position in the file, for a stable output order.
    pub index: usize,
    pub question: String,
    /// GSM8K's gold number (the text after `####`).
    pub gold: Option<String>,
    /// An existing answer (WizardLM `output`, PTR `output2`).
    pub reference: Option<String>,
    /// An existing thought (PTR `output1`).
    pub thought: Option<String>,
}

fn records(content: &str) -> Result<Vec<Value>, String> {
    let trimmed = content.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed)
            .map_err(|e| format!("not a JSON array of records: {e}"));
    }
    content
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: not JSON: {e}", i + 1)))
        .collect()
}

fn detect(first: &Value) -> InputFormat {
    let has = |k: &str| first.get(k).is_some_and(|v| v.is_string());
    if has("output1") && has("output2") {
        InputFormat::PtrSample
    } else if has("output") {
        InputFormat::Wizardlm
    } else if first
        .get("answer")
        .and_then(Value::as_str)
        .is_some_and(|a| a.contains("####"))
    {
        InputFormat::Gsm8k
    } else {
        InputFormat::Question
    }
}

/// A parsed query file.
#[derive(Debug)]
pub struct Parsed {
    /// The format named, or with `auto` the first record's.
    pub format: InputFormat,
    pub queries: Vec<Query>,
    /// Records left out because their question is empty (real files have some).
    pub empty: usize,
}

/// Reads a query file; the error names the first bad record.
pub fn parse(content: &[u8], format: InputFormat) -> Result<Parsed, String> {
    let text = std::str::from_utf8(content).map_err(|e| format!("the file is not UTF-8: {e}"))?;
    let recs = records(text)?;
    let Some(first) = recs.first() else {
        return Err("the file has no records".into());
    };
    let named = format;
    let format = if named == InputFormat::Auto {
        detect(first)
    } else {
        named
    };
    let mut out = Vec::with_capacity(recs.len());
    let mut empty = 0;
    for (index, r) in recs.iter().enumerate() {
        let format = if named == InputFormat::Auto {
            detect(r)
        } else {
            named
        };
        let field = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
        let need = |k: &str| {
            field(k).ok_or_else(|| {
                format!(
                    "record {}: missing the string field `{k}` ({format:?} format)",
                    index + 1
                )
            })
        };
        let question = need("question")?;
        if question.trim().is_empty() {
            empty += 1;
            continue;
        }
        let custom_id = match r.get("custom_id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => index.to_string(),
        };
        let mut q = Query {
            custom_id,
            index,
            question,
            gold: None,
            reference: None,
            thought: None,
        };
        match format {
            InputFormat::Gsm8k => {
                let answer = need("answer")?;
                q.gold = answer
                    .rsplit_once("####")
                    .map(|(_, g)| g.trim().replace(',', ""));
                q.reference = Some(answer);
            }
            InputFormat::Wizardlm => q.reference = Some(need("output")?),
            InputFormat::PtrSample => {
                q.thought = Some(need("output1")?);
                q.reference = Some(need("output2")?);
            }
            InputFormat::Question | InputFormat::Auto => {}
        }
        out.push(q);
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = out.iter().find(|q| !seen.insert(q.custom_id.as_str())) {
        return Err(format!("`custom_id` `{}` appears twice", dup.custom_id));
    }
    Ok(Parsed {
        format,
        queries: out,
        empty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples of the real files, carried in `tests/data/`.
    fn shared(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn detects_every_shape_on_the_real_files() {
        let gsm = shared("eval/gsm8k_train.jsonl");
        let p = parse(&gsm, InputFormat::Auto).unwrap();
        let (f, qs) = (p.format, p.queries);
        assert_eq!(f, InputFormat::Gsm8k);
        assert_eq!(qs.len(), 4);
        assert_eq!(qs[0].gold.as_deref(), Some("72"));
        assert!(qs
            .iter()
            .all(|q| q.gold.as_deref().is_some_and(|g| g.parse::<f64>().is_ok())));
        let p = parse(&shared("ptr/wizardlm_20.jsonl"), InputFormat::Auto).unwrap();
        assert_eq!(
            (p.format, p.queries.len() + p.empty),
            (InputFormat::Wizardlm, 20)
        );
        assert_eq!(p.empty, 1, "the real file has an empty question");
        assert!(p.queries.iter().all(|q| !q.question.trim().is_empty()));
        let p = parse(&shared("ptr/ptr_sample_short.json"), InputFormat::Auto).unwrap();
        let (f, qs) = (p.format, p.queries);
        assert_eq!((f, qs.len() + p.empty), (InputFormat::PtrSample, 8));
        assert!(qs[0].thought.is_some() && qs[0].reference.is_some());
        assert_eq!(qs[5].custom_id, qs[5].index.to_string());
    }

    #[test]
    fn auto_reads_each_record_in_its_own_shape() {
        let mixed = b"{\"question\":\"w\",\"output\":\"ref\"}\n\
                      {\"question\":\"g\",\"answer\":\"2+2=4\\n#### 4\"}\n\
                      {\"question\":\"q\"}\n";
        let qs = parse(mixed, InputFormat::Auto).unwrap().queries;
        assert_eq!(qs[0].reference.as_deref(), Some("ref"));
        assert_eq!(
            (qs[0].gold.as_deref(), qs[1].gold.as_deref()),
            (None, Some("4"))
        );
        assert_eq!(
            (qs[2].gold.as_deref(), qs[2].reference.as_deref()),
            (None, None)
        );
        // A format named for the file applies to every record.
        let e = parse(mixed, InputFormat::Wizardlm).unwrap_err();
        assert!(e.contains("record 2") && e.contains("output"), "{e}");
    }

    #[test]
    fn plain_questions_and_custom_ids() {
        let p = parse(b"{\"question\":\"a\",\"custom_id\":\"x\"}\n\n{\"question\":\"b\",\"custom_id\":7}\n{\"question\":\" \"}\n", InputFormat::Auto).unwrap();
        let (f, qs) = (p.format, p.queries);
        assert_eq!((f, p.empty), (InputFormat::Question, 1));
        assert_eq!(
            qs.iter().map(|q| q.custom_id.as_str()).collect::<Vec<_>>(),
            ["x", "7"]
        );
    }

    #[test]
    fn names_the_bad_record() {
        assert!(
            parse(b"{\"question\":\"a\"}\n{\"q\":1}\n", InputFormat::Auto)
                .unwrap_err()
                .contains("record 2")
        );
        assert!(
            parse(b"{\"question\":\"a\"}\nnot json\n", InputFormat::Auto)
                .unwrap_err()
                .contains("line 2")
        );
        assert!(parse(b"{\"question\":\"a\"}\n", InputFormat::Gsm8k)
            .unwrap_err()
            .contains("answer"));
        assert!(parse(b"", InputFormat::Auto).is_err());
        let dup =
            b"{\"question\":\"a\",\"custom_id\":\"1\"}\n{\"question\":\"b\",\"custom_id\":\"1\"}\n";
        assert!(parse(dup, InputFormat::Auto).unwrap_err().contains("twice"));
    }
}
