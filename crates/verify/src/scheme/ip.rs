//! `kind = "ip"`: an allowlist of client networks. Forwarded-for headers are believed only
//! when the TCP peer is a configured proxy.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use super::Verified;
use crate::error::{ErrorKind, SpecError, VerifyError};
use crate::template::Context;

/// Configuration of an IP allowlist.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpConfig {
    /// Allowed networks (CIDR) or addresses.
    pub allow: Vec<String>,
    /// Proxies whose forwarded-for header is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The forwarded-for header; default `X-Forwarded-For`.
    pub forwarded_header: Option<String>,
}

/// A built IP allowlist.
#[derive(Debug, Clone)]
pub struct IpCheck {
    allow: Vec<IpNet>,
    proxies: Vec<IpNet>,
    forwarded_header: String,
}

fn parse_nets(key: &str, list: &[String]) -> Result<Vec<IpNet>, SpecError> {
    list.iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    SpecError::new(
                        format!("{key}[{i}]"),
                        format!("`{text}` is not an address or CIDR network"),
                    )
                })
        })
        .collect()
}

impl IpCheck {
    /// Validates the configuration.
    pub fn build(config: IpConfig) -> Result<Self, SpecError> {
        let allow = parse_nets("allow", &config.allow)?;
        if allow.is_empty() {
            return Err(SpecError::new("allow", "name at least one network"));
        }
        Ok(IpCheck {
            allow,
            proxies: parse_nets("trusted_proxies", &config.trusted_proxies)?,
            forwarded_header: config
                .forwarded_header
                .unwrap_or_else(|| "X-Forwarded-For".into()),
        })
    }

    /// The client address: the peer, or — when the peer is a trusted proxy — the last
    /// address in the forwarded-for chain that is not itself a trusted proxy.
    pub fn client_address(&self, ctx: &Context<'_, '_>) -> Option<IpAddr> {
        let mut client = ctx.request.peer?;
        if !self.is_proxy(client) {
            return Some(client);
        }
        let chain: Vec<&str> = ctx
            .request
            .headers
            .get_all(&self.forwarded_header)
            .flat_map(|v| v.split(','))
            .collect();
        for hop in chain.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(addr) => {
                    client = addr;
                    if !self.is_proxy(addr) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Some(client)
    }

    fn is_proxy(&self, addr: IpAddr) -> bool {
        self.proxies.iter().any(|n| n.contains(&addr))
    }

    pub(crate) fn verify(&self, ctx: &Context<'_, '_>) -> Result<Verified, VerifyError> {
        let client = self
            .client_address(ctx)
            .ok_or_else(|| VerifyError::new(ErrorKind::IpDenied, "client address unknown"))?;
        if self.allow.iter().any(|n| n.contains(&client)) {
            Ok(Verified::new("ip"))
        } else {
            Err(VerifyError::new(
                ErrorKind::IpDenied,
                format!("client {client} is not in the allowlist"),
            ))
        }
    }
}
