//! `hookgate serve --preset NAME`: a configuration of one preset source, from the
//! environment and `--param`s.

use std::path::Path;

use toml::{Table, Value};

use super::{Config, ConfigError, Environment};

impl Config {
    /// The one-line mode: one preset source at its documented path, parameters from the
    /// environment (`secret` from the preset's documented variable) and `extra`.
    pub fn for_preset(
        preset: &str,
        listen: &str,
        extra: &[(String, String)],
        env: &dyn Environment,
    ) -> Result<Config, ConfigError> {
        let file = "--preset";
        let Some(found) = hookgate_verify::preset::find(preset) else {
            return Err(ConfigError::new(
                file,
                "preset",
                format!(
                    "unknown preset `{preset}`; known: {}",
                    hookgate_verify::preset::names().join(", ")
                ),
            ));
        };
        let mut source = Table::new();
        source.insert("name".into(), Value::String(found.name().into()));
        source.insert("path".into(), Value::String(found.path().into()));
        source.insert("preset".into(), Value::String(preset.into()));
        for param in found.params() {
            let name = match param.kind() {
                hookgate_verify::preset::ParamKind::Issuers => "issuer",
                _ => param.name(),
            };
            let Some(documented) = param.env().first() else {
                continue;
            };
            if extra
                .iter()
                .any(|(k, _)| k == name || k.strip_suffix("_file") == Some(name))
            {
                continue;
            }
            // The documented variable first, then the others the preset accepts.
            let set = param.env().iter().find_map(|v| {
                env.var(v)
                    .filter(|value| !value.is_empty())
                    .map(|value| (v, value))
            });
            match set {
                Some((variable, value)) => {
                    let key = if variable.ends_with("_FILE") { format!("{name}_file") } else { name.to_owned() };
                    source.insert(key, Value::String(value));
                }
                None if !param.required() => {}
                None => {
                    return Err(ConfigError::new(
                        file,
                        documented.as_str(),
                        format!("environment variable {documented} is not set; set it with: export {documented}=\"your-value-here\""),
                    ))
                }
            }
        }
        for (param, variable) in found.environment() {
            // The audience of an `issuers` parameter comes with its issuer.
            if param == "audience" && !extra.iter().any(|(k, _)| k == "audience") {
                match env.var(variable).filter(|v| !v.is_empty()) {
                    Some(value) => {
                        source.insert("audience".into(), Value::String(value));
                    }
                    None => {
                        return Err(ConfigError::new(
                            file,
                            variable,
                            format!("environment variable {variable} is not set; set it with: export {variable}=\"your-value-here\""),
                        ))
                    }
                }
            }
        }
        for (key, value) in extra {
            let value = match value.as_str() {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => Value::String(value.clone()),
            };
            source.insert(key.clone(), value);
        }
        if let Some(param) = found
            .params()
            .iter()
            .find(|p| p.kind() == hookgate_verify::preset::ParamKind::Issuers)
        {
            // One trusted issuer and its audience, as the environment gives them.
            let issuer = source
                .remove("issuer")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let audience = source
                .remove("audience")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut issuers = Table::new();
            issuers.insert(issuer, Value::Array(vec![Value::String(audience)]));
            source.insert(param.name().into(), Value::Table(issuers));
        }
        let mut root = Table::new();
        let mut server = Table::new();
        server.insert("listen".into(), Value::String(listen.into()));
        root.insert("server".into(), Value::Table(server));
        root.insert("source".into(), Value::Array(vec![Value::Table(source)]));
        let text = toml::to_string(&root)
            .map_err(|e| ConfigError::new(file, "(preset)", e.to_string()))?;
        Config::parse(&text, file, Path::new("."), env)
    }
}
