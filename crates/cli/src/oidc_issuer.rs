//! `hookgate oidc-issuer`: a local OIDC issuer (discovery + JWKS of one key) for testing.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hookgate_verify::keygen::KeyPair;

use crate::{CommandResult, Failure};

#[derive(Args)]
pub(crate) struct IssuerArgs {
    /// The issuer's private key (PEM); `hookgate keygen --alg RS256 --out issuer` makes one.
    #[arg(long)]
    pub key: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: String,
    /// The issuer URL to announce (default: http://<listen address>).
    #[arg(long)]
    pub issuer: Option<String>,
    /// The key's `kid`.
    #[arg(long, default_value = "hookgate")]
    pub kid: String,
}

pub(crate) fn run(args: IssuerArgs) -> CommandResult {
    let pem = std::fs::read_to_string(&args.key)
        .map_err(|e| Failure::config(format!("cannot read {}: {e}", args.key.display())))?;
    let pair = KeyPair::from_private_pem(&pem, None, &args.kid)
        .map_err(|e| Failure::config(format!("{}: {e}", args.key.display())))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(e.to_string()))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen).await.map_err(|e| Failure::runtime(format!("cannot listen on {}: {e}", args.listen)))?;
        let address = listener.local_addr().map_err(|e| Failure::runtime(e.to_string()))?;
        let issuer = args.issuer.clone().unwrap_or_else(|| format!("http://{address}"));
        tracing::info!(kid = %args.kid, alg = pair.algorithm.name(), "OIDC issuer {issuer} listening on http://{address} (discovery: {issuer}/.well-known/openid-configuration)");
        hookgate_server::issuer::serve(listener, &issuer, pair.jwks(), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure::runtime(e.to_string()))
    })?;
    Ok(ExitCode::SUCCESS)
}
