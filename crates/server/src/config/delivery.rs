//! `[[destination]]` and `[[route]]`: where events go.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::{Table, Value};

use super::resolve::{deserialize_at, resolve_files};
use super::source::SourceConfig;
use super::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSection {
    #[serde(default = "any")]
    source: String,
    #[serde(default = "any")]
    topic: String,
    #[serde(rename = "match", default)]
    filter: std::collections::BTreeMap<String, Value>,
    to: hookgate_verify::OneOrMany<String>,
}

fn any() -> String {
    "*".into()
}

type DeliveryConfig = (
    Vec<Arc<crate::delivery::Destination>>,
    crate::delivery::routing::Routes,
);

/// The destinations and routes of `table`. Each error is added to `errors`, and the
/// destination or route it concerns left out; items in `failed` (an unresolved `${ENV}`,
/// already reported) are skipped. Routes are checked against every destination and source
/// named in the file, built or not, so one mistake is reported once.
pub(super) fn delivery_config(
    table: &Table,
    failed: &HashSet<String>,
    file: &str,
    base: &Path,
    sources: &[SourceConfig],
    errors: &mut Vec<ConfigError>,
) -> DeliveryConfig {
    let mut list = |name: &str| -> Vec<Value> {
        match table.get(name) {
            None => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => {
                errors.push(ConfigError::new(
                    file,
                    name,
                    format!("write [[{name}]] tables"),
                ));
                Vec::new()
            }
        }
    };
    let (destination_list, route_list) = (list("destination"), list("route"));
    let named = |key: &str| -> Vec<String> {
        match table.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| item.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut source_names = named("source");
    source_names.extend(sources.iter().map(|s| s.name.clone()));
    let destination_names = named("destination");
    let mut destinations: Vec<Arc<crate::delivery::Destination>> = Vec::new();
    for (i, value) in destination_list.into_iter().enumerate() {
        if failed.contains(&format!("destination[{i}]")) {
            continue;
        }
        let label = match value.get("name").and_then(Value::as_str) {
            Some(name) => format!("destination[{i}] ({name})"),
            None => format!("destination[{i}]"),
        };
        match build_destination(value, &label, file, base, &destinations) {
            Ok(built) => destinations.push(Arc::new(built)),
            Err(e) => errors.push(e),
        }
    }
    let mut routes = Vec::new();
    for (i, value) in route_list.into_iter().enumerate() {
        if failed.contains(&format!("route[{i}]")) {
            continue;
        }
        match build_route(i, value, file, &destination_names, Some(&source_names)) {
            Ok(route) => routes.push(route),
            Err(e) => errors.push(e),
        }
    }
    (destinations, crate::delivery::routing::Routes(routes))
}

fn build_destination(
    mut value: Value,
    label: &str,
    file: &str,
    base: &Path,
    built: &[Arc<crate::delivery::Destination>],
) -> Result<crate::delivery::Destination, ConfigError> {
    if let Value::Table(t) = &mut value {
        resolve_files(t, "", base, file, label)?;
    }
    // The common keys here, the kind's own to its sink (which names a key it lacks).
    let own = match &mut value {
        Value::Table(t) => {
            let keys: Vec<String> = t
                .keys()
                .filter(|k| !crate::delivery::COMMON_KEYS.contains(&k.as_str()))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| t.remove(&k).map(|v| (k, v)))
                .collect::<Table>()
        }
        _ => Table::new(),
    };
    let section: crate::delivery::DestinationSection = deserialize_at(value, file, label)?;
    if built.iter().any(|d| d.name == section.name) {
        return Err(ConfigError::new(
            file,
            format!("{label}.name"),
            "another destination has this name",
        ));
    }
    crate::delivery::Destination::build(section, own, base).map_err(|(key, message)| {
        let key = if key.is_empty() {
            label.to_owned()
        } else {
            format!("{label}.{key}")
        };
        ConfigError::new(file, key, message)
    })
}

/// `[[route]]` tables, checked against the destinations' names and, when given, the
/// sources' names; the first error.
pub(super) fn build_routes(
    list: Vec<Value>,
    file: &str,
    destinations: &[String],
    sources: Option<&[String]>,
) -> Result<crate::delivery::routing::Routes, ConfigError> {
    list.into_iter()
        .enumerate()
        .map(|(i, value)| build_route(i, value, file, destinations, sources))
        .collect::<Result<_, _>>()
        .map(crate::delivery::routing::Routes)
}

fn build_route(
    i: usize,
    value: Value,
    file: &str,
    destinations: &[String],
    sources: Option<&[String]>,
) -> Result<crate::delivery::routing::Route, ConfigError> {
    let label = format!("route[{i}]");
    let section: RouteSection = deserialize_at(value, file, &label)?;
    let to = section.to.into_vec();
    if to.is_empty() {
        return Err(ConfigError::new(
            file,
            format!("{label}.to"),
            "name at least one destination",
        ));
    }
    if let Some(unknown) = to.iter().find(|d| !destinations.contains(d)) {
        return Err(ConfigError::new(
            file,
            format!("{label}.to"),
            format!("no destination named `{unknown}`"),
        ));
    }
    if sources.is_some_and(|sources| {
        !sources
            .iter()
            .any(|name| wildmatch::WildMatch::new(&section.source).matches(name))
    }) {
        return Err(ConfigError::new(
            file,
            format!("{label}.source"),
            format!("`{}` matches no source", section.source),
        ));
    }
    let mut filters = Vec::new();
    for (pointer, expected) in section.filter {
        if !pointer.starts_with('/') {
            return Err(ConfigError::new(
                file,
                format!("{label}.match.{pointer}"),
                "keys are JSON pointers, e.g. \"/type\"",
            ));
        }
        let expected = serde_json::to_value(&expected).map_err(|e| {
            ConfigError::new(file, format!("{label}.match.{pointer}"), e.to_string())
        })?;
        filters.push((pointer, expected));
    }
    Ok(crate::delivery::routing::Route::new(
        &section.source,
        &section.topic,
        filters,
        to,
    ))
}
