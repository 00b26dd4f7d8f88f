//! Presets: each provider's scheme written as data over the generic checks, one record per
//! provider in `crates/verify/presets/<name>.toml`, embedded at build time. A record holds
//! the provider's parameters (with their environment variables), its checks, where the
//! event's id, topic, tenant and timestamp are read, its documented answers and handshakes,
//! and a sample event. A preset takes only its own parameters; any other is a
//! configuration error naming the key.
//!
//! In a record's checks and handshakes, a string that is exactly `$name` becomes the
//! parameter's value (`$secrets`: every secret, rotation included), and `$name` inside a
//! longer string is replaced by its text; `$$` is a literal `$`. An optional parameter
//! left unset removes the key that names it.

mod record;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::error::SpecError;
use crate::handshake::HandshakeConfig;
use crate::response::{Reply, Responses};
use crate::scheme::CheckConfig;
use crate::source::SourceSpec;

pub use record::ParamKind;
use record::{ParamRecord, Record, ReplyRecord};

mod records {
    include!(concat!(env!("OUT_DIR"), "/presets.rs"));
}

/// One provider's preset.
#[derive(Debug)]
pub struct Preset {
    record: Record,
    text: &'static str,
    params: Vec<Param>,
}

/// One parameter of a preset.
#[derive(Debug, Clone)]
pub struct Param {
    record: ParamRecord,
}

impl Param {
    /// The key beside `preset = "…"`.
    pub fn name(&self) -> &str {
        &self.record.name
    }
    /// What it holds.
    pub fn kind(&self) -> ParamKind {
        self.record.kind
    }
    /// One line on what it is.
    pub fn description(&self) -> &str {
        &self.record.description
    }
    /// The environment variables the one-line start reads it from, the documented one
    /// first. A name ending in `_FILE` holds a path to the value.
    pub fn env(&self) -> &[String] {
        &self.record.env
    }
    /// Whether a source must set it.
    pub fn required(&self) -> bool {
        self.record.default.is_none() && !self.record.optional
    }
    /// Its default, as TOML.
    pub fn default_value(&self) -> Option<&toml::Value> {
        self.record.default.as_ref()
    }
    /// Whether it must be set, as people read it: `required`, `default "5m"`, `optional`.
    pub fn requirement(&self) -> String {
        match self.default_value() {
            _ if self.required() => "required".to_owned(),
            Some(default) => format!("default {default}"),
            None => "optional".to_owned(),
        }
    }
    /// An example value for a ready-to-paste block.
    pub fn example(&self) -> Option<&toml::Value> {
        self.record.example.as_ref()
    }
    /// A public key's private counterpart, as `hookgate send --key` takes it.
    pub fn private_key(&self) -> &str {
        self.record
            .private_key
            .as_deref()
            .unwrap_or("a private key")
    }
}

/// Every preset, sorted by name. The records are checked when first read; a broken record
/// is a build defect (`every_record_is_valid` in this module's tests), so it panics.
pub fn catalogue() -> &'static [Preset] {
    static CATALOGUE: OnceLock<Vec<Preset>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        records::RECORDS
            .iter()
            .map(|(file, text)| {
                let record: Record =
                    toml::from_str(text).unwrap_or_else(|e| panic!("presets/{file}.toml: {e}"));
                assert_eq!(
                    record.name, *file,
                    "presets/{file}.toml: `name` must be the file name"
                );
                let params = record
                    .params
                    .iter()
                    .cloned()
                    .map(|record| Param { record })
                    .collect();
                Preset {
                    record,
                    text,
                    params,
                }
            })
            .collect()
    })
}

/// The preset called `name`, or one of its aliases.
pub fn find(name: &str) -> Option<&'static Preset> {
    catalogue()
        .iter()
        .find(|p| p.record.name == name || p.record.aliases.iter().any(|a| a == name))
}

/// Every preset name, aliases included, sorted.
pub fn names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = catalogue()
        .iter()
        .flat_map(|p| {
            std::iter::once(p.record.name.as_str())
                .chain(p.record.aliases.iter().map(String::as_str))
        })
        .collect();
    all.sort_unstable();
    all
}

/// Every parameter name any preset takes (`secrets` included): the keys a `[[source]]`
/// table may hold for its preset.
pub fn parameter_names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = catalogue().iter().flat_map(|p| p.allowed_keys()).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The environment variables of `preset`'s one-line start as `(parameter, VARIABLE)`, the
/// documented variable of each parameter only (see [`Param::env`] for the others).
pub fn environment(preset: &str) -> Vec<(&'static str, &'static str)> {
    find(preset).map(Preset::environment).unwrap_or_default()
}

/// The default path of `preset`'s one-line start.
pub fn default_path(preset: &str) -> &'static str {
    find(preset).map(Preset::path).unwrap_or("/webhook")
}

impl Preset {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.record.name
    }
    /// The provider's name as it writes it.
    pub fn title(&self) -> &str {
        &self.record.title
    }
    /// Other names it answers to.
    pub fn aliases(&self) -> &[String] {
        &self.record.aliases
    }
    /// The provider's documentation of the scheme.
    pub fn docs(&self) -> &str {
        &self.record.docs
    }
    /// The catalogue's grouping (payments, developer tools …).
    pub fn category(&self) -> &str {
        &self.record.category
    }
    /// What is verified, in one line.
    pub fn summary(&self) -> &str {
        &self.record.summary
    }
    /// Anything else a user should know.
    pub fn notes(&self) -> Option<&str> {
        self.record.notes.as_deref()
    }
    /// The default path of the one-line start.
    pub fn path(&self) -> &str {
        &self.record.path
    }
    /// The methods its source takes unless configured (`POST`, plus what a handshake needs).
    pub fn methods(&self) -> Vec<String> {
        if self.record.methods.is_empty() {
            vec!["POST".into()]
        } else {
            self.record.methods.clone()
        }
    }
    /// Its parameters, in the record's order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }
    /// Its answers.
    pub fn responses(&self) -> Responses {
        responses(&self.record.responses)
    }
    /// Where the event's id, topic, tenant and provider timestamp are read by default.
    pub fn fields(&self) -> [(&'static str, &[String]); 4] {
        let f = &self.record.fields;
        [
            ("id", &f.id),
            ("topic", &f.topic),
            ("tenant", &f.tenant),
            ("timestamp", &f.timestamp),
        ]
    }
    /// The record as written.
    pub fn record_text(&self) -> &'static str {
        self.text
    }

    /// `(parameter, VARIABLE)` for each parameter read from the environment; an `issuers`
    /// parameter reads one issuer and its audience as `issuer` and `audience`.
    pub fn environment(&'static self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        for p in &self.params {
            let Some(first) = p.record.env.first() else {
                continue;
            };
            if p.kind() == ParamKind::Issuers {
                out.push(("issuer", first.as_str()));
                if let Some(aud) = &p.record.audience_env {
                    out.push(("audience", aud.as_str()));
                }
            } else {
                out.push((p.name(), first.as_str()));
            }
        }
        out
    }

    /// The keys a `[[source]]` of this preset may hold besides the generic ones.
    pub fn allowed_keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        for p in &self.params {
            keys.push(p.name());
            if p.kind() == ParamKind::Secret && p.name() == "secret" {
                keys.push("secrets");
            }
        }
        keys
    }

    /// The sample event: body and content type, with `id` as its event id and `now` as
    /// its time (`{now}` RFC 3339, `{now_unix}` seconds, `{now_ms}` milliseconds).
    pub fn sample(&self, id: &str, now: time::OffsetDateTime) -> (Vec<u8>, &str) {
        let body = self
            .record
            .sample
            .body
            .replace("{id}", id)
            .replace(
                "{now}",
                &crate::timestamp::TimestampFormat::Rfc3339.render(now),
            )
            .replace("{now_unix}", &now.unix_timestamp().to_string())
            .replace(
                "{now_ms}",
                &(now.unix_timestamp_nanos() / 1_000_000).to_string(),
            );
        (body.into_bytes(), &self.record.sample.content_type)
    }

    /// Headers the provider sends with every event of the sample's kind.
    pub fn sample_headers(&self) -> Vec<(String, String)> {
        self.record
            .sample
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect()
    }

    /// A ready-to-paste `[[source]]` block: the documented path, every required parameter
    /// from its environment variable, optional ones commented out.
    pub fn source_block(&self) -> String {
        let mut out = format!(
            "[[source]]\nname = \"{name}\"\npath = \"{path}\"\npreset = \"{name}\"\n",
            name = self.name(),
            path = self.path()
        );
        if self.methods() != ["POST"] {
            let list: Vec<String> = self.methods().iter().map(|m| format!("\"{m}\"")).collect();
            out.push_str(&format!("methods = [{}]\n", list.join(", ")));
        }
        let mut tables = String::new();
        for p in &self.params {
            let comment = if p.required() { "" } else { "# " };
            let note = if p.required() { "" } else { "  (optional)" };
            match p.kind() {
                ParamKind::Issuers => {
                    // Table keys are not substituted from the environment: an example.
                    tables.push_str(&format!(
                        "# {}\n[source.{}]\n\"https://issuer.example.com\" = [\"your-audience\"]\n",
                        p.description(),
                        p.name()
                    ));
                }
                _ => {
                    let value = match (p.record.env.first(), p.example(), p.default_value()) {
                        (Some(var), _, _) if !p.required() || p.example().is_none() => {
                            match var.strip_suffix("_FILE") {
                                Some(_) => {
                                    out.push_str(&format!(
                                        "{comment}{}_file = \"${{{var}}}\"    # {}{note}\n",
                                        p.name(),
                                        p.description()
                                    ));
                                    continue;
                                }
                                None => format!("\"${{{var}}}\""),
                            }
                        }
                        (_, Some(example), _) => example.to_string(),
                        (_, None, Some(default)) => default.to_string(),
                        _ => "\"\"".into(),
                    };
                    out.push_str(&format!(
                        "{comment}{} = {value}    # {}{note}\n",
                        p.name(),
                        p.description()
                    ));
                }
            }
        }
        out.push_str(&tables);
        out
    }

    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name() == name)
    }
}

/// What a preset contributes to a source.
#[derive(Debug, Default)]
pub(crate) struct Expansion {
    pub preset: Option<&'static str>,
    pub checks: Vec<CheckConfig>,
    pub handshakes: Vec<HandshakeConfig>,
    pub responses: Responses,
    pub id: Vec<String>,
    pub topic: Vec<String>,
    pub tenant: Vec<String>,
    pub timestamp: Vec<String>,
    pub schema: Option<Value>,
}

pub(crate) fn refuse_parameters_without_preset(spec: &SourceSpec) -> Result<(), SpecError> {
    match spec.params.keys().next() {
        Some(key) if parameter_names().contains(&key.as_str()) => Err(SpecError::new(
            key,
            "is a preset parameter; without `preset` put it in `[source.verify]`",
        )),
        Some(key) => Err(SpecError::new(key, "unknown key")),
        None => Ok(()),
    }
}

/// Expands preset `name` with the parameters in `spec`.
pub(crate) fn expand(name: &str, spec: &SourceSpec) -> Result<Expansion, SpecError> {
    let preset = find(name).ok_or_else(|| {
        SpecError::new(
            "preset",
            format!("unknown preset `{name}`; known: {}", names().join(", ")),
        )
    })?;
    let given_name: &'static str = names()
        .into_iter()
        .find(|n| *n == name)
        .expect("found by this name");
    let allowed = preset.allowed_keys();
    if let Some(extra) = spec.params.keys().find(|k| !allowed.contains(&k.as_str())) {
        let known = parameter_names();
        let message = if known.contains(&extra.as_str()) {
            format!(
                "is not a parameter of preset `{}` (it takes: {})",
                preset.name(),
                allowed.join(", ")
            )
        } else {
            format!(
                "unknown key (preset `{}` takes: {})",
                preset.name(),
                allowed.join(", ")
            )
        };
        return Err(SpecError::new(extra, message));
    }
    let values = parameter_values(preset, spec)?;
    let mut x = Expansion {
        preset: Some(given_name),
        ..Expansion::default()
    };
    for table in &preset.record.checks {
        let json = substitute(&toml_to_json(&toml::Value::Table(table.clone())), &values)
            .map_err(|m| SpecError::new("preset", format!("preset `{}`: {m}", preset.name())))?;
        let config: CheckConfig = serde_json::from_value(json).map_err(|e| {
            SpecError::new(
                "verify",
                format!("preset `{}` expansion failed: {e}", preset.name()),
            )
        })?;
        x.checks.push(config);
    }
    for table in &preset.record.handshakes {
        let json = substitute(&toml_to_json(&toml::Value::Table(table.clone())), &values)
            .map_err(|m| SpecError::new("preset", format!("preset `{}`: {m}", preset.name())))?;
        let config: HandshakeConfig = serde_json::from_value(json).map_err(|e| {
            SpecError::new(
                "handshake",
                format!("preset `{}` handshake expansion failed: {e}", preset.name()),
            )
        })?;
        x.handshakes.push(config);
    }
    x.responses = responses(&preset.record.responses);
    x.id = preset.record.fields.id.clone();
    x.topic = preset.record.fields.topic.clone();
    x.tenant = preset.record.fields.tenant.clone();
    x.timestamp = preset.record.fields.timestamp.clone();
    x.schema = preset.record.schema.as_deref().map(|text| {
        serde_json::from_str(text).expect("a record's schema is JSON (every_record_is_valid)")
    });
    Ok(x)
}

/// The value of each parameter as given, or its default; `secrets` merges `secret` and
/// `secrets`. Unset optional parameters are absent.
fn parameter_values(
    preset: &Preset,
    spec: &SourceSpec,
) -> Result<BTreeMap<String, Value>, SpecError> {
    let mut values = BTreeMap::new();
    for p in &preset.params {
        let name = p.name();
        let given = spec.params.get(name);
        let preset_name = preset.name();
        if let Some(Value::String(s)) = given {
            if s.is_empty() {
                return Err(SpecError::new(
                    name,
                    format!("is empty (preset `{preset_name}`; an unset environment variable?)"),
                ));
            }
        }
        let value = match (p.kind(), given) {
            (ParamKind::Secret, _) if name == "secret" => {
                let mut all: Vec<Value> = given.cloned().into_iter().collect();
                match spec.params.get("secrets") {
                    Some(Value::Array(list)) => all.extend(list.iter().cloned()),
                    Some(_) => return Err(SpecError::new("secrets", "must be a list of strings")),
                    None => {}
                }
                if all.iter().any(|v| !v.is_string()) {
                    return Err(SpecError::new(name, "must be a string"));
                }
                if all.is_empty() {
                    if p.required() {
                        return Err(SpecError::new(
                            name,
                            format!("preset `{preset_name}` needs `{name}`"),
                        ));
                    }
                    continue;
                }
                values.insert(name.to_owned(), all[0].clone());
                values.insert("secrets".to_owned(), Value::Array(all));
                continue;
            }
            (_, None) => match p.default_value() {
                Some(default) => toml_to_json(default),
                None if p.required() => {
                    let message = match p.kind() {
                        ParamKind::Issuers => format!(
                            "preset `{preset_name}` needs a `[source.{name}]` table: issuer URL → audiences"
                        ),
                        _ => format!("preset `{preset_name}` needs `{name}`"),
                    };
                    return Err(SpecError::new(name, message));
                }
                None => continue,
            },
            (kind, Some(v)) => {
                check_kind(kind, v).map_err(|m| SpecError::new(name, m))?;
                v.clone()
            }
        };
        values.insert(name.to_owned(), value);
    }
    Ok(values)
}

fn check_kind(kind: ParamKind, value: &Value) -> Result<(), String> {
    let ok = match kind {
        ParamKind::Bool => value.is_boolean(),
        ParamKind::Issuers => value.as_object().is_some_and(|m| {
            m.values().all(|v| {
                v.as_array()
                    .is_some_and(|list| list.iter().all(Value::is_string))
            })
        }),
        ParamKind::PublicUrl => {
            let text = value.as_str().unwrap_or("{");
            if text.contains(['{', '}', '$'])
                || !(text.starts_with("https://") || text.starts_with("http://"))
            {
                return Err("must be an http(s) URL such as `https://hooks.example.com`".into());
            }
            true
        }
        _ => value.is_string(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be {}",
            match kind {
                ParamKind::Bool => "true or false",
                ParamKind::Issuers => "a table: issuer URL → list of audiences",
                _ => "a string",
            }
        ))
    }
}

/// TOML → JSON, for handing a record's tables to the checks' deserializers.
pub(crate) fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(list) => Value::Array(list.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}

/// Replaces `$name` by parameter values (see the module's documentation). A key whose
/// whole value names an unset optional parameter is removed.
fn substitute(value: &Value, values: &BTreeMap<String, Value>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => match whole_reference(s) {
            Some(name) => values
                .get(name)
                .cloned()
                .ok_or_else(|| format!("`${name}` is unset"))?,
            None => Value::String(interpolate(s, values)?),
        },
        Value::Array(list) => Value::Array(
            list.iter()
                .map(|v| substitute(v, values))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if let Value::String(s) = v {
                    if let Some(name) = whole_reference(s) {
                        if !values.contains_key(name) {
                            continue;
                        }
                    }
                }
                out.insert(k.clone(), substitute(v, values)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn whole_reference(s: &str) -> Option<&str> {
    let name = s.strip_prefix('$')?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then_some(name)
}

fn interpolate(s: &str, values: &BTreeMap<String, Value>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let len = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        if len == 0 {
            return Err(format!("a lone `$` in `{s}` (write `$$`)"));
        }
        let name = &after[..len];
        match values.get(name) {
            Some(Value::String(v)) => out.push_str(v),
            Some(_) => return Err(format!("`${name}` is not text, in `{s}`")),
            None => return Err(format!("`${name}` is unset, in `{s}`")),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

fn reply(record: &ReplyRecord) -> Reply {
    if record.body.is_empty() {
        Reply::empty(record.status)
    } else if record.text {
        Reply::text(record.status, &record.body)
    } else {
        Reply::json(record.status, &record.body)
    }
}

fn responses(record: &record::ResponsesRecord) -> Responses {
    let mut r = Responses::default();
    if let Some(refused) = &record.refused {
        r = r.refusing_all(reply(refused));
    }
    let set = |slot: &mut Reply, given: &Option<ReplyRecord>| {
        if let Some(given) = given {
            *slot = reply(given);
        }
    };
    set(&mut r.accepted, &record.accepted);
    set(&mut r.missing_credential, &record.missing_credential);
    set(&mut r.rejected, &record.rejected);
    set(&mut r.invalid_payload, &record.invalid_payload);
    set(&mut r.malformed_body, &record.malformed_body);
    set(&mut r.unavailable, &record.unavailable);
    set(&mut r.internal, &record.internal);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_is_valid() {
        let all = catalogue();
        assert!(!all.is_empty());
        let mut seen = std::collections::BTreeSet::new();
        for p in all {
            for name in std::iter::once(p.name()).chain(p.aliases().iter().map(String::as_str)) {
                assert!(seen.insert(name.to_owned()), "{name} is used twice");
            }
            assert!(
                p.docs().starts_with("https://")
                    || (p.category() == "Seed providers" && p.docs().starts_with("seed ")),
                "{}: docs is a URL (or names the seed document)",
                p.name()
            );
            assert!(p.path().starts_with('/'), "{}: path", p.name());
            for reply in [
                &p.record.responses.accepted,
                &p.record.responses.refused,
                &p.record.responses.missing_credential,
                &p.record.responses.rejected,
                &p.record.responses.invalid_payload,
                &p.record.responses.malformed_body,
                &p.record.responses.unavailable,
                &p.record.responses.internal,
            ]
            .into_iter()
            .flatten()
            {
                if !reply.body.is_empty() && !reply.text {
                    serde_json::from_str::<Value>(&reply.body)
                        .unwrap_or_else(|e| panic!("{}: a reply body is not JSON: {e}", p.name()));
                }
            }
            if let Some(schema) = &p.record.schema {
                serde_json::from_str::<Value>(schema)
                    .unwrap_or_else(|e| panic!("{}: schema is not JSON: {e}", p.name()));
            }
            for param in p.params() {
                if param.kind() == ParamKind::Secret {
                    assert!(
                        param.name() == "secret",
                        "{}: a signing secret is called `secret`",
                        p.name()
                    );
                }
                if param.kind() == ParamKind::PublicKey {
                    assert_eq!(param.name(), "public_key", "{}", p.name());
                }
            }
            let (body, content_type) = p.sample("evt_1", time::OffsetDateTime::UNIX_EPOCH);
            if content_type == "application/json" {
                serde_json::from_slice::<Value>(&body)
                    .unwrap_or_else(|e| panic!("{}: the sample is not JSON: {e}", p.name()));
            }
        }
    }

    #[test]
    fn substitution_replaces_whole_values_and_text_and_drops_unset_optionals() {
        let mut values = BTreeMap::new();
        values.insert("secrets".to_owned(), serde_json::json!(["a", "b"]));
        values.insert("account".to_owned(), Value::String("acme".into()));
        let given = serde_json::json!({
            "secrets": "$secrets",
            "audience": "urn:x:$account:$$literal",
            "tolerance": "$tolerance",
            "list": ["$account"],
        });
        let out = substitute(&given, &values).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"secrets": ["a", "b"], "audience": "urn:x:acme:$literal", "list": ["acme"]})
        );
        assert!(substitute(&Value::String("a $ b".into()), &values)
            .unwrap_err()
            .contains("lone"));
        assert!(substitute(&Value::String("x$missing".into()), &values)
            .unwrap_err()
            .contains("unset"));
        assert!(substitute(&Value::String("x$secrets".into()), &values)
            .unwrap_err()
            .contains("not text"));
    }

    #[test]
    fn ready_blocks_parse_as_sources() {
        for p in catalogue() {
            let block = p.source_block();
            let table: toml::Table = toml::from_str(&block)
                .unwrap_or_else(|e| panic!("{}: the block is not TOML: {e}\n{block}", p.name()));
            assert!(table.contains_key("source"), "{}", p.name());
        }
    }
}
