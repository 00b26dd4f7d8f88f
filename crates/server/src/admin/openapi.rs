//! The OpenAPI 3.1 document, generated from the handlers' annotations and the response
//! types, so it cannot drift from what the API answers.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use super::api;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookgate admin API",
        description = "Events, refused requests, replay, destinations and sources of a hookgate gateway. Every error is {\"error\":{\"kind\":…,\"message\":…}}."
    ),
    paths(
        api::list_events,
        api::get_event,
        api::replay_event,
        api::replay,
        api::list_refusals,
        api::list_destinations,
        api::get_destination,
        api::pause,
        api::resume,
        api::list_sources,
        api::arrivals,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "events", description = "Stored events"),
        (name = "replay", description = "Deliver again"),
        (name = "refusals", description = "Why providers' calls fail"),
        (name = "destinations", description = "Delivery state, pause and resume"),
        (name = "sources", description = "Sources and their counters"),
    )
)]
struct AdminApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document itself.
pub(crate) fn spec() -> utoipa::openapi::OpenApi {
    let mut spec = AdminApi::openapi();
    spec.info.version = env!("CARGO_PKG_VERSION").to_owned();
    spec
}

/// `GET /api/v1/openapi.json` (needs no token, but exists only where the API does).
pub(crate) async fn document(
    axum::extract::State(gateway): axum::extract::State<std::sync::Arc<crate::Gateway>>,
) -> Result<Json<utoipa::openapi::OpenApi>, super::ApiError> {
    if !gateway.live().admin_tokens.any() {
        return Err(super::ApiError::not_found("no such endpoint"));
    }
    Ok(Json(spec()))
}
