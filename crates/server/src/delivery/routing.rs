//! `[[route]]`: which destinations an event goes to. A route matches the source name and
//! the topic with globs (`*`, `?`), optionally requires JSON-pointer values in the body, and
//! fans out to its destinations. An event no route matches is stored as unrouted.

use serde_json::Value;
use wildmatch::WildMatch;

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    source: WildMatch,
    topic: WildMatch,
    filters: Vec<(String, Value)>,
    to: Vec<String>,
}

impl Route {
    /// A route from its globs, `(pointer, value)` filters and destinations.
    pub fn new(source: &str, topic: &str, filters: Vec<(String, Value)>, to: Vec<String>) -> Route {
        Route {
            source: WildMatch::new(source),
            topic: WildMatch::new(topic),
            filters,
            to,
        }
    }

    /// `source glob, topic glob → destinations`, for people (check-config, the start-up log).
    pub fn describe(&self) -> String {
        let filters = if self.filters.is_empty() {
            String::new()
        } else {
            format!(
                " when {}",
                self.filters
                    .iter()
                    .map(|(p, v)| format!("{p} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        format!(
            "source {} topic {}{filters} → {}",
            self.source,
            self.topic,
            self.to.join(", ")
        )
    }

    fn matches(
        &self,
        source: &str,
        topic: Option<&str>,
        body: &mut dyn FnMut() -> Option<Value>,
    ) -> bool {
        if !self.source.matches(source) || !self.topic.matches(topic.unwrap_or("")) {
            return false;
        }
        if self.filters.is_empty() {
            return true;
        }
        let Some(json) = body() else { return false };
        self.filters
            .iter()
            .all(|(pointer, expected)| json.pointer(pointer) == Some(expected))
    }
}

/// All routes, in file order.
#[derive(Debug, Clone, Default)]
pub struct Routes(pub Vec<Route>);

impl Routes {
    /// The destinations of an event, each once, in route order. The body is parsed only
    /// when a route filters on it.
    pub fn destinations(&self, source: &str, topic: Option<&str>, body: &[u8]) -> Vec<String> {
        let mut parsed: Option<Option<Value>> = None;
        let mut json = || {
            parsed
                .get_or_insert_with(|| serde_json::from_slice(body).ok())
                .clone()
        };
        let mut out: Vec<String> = Vec::new();
        for route in &self.0 {
            if route.matches(source, topic, &mut json) {
                for d in &route.to {
                    if !out.contains(d) {
                        out.push(d.clone());
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_filters_and_fan_out() {
        let routes = Routes(vec![
            Route::new("*", "orders/*", vec![], vec!["orders".into()]),
            Route::new(
                "stripe",
                "*",
                vec![("/data/object/currency".into(), "eur".into())],
                vec!["eu".into(), "orders".into()],
            ),
            Route::new("git?ub", "*", vec![], vec!["ci".into()]),
        ]);
        assert_eq!(
            routes.destinations("shop", Some("orders/created"), b"{}"),
            vec!["orders"]
        );
        assert_eq!(
            routes.destinations("shop", Some("users/created"), b"{}"),
            Vec::<String>::new()
        );
        assert_eq!(
            routes.destinations("shop", None, b"{}"),
            Vec::<String>::new()
        );
        assert_eq!(
            routes.destinations(
                "stripe",
                Some("orders/paid"),
                br#"{"data":{"object":{"currency":"eur"}}}"#
            ),
            vec!["orders", "eu"]
        );
        assert_eq!(
            routes.destinations(
                "stripe",
                Some("x"),
                br#"{"data":{"object":{"currency":"usd"}}}"#
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            routes.destinations("stripe", Some("x"), b"not json"),
            Vec::<String>::new()
        );
        assert_eq!(routes.destinations("github", None, b""), vec!["ci"]);
    }
}
