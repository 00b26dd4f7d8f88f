//! What `hookgate events` needs of a configuration, read without its secrets.

use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

use super::delivery::build_routes;
use super::resolve::{deserialize_at, substitute_env, substitute_value};
use super::server::{parse_retention, resolve_store_url, StoreSection};
use super::{ConfigError, Environment};

/// What `hookgate events` and `replay` need of a configuration: the store, the
/// destinations' names and the routes. Read without building sources or destinations, so
/// their secrets need not be set.
#[derive(Debug, Clone)]
pub struct Operations {
    /// Where it came from.
    pub file: String,
    /// Store URL.
    pub store_url: String,
    /// The destinations' names, in file order.
    pub destinations: Vec<String>,
    /// The routes.
    pub routes: crate::delivery::routing::Routes,
    /// `[store] retention`.
    pub retention: Option<Duration>,
    /// Sources with a retention of their own.
    pub source_retention: Vec<(String, Duration)>,
}

impl Operations {
    /// Reads `path`'s `[store]`, `[[destination]]` names and `[[route]]`s; `${ENV}` is
    /// resolved in those only.
    pub fn load(path: &Path, env: &dyn Environment) -> Result<Operations, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&file, "(file)", format!("cannot read: {e}")))?;
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError::new(&file, "(syntax)", e.message().to_owned())
        })?;
        let mut store = Table::new();
        if let Some(Value::Table(t)) = table.get("store") {
            store = t.clone();
        }
        substitute_env(&mut store, "store", &file, env)?;
        let store: StoreSection = deserialize_at(Value::Table(store), &file, "store")?;
        let destinations = match table.get("destination") {
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    d.get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            ConfigError::new(&file, format!("destination[{i}].name"), "missing")
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        };
        let mut routes = match table.get("route") {
            Some(Value::Array(list)) => list.clone(),
            _ => Vec::new(),
        };
        for (i, route) in routes.iter_mut().enumerate() {
            substitute_value(route, &format!("route[{i}]"), &file, env)?;
        }
        let routes = build_routes(routes, &file, &destinations, None)?;
        let retention = store
            .retention
            .as_deref()
            .map(|text| parse_retention(text, &file, "store.retention"))
            .transpose()?;
        let mut source_retention = Vec::new();
        if let Some(Value::Array(list)) = table.get("source") {
            for (i, source) in list.iter().enumerate() {
                let (Some(name), Some(text)) = (
                    source.get("name").and_then(Value::as_str),
                    source.get("retention").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let key = format!("source[{i}] ({name}).retention");
                source_retention.push((name.to_owned(), parse_retention(text, &file, &key)?));
            }
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Operations {
            store_url: resolve_store_url(&store.url, &base),
            file,
            destinations,
            routes,
            retention,
            source_retention,
        })
    }
}
