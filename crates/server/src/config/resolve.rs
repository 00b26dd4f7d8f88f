//! Generic TOML preprocessing: `${ENV}` substitution, `*_file` contents, demo-secret
//! detection, and deserialisation whose errors name the key. Nothing here knows what a
//! source or a destination is.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Table, Value};

use super::{ConfigError, Environment};

/// Deserialises `value`; an error names the key under `label` (e.g. `source[1] (x).verify`).
pub(super) fn deserialize_at<T: for<'de> Deserialize<'de>>(
    value: Value,
    file: &str,
    label: &str,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            label.to_owned()
        } else {
            format!("{label}.{path}")
        };
        ConfigError::new(file, key, e.into_inner().to_string())
    })
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].lines().count().max(1)
}

pub(super) fn section<T: for<'de> Deserialize<'de> + Default>(
    table: &Table,
    name: &str,
    file: &str,
) -> Result<T, ConfigError> {
    match table.get(name) {
        None => Ok(T::default()),
        Some(value) => deserialize_at(value.clone(), file, name),
    }
}

/// The variables of `${NAME:-DEMO-…}` defaults in `value`.
pub(super) fn demo_defaults(value: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut visit = |text: &str, names: &mut Vec<String>| {
        for piece in text.split("${").skip(1) {
            if let Some((name, default)) = piece.split_once(":-") {
                if default.starts_with("DEMO-") && !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
    };
    fn walk(value: &Value, names: &mut Vec<String>, visit: &mut dyn FnMut(&str, &mut Vec<String>)) {
        match value {
            Value::String(s) => visit(s, names),
            Value::Array(list) => list.iter().for_each(|v| walk(v, names, visit)),
            Value::Table(t) => t.values().for_each(|v| walk(v, names, visit)),
            _ => {}
        }
    }
    walk(value, &mut names, &mut visit);
    names
}

/// A secret is a demo value when it starts with `DEMO-`: the gateway announces it loudly.
pub(super) fn contains_demo_secret(value: &Value) -> bool {
    match value {
        Value::String(s) => s.starts_with("DEMO-"),
        Value::Array(list) => list.iter().any(contains_demo_secret),
        Value::Table(t) => t.values().any(contains_demo_secret),
        _ => false,
    }
}

/// Replaces `${NAME}` and `${NAME:-default}` in every string; `$${` is a literal `${`.
/// Stops at the first reference it cannot resolve.
pub(super) fn substitute_env(
    table: &mut Table,
    prefix: &str,
    file: &str,
    env: &dyn Environment,
) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    substitute_table(table, prefix, file, env, &mut errors);
    errors.into_iter().next().map_or(Ok(()), Err)
}

/// [`substitute_env`] for one value.
pub(super) fn substitute_value(
    value: &mut Value,
    path: &str,
    file: &str,
    env: &dyn Environment,
) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    substitute_in(value, path, file, env, &mut errors);
    errors.into_iter().next().map_or(Ok(()), Err)
}

/// Replaces every reference it can in `table`; each one it cannot is added to `errors`
/// (its string is left as written), so one run reports them all.
pub(super) fn substitute_table(
    table: &mut Table,
    prefix: &str,
    file: &str,
    env: &dyn Environment,
    errors: &mut Vec<ConfigError>,
) {
    for (key, value) in table.iter_mut() {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        substitute_in(value, &path, file, env, errors);
    }
}

/// [`substitute_table`] for one value.
pub(super) fn substitute_in(
    value: &mut Value,
    path: &str,
    file: &str,
    env: &dyn Environment,
    errors: &mut Vec<ConfigError>,
) {
    match value {
        Value::String(s) if s.contains("${") => match expand(s, path, file, env) {
            Ok(expanded) => *s = expanded,
            Err(e) => errors.push(e),
        },
        Value::Array(list) => {
            for (i, item) in list.iter_mut().enumerate() {
                substitute_in(item, &format!("{path}[{i}]"), file, env, errors);
            }
        }
        Value::Table(t) => substitute_table(t, path, file, env, errors),
        _ => {}
    }
}

fn expand(
    text: &str,
    path: &str,
    file: &str,
    env: &dyn Environment,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| {
            ConfigError::new(file, path, "unclosed `${` (write `$${` for a literal)")
        })?;
        let inner = &rest[start + 2..start + end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if default.is_some_and(|d| d.contains("${")) {
            return Err(ConfigError::new(
                file,
                path,
                format!("`${{{inner}}}…`: a default cannot hold another ${{…}} reference"),
            ));
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::new(
                file,
                path,
                format!("`${{{inner}}}` is not an environment variable reference"),
            ));
        }
        match (env.var(name), default) {
            (Some(v), _) if !v.is_empty() => out.push_str(&v),
            (_, Some(d)) => out.push_str(d),
            _ => {
                return Err(ConfigError::new(
                    file,
                    path,
                    format!("environment variable {name} is not set; set it with: export {name}=\"…\" (or write ${{{name}:-default}})"),
                ))
            }
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `KEY_file = "path"` becomes `KEY = <the file's contents>`, relative to the config file;
/// secrets lose one trailing newline, as files written by editors and `echo` have one.
pub(super) fn resolve_files(
    table: &mut Table,
    prefix: &str,
    base: &Path,
    file: &str,
    label: &str,
) -> Result<(), ConfigError> {
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let path_key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let Some(Value::Table(inner)) = table.get_mut(&key) {
            resolve_files(inner, &path_key, base, file, label)?;
            continue;
        }
        if let Some(Value::Array(items)) = table.get_mut(&key) {
            for (i, item) in items.iter_mut().enumerate() {
                if let Value::Table(inner) = item {
                    resolve_files(inner, &format!("{path_key}[{i}]"), base, file, label)?;
                }
            }
            continue;
        }
        let Some(target) = key.strip_suffix("_file") else {
            continue;
        };
        let Some(Value::String(relative)) = table.get(&key) else {
            return Err(ConfigError::new(
                file,
                format!("{label}.{path_key}"),
                "must be a file path",
            ));
        };
        if table.contains_key(target) {
            return Err(ConfigError::new(
                file,
                format!("{label}.{path_key}"),
                format!("set either `{target}` or `{key}`, not both"),
            ));
        }
        let full: PathBuf = if Path::new(relative).is_absolute() {
            PathBuf::from(relative)
        } else {
            base.join(relative)
        };
        let mut contents = std::fs::read_to_string(&full).map_err(|e| {
            ConfigError::new(
                file,
                format!("{label}.{path_key}"),
                format!("cannot read {}: {e}", full.display()),
            )
        })?;
        if (target.starts_with("secret")
            || matches!(target, "api_client_key" | "password" | "token"))
            && contents.ends_with('\n')
        {
            contents.pop();
            if contents.ends_with('\r') {
                contents.pop();
            }
        }
        table.remove(&key);
        table.insert(target.to_owned(), Value::String(contents));
    }
    Ok(())
}
