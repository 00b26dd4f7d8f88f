//! `hookgate verify`: verify a captured raw HTTP request offline, as of any time, and say
//! in one line why it passes or fails.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use hookgate_verify::timestamp::{parse_timestamp, TimestampFormat};
use hookgate_verify::{ErrorKind, KeyLookup, KeySet};

use crate::raw_request::RawRequest;
use crate::{CommandResult, Failure, EXIT_REFUSED};

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The configuration file.
    #[arg(long, short, default_value = "hookgate.toml")]
    pub config: PathBuf,
    /// The source to verify as.
    #[arg(long)]
    pub source: String,
    /// The captured request: request line, headers, blank line, body.
    #[arg(long)]
    pub request: PathBuf,
    /// Verify as of this time (RFC 3339 or Unix seconds) instead of now.
    #[arg(long)]
    pub at: Option<String>,
    /// OIDC: the issuer's JWK Set from a file instead of fetching it.
    #[arg(long)]
    pub jwks: Option<PathBuf>,
}

/// The same key set for every trusted issuer (from `--jwks`).
struct FixedKeys(Arc<KeySet>);

impl KeyLookup for FixedKeys {
    fn keys(&self, _issuer: &str) -> Option<Arc<KeySet>> {
        Some(self.0.clone())
    }
}

pub(crate) fn verify(args: VerifyArgs) -> CommandResult {
    // Only this source's secrets need to be set, not every secret of the file.
    let source = hookgate_server::Config::load_source(
        &args.config,
        &args.source,
        &hookgate_server::config::ProcessEnvironment,
    )
    .map_err(Failure::config)?;
    let bytes = std::fs::read(&args.request)
        .map_err(|e| Failure::config(format!("cannot read {}: {e}", args.request.display())))?;
    let raw = RawRequest::parse(&bytes)
        .map_err(|e| Failure::config(format!("{}: {e:#}", args.request.display())))?;
    let at = match &args.at {
        Some(text) => parse_timestamp(text, TimestampFormat::Auto)
            .map_err(|e| Failure::config(format!("--at: {e}")))?,
        None => time::OffsetDateTime::now_utc(),
    };
    let request = raw.to_request();
    let result = match &args.jwks {
        Some(path) => {
            let json = std::fs::read(path)
                .map_err(|e| Failure::config(format!("cannot read {}: {e}", path.display())))?;
            let set = KeySet::from_jwks(&json)
                .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
            source
                .source
                .accept(&request, at, &FixedKeys(Arc::new(set)))
        }
        None => {
            let first = source
                .source
                .accept(&request, at, &HashMap::<String, Arc<KeySet>>::new());
            match first {
                // Keys are needed: fetch them from the (trusted) issuer, as the server does.
                Err(e) if e.kind() == ErrorKind::KeysNotLoaded => {
                    let issuer = e.issuer().unwrap_or_default().to_owned();
                    let oidc = source
                        .source
                        .oidc()
                        .find(|o| o.issuers().any(|i| i == issuer))
                        .expect("the error names a configured issuer");
                    let cache = hookgate_server::jwks::KeyCache::new([(
                        issuer.clone(),
                        oidc.allow_http(),
                        oidc.jwks_cache(),
                    )]);
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| Failure::runtime(e.to_string()))?;
                    runtime
                        .block_on(cache.refresh(&issuer, false))
                        .map_err(|e| {
                            Failure::runtime(format!("{e} (pass --jwks FILE to verify offline)"))
                        })?;
                    source.source.accept(&request, at, &cache)
                }
                other => other,
            }
        }
    };
    match result {
        Ok(accepted) => {
            let v = &accepted.verified;
            let mut line = format!("ok: {}", v.scheme);
            for (label, value) in [
                ("key", &v.key_id),
                ("issuer", &v.issuer),
                ("id", &accepted.meta.id),
                ("topic", &accepted.meta.topic),
            ] {
                if let Some(value) = value {
                    line.push_str(&format!(" {label}={value}"));
                }
            }
            outln!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            outln!("{}: {}", e.kind(), e.detail());
            Ok(ExitCode::from(EXIT_REFUSED))
        }
    }
}
