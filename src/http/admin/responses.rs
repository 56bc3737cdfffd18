//! The error responses the admin routes share, for their OpenAPI annotations: each an OpenAI
//! error envelope under its status.

use std::collections::BTreeMap;

use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::IntoResponses;

/// One error response with the OpenAI envelope.
fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))),
        )
        .into()
}

fn responses(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| (status.to_string(), error(description)))
        .collect()
}

/// 401: the admin token is missing or wrong (every admin route).
pub struct Unauthorized;

impl IntoResponses for Unauthorized {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[("401", "Missing or wrong admin token")])
    }
}

/// 404: no object with the id in the path.
pub struct NotFound;

impl IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[("404", "No object with this id")])
    }
}

/// 400: a query parameter is invalid (`param` names it).
pub struct BadQuery;

impl IntoResponses for BadQuery {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[("400", "A query parameter is invalid (`param` names it)")])
    }
}

/// 400, 413, 415: a request body that cannot be accepted.
pub struct BadBody;

impl IntoResponses for BadBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            ("400", "The request is invalid (`param` names the field)"),
            ("413", "The body is larger than the server's limit"),
            ("415", "The body is not JSON"),
        ])
    }
}
