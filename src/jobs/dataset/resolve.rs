//! Turns a [`DatasetSpec`] into what a run needs — the parsed queries, each role's generator
//! and sampling, the in-context examples — checking every reference on the way (the file
//! exists and parses, the models are served here). Creating a job runs the same checks, so a bad
//! request is a 400 naming the field, not a failed job.

use std::sync::Arc;

use super::build::RoleSetup;
use super::generate::Generator;
use super::icl::{self, IclExample};
use super::input::{self, Query};
use super::spec::{DatasetSpec, RoleSpec, SpecError};
use crate::engine::Sampling;
use crate::models::{ModelManager, ModelState};
use crate::store::{FileStatus, Store, StoreError};

/// The roles of a generating job.
pub struct Roles {
    pub weak: RoleSetup,
    pub strong: RoleSetup,
    pub examples: Vec<IclExample>,
}

/// A checked spec.
pub struct Resolved {
    pub queries: Vec<Query>,
    /// `None` for an import, or for a check of a spec whose models are still loading.
    pub roles: Option<Roles>,
}

/// Resolves specs against this server's models and store.
#[derive(Clone)]
pub struct Resolver {
    pub models: Arc<ModelManager>,
    /// Pulls the final number out of an answer, for gold checks.
    pub extract: fn(&str) -> Option<String>,
    /// This server's own API in process, through which local roles generate, and a key it
    /// accepts.
    pub local: crate::client::LocalApi,
    pub local_key: Option<String>,
}

fn err(param: &str, message: impl Into<String>) -> SpecError {
    SpecError::new(param, message)
}

async fn file(store: &Arc<Store>, id: &str, param: &str) -> Result<Vec<u8>, SpecError> {
    let owned = id.to_string();
    let read = store
        .call(move |s| {
            let row = s.file(&owned)?;
            Ok((row.status, s.file_content(&owned)?))
        })
        .await;
    match read {
        Ok((FileStatus::Error, _)) => Err(err(param, format!("the file `{id}` failed validation"))),
        Ok((_, content)) => Ok(content),
        Err(StoreError::NotFound { .. }) => Err(err(
            param,
            format!("no file with id `{id}`; upload it with POST /admin/v1/files"),
        )),
        Err(e) => Err(err(param, format!("cannot read the file `{id}`: {e}"))),
    }
}

impl Resolver {
    /// Checks `spec` and prepares a run of it. With `wait`, local models still loading are
    /// waited for; without, they pass the check and `roles` is `None`.
    pub async fn resolve(
        &self,
        spec: &DatasetSpec,
        store: &Arc<Store>,
        wait: bool,
    ) -> Result<Resolved, SpecError> {
        spec.check()?;
        let content = file(store, &spec.input_file, "input_file").await?;
        let mut queries = input::parse(&content, spec.input_format)
            .map_err(|e| err("input_file", e))?
            .queries;
        if let Some(limit) = spec.limit {
            queries.truncate(limit);
        }
        if spec.import {
            return Ok(Resolved {
                queries,
                roles: None,
            });
        }
        let (Some(weak), Some(strong)) = (&spec.weak, &spec.strong) else {
            return Err(err("weak", "`weak` and `strong` are required"));
        };
        let mut examples = match &strong.icl_examples_file {
            Some(id) => icl::parse_examples(&file(store, id, "strong.icl_examples_file").await?)
                .map_err(|e| err("strong.icl_examples_file", e))?,
            None => icl::default_examples(),
        };
        examples.truncate(strong.icl_examples.unwrap_or(2));
        let weak = self.role(weak, "weak", 0.7, 256, wait).await?;
        let strong = self.role(strong, "strong", 0.7, 512, wait).await?;
        let roles = match (weak, strong) {
            (Some(weak), Some(strong)) => Some(Roles {
                weak,
                strong,
                examples,
            }),
            _ => None,
        };
        Ok(Resolved { queries, roles })
    }

    /// One role's generator. A local model that is still loading is waited for (`wait`, as a
    /// run does: a job resumed at start-up begins before the models are loaded) or passed as
    /// valid without a generator (`None`, as a create does).
    async fn role(
        &self,
        r: &RoleSpec,
        name: &str,
        temperature: f64,
        max_tokens: u32,
        wait: bool,
    ) -> Result<Option<RoleSetup>, SpecError> {
        let sampling = Sampling {
            temperature: r.temperature.unwrap_or(temperature),
            top_p: r.top_p,
            max_tokens: r.max_tokens.unwrap_or(max_tokens),
            stop: vec![],
        };
        let (generator, label) = match &r.base_url {
            Some(url) => {
                let key = r.api_key_env.as_ref().and_then(|v| std::env::var(v).ok());
                (
                    Generator::remote(url, &r.model, key),
                    format!("{}@{url}", r.model),
                )
            }
            None => loop {
                // The server queues its start-up models before it resumes jobs, so a job resumed
                // at start-up sees them loading.
                let loading = self
                    .models
                    .status(&r.model)
                    .is_ok_and(|s| s.status == ModelState::Loading);
                match self.models.resolve(Some(&r.model)) {
                    Ok(_) => {
                        let key = self.local_key.clone();
                        let generator = Generator::local(self.local.clone(), &r.model, key);
                        break (generator, r.model.clone());
                    }
                    Err(_) if loading && wait => {
                        let settled = self.models.settled(&r.model).await;
                        settled.map_err(|e| err(&format!("{name}.model"), e.to_string()))?;
                    }
                    Err(_) if loading => return Ok(None),
                    Err(e) => return Err(err(&format!("{name}.model"), e.to_string())),
                }
            },
        };
        Ok(Some(RoleSetup {
            generator,
            sampling,
            name: label,
        }))
    }
}
