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
