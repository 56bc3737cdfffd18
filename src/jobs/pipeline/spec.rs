//! What a pipeline job is asked to do (`POST /admin/v1/pipelines`, or `ptr-server ptr-model`):
//! the base model, where the training records come from, the fine-tuned variants, and the
//! evaluation that compares each with the base model. Every stage's request is built here, so the
//! checks made when the pipeline is accepted are the ones its stages will pass.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::jobs::dataset::DatasetSpec;
use crate::jobs::eval::{CompareSystem, EvalJobSpec};
use crate::jobs::finetune::FineTuneSpec;
use crate::jobs::SpecError;

/// `POST /pipelines`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The model to tune: a model this server knows.
    pub model: String,
    /// File ids of PTR-format records (`{question, output1, output2}`, like the authors'
    /// sample), taken as they are (a dataset job with `import`).
    #[serde(default)]
    pub import_files: Vec<String>,
    /// A dataset job generating records from queries: its request body (without `import`).
    pub dataset: Option<DatasetSpec>,
    /// Settings of every fine-tuning job: OpenAI's `hyperparameters`, `method`, `seed` and PTR's
    /// `ptr` (`model`, `training_file` and `suffix` are the pipeline's).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fine_tuning: Map<String, Value>,
    /// The fine-tuned models to make from the same records [default: one, `ptr`, with the
    /// thought mask].
    #[serde(default = "default_variants")]
    pub variants: Vec<Variant>,
    /// How the base model and every variant are compared, on the same items.
    pub eval: PipelineEval,
    pub metadata: Option<Value>,
}

/// One fine-tuned model of a pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// The variant's name: the tuned model's suffix (`ft:<base>:<name>:<id>`).
    pub name: String,
    /// Loss weight of the earlier thoughts [default: `fine_tuning.ptr.thought_weight`, 0: the
    /// thought mask]. 1 is the paper's ablation without the mask.
    pub thought_weight: Option<f32>,
    /// Train on the final answers alone (plain SFT: each record's thoughts are dropped).
    #[serde(default)]
    pub answers_only: bool,
}

crate::jobs::eval::with_eval_settings! {
    /// The evaluation stage: the eval job's settings, for the base model and every variant.
    pub struct PipelineEval {}
}

fn default_variants() -> Vec<Variant> {
    vec![Variant {
        name: "ptr".into(),
        thought_weight: None,
        answers_only: false,
    }]
}

/// `e` with its field under `prefix`.
fn at(prefix: &str, e: SpecError) -> SpecError {
    SpecError::new(format!("{prefix}.{}", e.param), e.message)
}

impl PipelineSpec {
    /// Checks what needs no lookup, including every stage's request as it will be made.
    pub fn check(&self) -> Result<(), SpecError> {
        let e = |p: &str, m: &str| Err(SpecError::new(p, m));
        if self.model.trim().is_empty() {
            return e("model", "`model` must name the model to tune");
        }
        if self.import_files.is_empty() && self.dataset.is_none() {
            return e(
                "dataset",
                "give `dataset` (queries the weak and strong models turn into records), \
                 `import_files` (files of PTR records), or both",
            );
        }
        if let Some(d) = &self.dataset {
            if d.import {
                return e(
                    "dataset.import",
                    "name files of PTR records in `import_files` instead",
                );
            }
            d.check().map_err(|x| at("dataset", x))?;
        }
        if self.fine_tuning.contains_key("suffix") {
            return e(
                "fine_tuning.suffix",
                "each variant's `name` is its model's suffix",
            );
        }
        if self.variants.is_empty() {
            return e("variants", "`variants` needs at least one {name}");
        }
        for (i, v) in self.variants.iter().enumerate() {
            if self.variants[..i].iter().any(|w| w.name == v.name) {
                return Err(SpecError::new(
                    format!("variants[{i}].name"),
                    format!("two variants are named `{}`", v.name),
                ));
            }
            self.fine_tune_spec(v, "file-pipeline")
                .and_then(|s| s.check().map_err(|x| at("fine_tuning", x)))
                .map_err(|e| {
                    let param = match e.param.as_str() {
                        "fine_tuning.suffix" => format!("variants[{i}].name"),
                        "fine_tuning.ptr.thought_weight" if v.thought_weight.is_some() => {
                            format!("variants[{i}].thought_weight")
                        }
                        _ => e.param,
                    };
                    SpecError::new(param, e.message)
                })?;
        }
        let placeholders: Vec<String> = self.variants.iter().map(|v| v.name.clone()).collect();
        self.eval_spec(&placeholders)
            .check()
            .map_err(|x| at("eval", x))?;
        Ok(())
    }

    /// The fine-tuning job of `variant` on `training_file`. The tuned model is loaded when it is
    /// made: the evaluation asks it.
    pub fn fine_tune_spec(
        &self,
        variant: &Variant,
        training_file: &str,
    ) -> Result<FineTuneSpec, SpecError> {
        let mut body = self.fine_tuning.clone();
        body.insert("model".into(), json!(self.model));
        body.insert("training_file".into(), json!(training_file));
        body.insert("suffix".into(), json!(variant.name));
        let ptr = body.entry("ptr").or_insert_with(|| json!({}));
        let Some(ptr) = ptr.as_object_mut() else {
            return Err(SpecError::new("fine_tuning.ptr", "`ptr` must be an object"));
        };
        if let Some(w) = variant.thought_weight {
            ptr.insert("thought_weight".into(), json!(w));
        }
        ptr.insert("load_on_success".into(), json!(true));
        serde_json::from_value(Value::Object(body))
            .map_err(|e| SpecError::new("fine_tuning", e.to_string()))
    }

    /// The eval job: the base model, then each tuned model, on the same items.
    pub fn eval_spec(&self, tuned: &[String]) -> EvalJobSpec {
        let e = &self.eval;
        let system = |model: &String| CompareSystem {
            model: model.clone(),
            endpoint: None,
            api_key_env: None,
        };
        EvalJobSpec {
            tasks: e.tasks.clone(),
            model: self.model.clone(),
            endpoint: None,
            api_key_env: None,
            compare: tuned.first().map(system),
            more_systems: tuned.iter().skip(1).map(system).collect(),
            rounds: e.rounds,
            limit: e.limit,
            max_tokens: e.max_tokens,
            temperature: e.temperature,
            instruction: e.instruction.clone(),
            rounds_mode: "server".into(),
            concurrency: e.concurrency,
            time_limit_minutes: e.time_limit_minutes,
            metadata: None,
        }
    }
}

/// A training line with its thoughts dropped: the first user turn and the final answer (plain
/// SFT, the paper's ablation). `None` for a line that is not a chat record.
pub fn answers_only(line: &str) -> Option<String> {
    let record: Value = serde_json::from_str(line).ok()?;
    let messages = record["messages"].as_array()?;
    let question = messages.iter().find(|m| m["role"] == "user")?;
    let answer = messages.iter().rev().find(|m| m["role"] == "assistant")?;
    let keep = |m: &Value| json!({"role": m["role"], "content": m["content"]});
    Some(json!({"messages": [keep(question), keep(answer)]}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> PipelineSpec {
        serde_json::from_value(v).unwrap()
    }

    fn minimal() -> Value {
        json!({"model": "m", "import_files": ["file-a"],
               "eval": {"tasks": [{"task": "gsm8k", "file": "file-e"}]}})
    }

    #[test]
    fn a_minimal_pipeline_is_one_ptr_variant() {
        let s = spec(minimal());
        assert_eq!(s.check(), Ok(()));
        assert_eq!(s.variants, default_variants());
        let ft = s.fine_tune_spec(&s.variants[0], "file-t").unwrap();
        assert_eq!(ft.training_file, "file-t");
        assert_eq!(ft.suffix.as_deref(), Some("ptr"));
        assert!(ft.ptr.load_on_success);
        assert_eq!(ft.ptr.thought_weight, 0.0);
    }

    #[test]
    fn variants_override_the_thought_weight_and_join_the_eval() {
        let mut v = minimal();
        v["fine_tuning"] = json!({"ptr": {"max_steps": 3}, "seed": 7});
        v["variants"] = json!([{"name": "ptr"}, {"name": "no_mask", "thought_weight": 1.0},
                               {"name": "sft", "answers_only": true}]);
        let s = spec(v);
        assert_eq!(s.check(), Ok(()));
        let ft = s.fine_tune_spec(&s.variants[1], "f").unwrap();
        assert_eq!((ft.ptr.thought_weight, ft.ptr.max_steps), (1.0, Some(3)));
        assert_eq!(ft.seed, Some(7));
        let tuned = ["a".to_string(), "b".into(), "c".into()];
        let eval = s.eval_spec(&tuned);
        // The tuned models are this server's: no endpoint, no key.
        let here = |model: &str| CompareSystem {
            model: model.into(),
            endpoint: None,
            api_key_env: None,
        };
        assert_eq!(eval.compare, Some(here("a")));
        assert_eq!(eval.more_systems, [here("b"), here("c")]);
    }

    #[test]
    fn bad_requests_name_their_field() {
        let cases = [
            (json!({"import_files": []}), "dataset"),
            (json!({"model": " "}), "model"),
            (
                json!({"fine_tuning": {"suffix": "x"}}),
                "fine_tuning.suffix",
            ),
            (
                json!({"fine_tuning": {"ptr": {"max_seq_len": 2}}}),
                "fine_tuning.ptr.max_seq_len",
            ),
            (json!({"variants": []}), "variants"),
            (
                json!({"variants": [{"name": "a"}, {"name": "a"}]}),
                "variants[1].name",
            ),
            (json!({"variants": [{"name": "a b"}]}), "variants[0].name"),
            (
                json!({"variants": [{"name": "a", "thought_weight": -1}]}),
                "variants[0].thought_weight",
            ),
            (json!({"eval": {"tasks": []}}), "eval.tasks"),
            (
                json!({"eval": {"tasks": [{"task": "arc", "file": "f"}], "rounds": 0}}),
                "eval.rounds",
            ),
        ];
        for (patch, param) in cases {
            let mut v = minimal();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            assert_eq!(spec(v).check().unwrap_err().param, param, "{patch}");
        }
    }

    #[test]
    fn answers_only_keeps_the_question_and_the_final_answer() {
        let line = json!({"messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "t1", "weight": 0},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": "a", "weight": 1}]})
        .to_string();
        let out: Value = serde_json::from_str(&answers_only(&line).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"messages": [{"role": "user", "content": "q"},
                                {"role": "assistant", "content": "a"}]})
        );
        assert_eq!(answers_only("not json"), None);
    }
}
