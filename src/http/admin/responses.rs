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

/// A unit type whose OpenAPI responses are error envelopes under the given statuses.
macro_rules! error_responses {
    ($(#[$doc:meta])* $name:ident: $(($status:literal, $description:literal)),+) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                [$(($status.to_string(), error($description))),+].into_iter().collect()
            }
        }
    };
}

error_responses! {
    /// 401: the admin token is missing or wrong (every admin route).
    Unauthorized: ("401", "Missing or wrong admin token")
}
error_responses! {
    /// 404: no object with the id in the path.
    NotFound: ("404", "No object with this id")
}
error_responses! {
    /// 400: a query parameter is invalid (`param` names it).
    BadQuery: ("400", "A query parameter is invalid (`param` names it)")
}
error_responses! {
    /// 400, 413, 415: a request body that cannot be accepted.
    BadBody: ("400", "The request is invalid (`param` names the field)"),
        ("413", "The body is larger than the server's limit"),
        ("415", "The body is not JSON")
}
