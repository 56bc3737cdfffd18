//! The Files API, as OpenAI's: multipart upload, list, retrieve, content, delete. A `fine-tune`
//! file is validated on upload ([`crate::chatfile::validate`]); its `status` is `processed`, or
//! `error` with `status_details` naming the first bad line.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::responses::{BadQuery, NotFound, Unauthorized};
use super::schemas::FileUpload;
use super::views::{Deleted, FileObject, List};
use super::Shared;
use crate::error::{ApiError, ErrorEnvelope, ErrorKind};
use crate::store::{FileStatus, NewFile};

/// The purposes a file may be uploaded with.
pub const PURPOSES: [&str; 4] = ["fine-tune", "batch", "user_data", "evals"];

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("The file is larger than this server's limit of {limit} bytes (--max-file-bytes)"),
    )
}

/// Upload a file (`multipart/form-data` with `file` and `purpose`).
///
/// A `fine-tune` file is validated as chat lines: `status` is `processed`, or `error` with the
/// first bad line in `status_details`.
#[utoipa::path(post, path = "/files", tag = "admin: files", operation_id = "upload_file",
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The stored file", body = FileObject),
        (status = 400, description = "Not multipart, or a part is missing or invalid", body = ErrorEnvelope),
        (status = 413, description = "Larger than `--max-file-bytes`", body = ErrorEnvelope),
        Unauthorized,
    ),
    security(("admin_token" = [])))]
pub async fn upload(
    State(admin): State<Shared>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<FileObject>, ApiError> {
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
    Ok(Json(FileObject::from(&row)))
}

/// Query of `GET /files`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListFiles {
    /// Only files of this purpose.
    purpose: Option<String>,
    /// The id of the last file of the previous page.
    after: Option<String>,
    /// 1 to 10000 [default: 10000].
    limit: Option<usize>,
    /// `desc` (newest first, the default) or `asc`.
    order: Option<String>,
}

/// List files.
#[utoipa::path(get, path = "/files", tag = "admin: files", operation_id = "list_files",
    params(ListFiles),
    responses((status = 200, body = List<FileObject>), BadQuery, Unauthorized),
    security(("admin_token" = [])))]
pub async fn list(
    State(admin): State<Shared>,
    query: Result<Query<ListFiles>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<List<FileObject>>, ApiError> {
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
    let data = rows.iter().map(FileObject::from).collect();
    Ok(Json(List::new(data, has_more)))
}

/// Retrieve a file.
#[utoipa::path(get, path = "/files/{id}", tag = "admin: files", operation_id = "retrieve_file",
    params(("id" = String, Path, description = "The file id")),
    responses((status = 200, body = FileObject), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn retrieve(
    State(admin): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<FileObject>, ApiError> {
    let row = admin.store.call(move |s| s.file(&id)).await?;
    Ok(Json(FileObject::from(&row)))
}

/// A file's content: the bytes as uploaded or written.
#[utoipa::path(get, path = "/files/{id}/content", tag = "admin: files",
    operation_id = "retrieve_file_content",
    params(("id" = String, Path, description = "The file id")),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        NotFound, Unauthorized,
    ),
    security(("admin_token" = [])))]
pub async fn content(
    State(admin): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = admin.store.call(move |s| s.file_content(&id)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Delete a file.
#[utoipa::path(delete, path = "/files/{id}", tag = "admin: files", operation_id = "delete_file",
    params(("id" = String, Path, description = "The file id")),
    responses((status = 200, body = Deleted), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn delete(
    State(admin): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    let deleted = id.clone();
    admin.store.call(move |s| s.delete_file(&id)).await?;
    Ok(Json(Deleted {
        id: deleted,
        object: "file",
        deleted: true,
    }))
}
