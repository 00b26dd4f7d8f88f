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
        if !hookgate_verify::preset::NAMES.contains(&preset) {
            return Err(ConfigError::new(
                file,
                "preset",
                format!(
                    "unknown preset `{preset}`; known: {}",
                    hookgate_verify::preset::NAMES.join(", ")
                ),
            ));
        }
        let mut source = Table::new();
        source.insert("name".into(), Value::String(preset.into()));
        source.insert(
            "path".into(),
            Value::String(hookgate_verify::preset::default_path(preset).into()),
        );
        source.insert("preset".into(), Value::String(preset.into()));
        for (param, variable) in hookgate_verify::preset::environment(preset) {
            if extra
                .iter()
                .any(|(k, _)| k == param || k.strip_suffix("_file") == Some(param))
            {
                continue;
            }
            match env.var(variable) {
                Some(value) if !value.is_empty() => {
                    let key = if variable.ends_with("_FILE") { format!("{param}_file") } else { (*param).to_string() };
                    source.insert(key, Value::String(value));
                }
                _ => {
                    return Err(ConfigError::new(
                        file,
                        *variable,
                        format!("environment variable {variable} is not set; set it with: export {variable}=\"your-value-here\""),
                    ))
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
        if preset == "pps" {
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
            source.insert("issuers".into(), Value::Table(issuers));
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
