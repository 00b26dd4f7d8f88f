//! `hookgate keygen`: key pairs (PEM and JWK) and Standard Webhooks secrets.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use hookgate_verify::keygen::{generate_whsec, generate_whsk, KeyPair};
use hookgate_verify::Algorithm;

use crate::{CommandResult, Failure};

#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// ES512, ES384, ES256, RS256, PS256, EdDSA; whsec (Standard Webhooks secret) or whsk (Standard Webhooks Ed25519 key).
    #[arg(long)]
    pub alg: String,
    /// Write PREFIX.pem (private, mode 0600), PREFIX.pub.pem and PREFIX.jwk.json (public) instead of printing.
    #[arg(long)]
    pub out: Option<String>,
    /// The `kid` of the JWK.
    #[arg(long, default_value = "hookgate")]
    pub kid: String,
}

pub(crate) fn keygen(args: KeygenArgs) -> CommandResult {
    match args.alg.as_str() {
        "whsec" | "whsk" => {
            let secret = if args.alg == "whsec" {
                generate_whsec()
            } else {
                generate_whsk()
            }
            .map_err(Failure::runtime)?;
            match &args.out {
                Some(prefix) => {
                    write_private(&format!("{prefix}.secret"), &format!("{secret}\n"))?;
                    if args.alg == "whsk" {
                        let public = hookgate_verify::standard_webhooks_public_key(&secret)
                            .map_err(Failure::runtime)?;
                        write(&format!("{prefix}.pub"), &format!("{public}\n"))?;
                    }
                }
                None => {
                    outln!("{secret}");
                    if args.alg == "whsk" {
                        outln!(
                            "{}",
                            hookgate_verify::standard_webhooks_public_key(&secret)
                                .map_err(Failure::runtime)?
                        );
                    }
                }
            }
        }
        name => {
            let algorithm =
                Algorithm::parse("--alg", name).map_err(|e| Failure::config(e.message))?;
            let pair = KeyPair::generate(algorithm, &args.kid)
                .map_err(|e| Failure::config(format!("--alg {name}: {e}")))?;
            let jwk = serde_json::to_string_pretty(&pair.public_jwk).expect("a JWK serialises");
            match &args.out {
                Some(prefix) => {
                    write_private(&format!("{prefix}.pem"), &pair.private_pem)?;
                    write(&format!("{prefix}.pub.pem"), &pair.public_pem)?;
                    write(&format!("{prefix}.jwk.json"), &format!("{jwk}\n"))?;
                    eprintln!("wrote {prefix}.pem (private), {prefix}.pub.pem and {prefix}.jwk.json (public)");
                }
                None => out!("{}{}{jwk}\n", pair.private_pem, pair.public_pem),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write(path: &str, contents: &str) -> Result<(), Failure> {
    if Path::new(path).exists() {
        return Err(Failure::config(format!(
            "{path} exists; not overwriting it"
        )));
    }
    std::fs::write(path, contents)
        .map_err(|e| Failure::runtime(format!("cannot write {path}: {e}")))
}

fn write_private(path: &str, contents: &str) -> Result<(), Failure> {
    write(path, contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Failure::runtime(format!("cannot restrict {path}: {e}")))?;
    }
    Ok(())
}
