//! The Files API, as OpenAI's: multipart upload, list, retrieve, content, delete. A `fine-tune`
//! file is validated on upload ([`crate::chatfile::validate`]); its `status` is `processed`, or
//! `error` with `status_details` naming the first bad line.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::views::{file_view, list_view};
use crate::error::{ApiError, ErrorKind};
use crate::http::state::AppState;
use crate::store::{FileStatus, NewFile};

/// The purposes a file may be uploaded with.
pub const PURPOSES: [&str; 4] = ["fine-tune", "batch", "user_data", "evals"];

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("The file is larger than this server's limit of {limit} bytes (--max-file-bytes)"),
    )
}

/// `POST /files`: multipart with `file` and `purpose`.
pub async fn upload(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    let admin = state.admin()?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidRequest,
            format!("Expected a multipart/form-data body with `file` and `purpose`: {e}"),
        )
    })?;
    let (mut content, mut filename, mut purpose) = (None, None, None);
    while let Some(field) = multipart.next_field().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(admin.max_file_bytes)
        } else {
            ApiError::new(
                ErrorKind::InvalidRequest,
                format!("Cannot read the multipart body: {e}"),
            )
        }
    })? {
        match field.name() {
            Some("file") => {
                filename = Some(field.file_name().unwrap_or("upload").to_string());
                let bytes = field.bytes().await.map_err(|e| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large(admin.max_file_bytes)
                    } else {
                        ApiError::invalid("file", format!("Cannot read the file: {e}"))
                    }
                })?;
                content = Some(bytes);
            }
            Some("purpose") => {
                purpose = Some(
                    field
                        .text()
                        .await
                        .map_err(|e| ApiError::invalid("purpose", e.to_string()))?,
                );
            }
            _ => {}
        }
    }
    let content = content.ok_or_else(|| ApiError::invalid("file", "Missing the `file` part"))?;
    let purpose =
        purpose.ok_or_else(|| ApiError::invalid("purpose", "Missing the `purpose` part"))?;
    if !PURPOSES.contains(&purpose.as_str()) {
        return Err(ApiError::invalid(
            "purpose",
            format!("`purpose` must be one of {PURPOSES:?}, got `{purpose}`"),
        ));
    }
    if content.len() > admin.max_file_bytes {
        return Err(too_large(admin.max_file_bytes));
    }
    let (status, details) = match purpose.as_str() {
        "fine-tune" => match crate::chatfile::validate(&content) {
            Ok(_) => (FileStatus::Processed, None),
            Err(why) => (FileStatus::Error, Some(why)),
        },
        _ => (FileStatus::Processed, None),
    };
    let filename = filename.unwrap_or_else(|| "upload".into());
    let row = admin
        .store
        .call(move |s| {
            s.insert_file(NewFile {
                filename: &filename,
                purpose: &purpose,
                content: &content,
                status,
                status_details: details,
            })
        })
        .await?;
    Ok(Json(file_view(&row)))
}

/// Query of `GET /files`.
#[derive(Debug, Deserialize)]
pub struct ListFiles {
    purpose: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
    order: Option<String>,
}

/// `GET /files`.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListFiles>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let admin = state.admin()?;
    let Query(q) = query.map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.body_text()))?;
    let limit = q.limit.unwrap_or(10_000);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::invalid(
            "limit",
            "`limit` must be between 1 and 10000",
        ));
    }
    let ascending = match q.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(o) => {
            return Err(ApiError::invalid(
                "order",
                format!("`order` must be `asc` or `desc`, got `{o}`"),
            ))
        }
    };
    let mut rows = admin
        .store
        .call(move |s| {
            s.list_files(
                q.purpose.as_deref(),
                q.after.as_deref(),
                limit + 1,
                ascending,
            )
        })
        .await?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let data: Vec<Value> = rows.iter().map(file_view).collect();
    Ok(Json(list_view(data, has_more)))
}

/// `GET /files/{id}`.
pub async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = state.admin()?.store.call(move |s| s.file(&id)).await?;
    Ok(Json(file_view(&row)))
}

/// `GET /files/{id}/content`: the bytes as uploaded or written.
pub async fn content(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = state
        .admin()?
        .store
        .call(move |s| s.file_content(&id))
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// `DELETE /files/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let deleted = id.clone();
    state
        .admin()?
        .store
        .call(move |s| s.delete_file(&id))
        .await?;
    Ok(Json(
        json!({"id": deleted, "object": "file", "deleted": true}),
    ))
}
