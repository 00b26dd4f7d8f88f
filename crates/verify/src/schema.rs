//! Payload validation with JSON Schema. Remote references are never fetched: the crate is
//! built without its HTTP and file resolvers.

use serde_json::Value;

use crate::error::{ErrorKind, SpecError, VerifyError};
use crate::template::Context;

/// A compiled payload schema.
#[derive(Debug)]
pub struct PayloadSchema {
    validator: jsonschema::Validator,
}

impl PayloadSchema {
    /// Compiles `schema`: a JSON Schema as a value, or as JSON text.
    pub fn build(key: &str, schema: &Value) -> Result<PayloadSchema, SpecError> {
        let parsed;
        let schema = match schema {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text)
                    .map_err(|e| SpecError::new(key, format!("not JSON: {e}")))?;
                &parsed
            }
            other => other,
        };
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| SpecError::new(key, format!("not a valid JSON Schema: {e}")))?;
        Ok(PayloadSchema { validator })
    }

    /// Validates the request body; the error names up to three failing locations.
    pub fn validate(&self, ctx: &Context<'_, '_>) -> Result<(), VerifyError> {
        let json = ctx
            .json()
            .ok_or_else(|| VerifyError::new(ErrorKind::InvalidPayload, "body is not JSON"))?;
        let problems: Vec<String> = self
            .validator
            .iter_errors(json)
            .take(3)
            .map(|e| {
                let at = e.instance_path.to_string();
                let message: String = e.to_string().chars().take(200).collect();
                if at.is_empty() {
                    message
                } else {
                    format!("{at}: {message}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(VerifyError::new(
                ErrorKind::InvalidPayload,
                problems.join("; "),
            ))
        }
    }
}

/// The payload model of Trivial Security's webhooks (as their documentation describes them): `event_id` a UUID,
/// `event_name` one of the fifteen event names, `timestamp` a date-time (Pydantic also
/// accepts naive date-times and Unix numbers, so they are accepted here), `payload` an object.
pub const TRIVIALSEC_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["event_id", "event_name", "timestamp", "payload"],
  "properties": {
    "event_id": {"type": "string", "format": "uuid"},
    "event_name": {"enum": [
      "hosted_monitoring", "hosted_scanner", "self_hosted_uploads", "early_warning_email",
      "early_warning_domain", "early_warning_ip", "new_findings_certificates",
      "new_findings_domains", "client_status", "client_activity", "scanner_configurations",
      "report_created", "report_deleted", "account_activity", "member_activity"
    ]},
    "timestamp": {"anyOf": [
      {"type": "string", "format": "date-time"},
      {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?$"},
      {"type": "number"}
    ]},
    "payload": {"type": "object"}
  }
}"#;
