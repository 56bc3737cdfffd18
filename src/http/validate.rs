//! Validation: a parsed [`ChatCompletionRequest`] becomes a [`ValidChat`] — engine resolved,
//! defaults applied, every limit checked, the prompt counted against the context — before any
//! response byte is sent, so a client always gets a real 4xx status rather than an error event
//! inside a 200 stream. Messages name the field and the limit.

use std::sync::Arc;

use super::state::{Admission, AppState};
use crate::engine::{ChatMessage, Engine, GenerationRequest, Role, Sampling};
use crate::error::{ApiError, ErrorKind};
use crate::refine::{PlanAsk, RefinePlan};
use crate::wire::{ChatCompletionRequest, InputContent, InputMessage, RefinementParams, StopField};

/// Most stop strings, as in the OpenAI API.
const MAX_STOP: usize = 4;
/// Longest refinement instruction, in characters.
const MAX_INSTRUCTION_CHARS: usize = 4000;

/// A request that passed validation, holding its generation slots.
pub struct ValidChat {
    pub admission: Admission,
    pub engine: Arc<dyn Engine>,
    pub model: String,
    pub generation: GenerationRequest,
    pub plan: RefinePlan,
    pub stream: bool,
    pub include_usage: bool,
}

fn message(i: usize, m: InputMessage) -> Result<ChatMessage, ApiError> {
    let role = match m.role.as_str() {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => {
            return Err(ApiError::invalid(
                format!("messages[{i}].role"),
                format!("Unsupported role `{other}`: use system, developer, user or assistant"),
            ))
        }
    };
    let content = match m.content {
        None if role == Role::Assistant => String::new(),
        None => {
            return Err(ApiError::invalid(
                format!("messages[{i}].content"),
                "`content` is required",
            ))
        }
        Some(InputContent::Text(t)) => t,
        Some(InputContent::Parts(parts)) => {
            let mut text = String::new();
            for (j, p) in parts.into_iter().enumerate() {
                match (p.kind.as_str(), p.text) {
                    ("text", Some(t)) => text.push_str(&t),
                    _ => return Err(ApiError::invalid(
                        format!("messages[{i}].content[{j}]"),
                        "Only text content parts (`{\"type\":\"text\",\"text\":…}`) are supported",
                    )),
                }
            }
            text
        }
    };
    Ok(ChatMessage { role, content })
}

fn positive(value: i64, field: &str) -> Result<u32, ApiError> {
    if value < 1 {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` must be >= 1, got {value}"),
        ));
    }
    Ok(value.min(u32::MAX as i64) as u32)
}

fn stops(stop: Option<StopField>) -> Result<Vec<String>, ApiError> {
    let list = match stop {
        None => vec![],
        Some(StopField::One(s)) => vec![s],
        Some(StopField::Many(v)) => v,
    };
    if list.len() > MAX_STOP {
        return Err(ApiError::invalid(
            "stop",
            format!("`stop` takes at most {MAX_STOP} strings"),
        ));
    }
    if list.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            "stop",
            "`stop` strings must not be empty",
        ));
    }
    Ok(list)
}

/// Takes a server-wide slot (429 at once when there is none), then checks `req` and resolves
/// everything it refers to, taking a slot of the model it names.
pub async fn validate(req: ChatCompletionRequest, state: &AppState) -> Result<ValidChat, ApiError> {
    let server_permit = state.admit()?;
    let fields = Fields::check(req, state.limits.max_rounds)?;
    let serving = state.models.resolve(fields.model.as_deref())?;
    let model_permit = serving
        .admit()
        .inspect_err(|_| state.metrics.rejected.inc())?;
    let admission = Admission::new(server_permit, model_permit);
    let engine = serving.engine;
    let (context, prompt_tokens) = fit(engine.as_ref(), &fields).await?;
    let plan = RefinePlan::resolve(
        fields.ask,
        serving.defaults,
        state.limits.max_rounds,
        prompt_tokens,
    );
    Ok(ValidChat {
        admission,
        model: engine.model_id().to_string(),
        generation: GenerationRequest {
            messages: fields.messages,
            sampling: Sampling {
                temperature: fields.temperature,
                top_p: fields.top_p,
                max_tokens: fields
                    .max_tokens
                    .unwrap_or(state.limits.default_max_tokens)
                    .min(context - prompt_tokens),
                stop: fields.stop,
            },
            will_continue: false,
            continues: None,
        },
        engine,
        plan,
        stream: fields.stream,
        include_usage: fields.include_usage,
    })
}

/// A request's fields, checked one by one in the order they are reported (the first bad one is
/// the error), before any model is looked at.
struct Fields {
    model: Option<String>,
    messages: Vec<ChatMessage>,
    temperature: f64,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    /// The field `max_tokens` came from, named in errors.
    max_field: &'static str,
    stop: Vec<String>,
    ask: PlanAsk,
    stream: bool,
    include_usage: bool,
}

impl Fields {
    fn check(req: ChatCompletionRequest, max_rounds: u32) -> Result<Self, ApiError> {
        if let Some(n) = req.n.filter(|&n| n != 1) {
            return Err(ApiError::invalid(
                "n",
                format!("Only `n` = 1 is supported, got {n}"),
            ));
        }
        if req.messages.is_empty() {
            return Err(ApiError::invalid(
                "messages",
                "`messages` must hold at least one message",
            ));
        }
        let messages = req
            .messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| message(i, m))
            .collect::<Result<Vec<_>, _>>()?;
        let temperature = req.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid(
                "temperature",
                format!("`temperature` must be between 0 and 2, got {temperature}"),
            ));
        }
        if let Some(p) = req.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(ApiError::invalid(
                "top_p",
                format!("`top_p` must be > 0 and <= 1, got {p}"),
            ));
        }
        let max_tokens = match (req.max_completion_tokens, req.max_tokens) {
            (Some(v), _) => Some(positive(v, "max_completion_tokens")?),
            (None, Some(v)) => Some(positive(v, "max_tokens")?),
            (None, None) => None,
        };
        let max_field = if req.max_completion_tokens.is_some() {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        let stop = stops(req.stop)?;
        let ask = refinement(req.refinement.unwrap_or_default(), max_rounds)?;
        Ok(Self {
            model: req.model,
            messages,
            temperature,
            top_p: req.top_p,
            max_tokens,
            max_field,
            stop,
            ask,
            stream: req.stream.unwrap_or(false),
            include_usage: req
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
        })
    }
}

/// The `refinement` extension's fields, checked.
fn refinement(params: RefinementParams, cap: u32) -> Result<PlanAsk, ApiError> {
    if let Some(r) = params.rounds.filter(|&r| r < 1 || r > cap as i64) {
        return Err(ApiError::invalid(
            "refinement.rounds",
            format!("`refinement.rounds` must be between 1 and {cap}, got {r}"),
        ));
    }
    if let Some(i) = &params.instruction {
        if i.trim().is_empty() || i.chars().count() > MAX_INSTRUCTION_CHARS {
            return Err(ApiError::invalid(
                "refinement.instruction",
                format!("`refinement.instruction` must be 1 to {MAX_INSTRUCTION_CHARS} characters"),
            ));
        }
    }
    let budget = params
        .max_total_tokens
        .map(|b| positive(b, "refinement.max_total_tokens"))
        .transpose()?;
    Ok(PlanAsk {
        rounds: params.rounds.map(|r| r as u32),
        instruction: params.instruction,
        early_stop: params.early_stop,
        max_total_tokens: budget,
    })
}

/// The model's context and the prompt's tokens, once the request is known to fit: the prompt
/// below the context, and the prompt plus an asked `max_tokens` within it.
async fn fit(engine: &dyn Engine, fields: &Fields) -> Result<(u32, u32), ApiError> {
    let (context, max_field) = (engine.context_length(), fields.max_field);
    if let Some(m) = fields.max_tokens.filter(|&m| m >= context) {
        return Err(ApiError::invalid(
            max_field,
            format!("`{max_field}` must be below the model's context of {context} tokens, got {m}"),
        ));
    }
    let prompt_tokens = engine.count_prompt_tokens(&fields.messages).await?;
    if prompt_tokens >= context {
        return Err(ApiError::new(
            ErrorKind::ContextLengthExceeded,
            format!("This model's maximum context length is {context} tokens, but the messages use {prompt_tokens} tokens"),
        )
        .with_param("messages"));
    }
    if let Some(m) = fields.max_tokens.filter(|&m| prompt_tokens + m > context) {
        return Err(ApiError::new(
            ErrorKind::ContextLengthExceeded,
            format!("This model's maximum context length is {context} tokens, but {prompt_tokens} prompt tokens plus {max_field} = {m} exceed it"),
        )
        .with_param(max_field));
    }
    Ok((context, prompt_tokens))
}
