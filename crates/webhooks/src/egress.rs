//! Where the relay may send: a defence against server-side request forgery through
//! marketplace-configured URLs (OWASP API7).
//!
//! Under [`EgressPolicy::PublicHttpsOnly`] a URL must be `https`, must not name a non-public IP
//! address, and its host name is resolved by [`GuardedResolver`], which drops every non-public
//! address. The connection goes to an address the resolver returned, so a name that re-resolves
//! to an internal address between a check and the connection (DNS rebinding) gains nothing.
//! The relay's HTTP client ignores proxy environment variables, so the check cannot be bypassed
//! through a proxy either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which destinations the relay may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EgressPolicy {
    /// Production: `https` URLs that resolve to public addresses only.
    #[default]
    PublicHttpsOnly,
    /// Development and tests: any `http` or `https` URL, including loopback and private networks.
    Unrestricted,
}

/// Why a URL is refused before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The URL does not parse, or its scheme is not http(s).
    #[error("the endpoint URL is not a valid http(s) URL")]
    InvalidUrl,
    /// Plain http is refused by the egress policy.
    #[error("the egress policy requires https")]
    HttpsRequired,
    /// The URL names a loopback, private, link-local or otherwise non-public address.
    #[error("the egress policy refuses non-public addresses")]
    NonPublicAddress,
}

/// Checks a URL against the policy before sending; the resolver checks host names later.
pub fn check_url(url: &reqwest::Url, policy: EgressPolicy) -> Result<(), EgressError> {
    match url.scheme() {
        "https" => {}
        "http" if policy == EgressPolicy::Unrestricted => {}
        "http" => return Err(EgressError::HttpsRequired),
        _ => return Err(EgressError::InvalidUrl),
    }
    let host = url.host_str().ok_or(EgressError::InvalidUrl)?;
    if policy == EgressPolicy::PublicHttpsOnly {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>()
            && !is_public(ip)
        {
            return Err(EgressError::NonPublicAddress);
        }
        if host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost")
        {
            return Err(EgressError::NonPublicAddress);
        }
    }
    Ok(())
}

/// True for addresses on the public internet; false for loopback, private, link-local (including
/// the 169.254.169.254 metadata service), shared (CGNAT), documentation, benchmarking,
/// multicast, broadcast, unspecified and reserved ranges, and for IPv6 forms of any of them.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // Documentation (2001:db8::/32), and IPv4-compatible or NAT64 forms, which embed IPv4
        // addresses that were not checked.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
        || ip.segments()[..6].iter().all(|s| *s == 0))
}

/// A DNS resolver that returns only public addresses, and fails when a name has none.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved.filter(|a| is_public(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(EgressError::NonPublicAddress)
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(s)), "{s}");
        }
        for s in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip(s)), "{s}");
        }
    }

    #[test]
    fn the_strict_policy_refuses_http_localhost_and_internal_literals() {
        let url = |s: &str| reqwest::Url::parse(s).expect("url");
        let strict = EgressPolicy::PublicHttpsOnly;
        assert_eq!(check_url(&url("https://example.com/h"), strict), Ok(()));
        assert_eq!(
            check_url(&url("http://example.com/h"), strict),
            Err(EgressError::HttpsRequired)
        );
        for internal in [
            "https://127.0.0.1/h",
            "https://[::1]/h",
            "https://169.254.169.254/latest",
            "https://localhost:8443/h",
            "https://api.localhost/h",
        ] {
            assert_eq!(
                check_url(&url(internal), strict),
                Err(EgressError::NonPublicAddress),
                "{internal}"
            );
        }
        assert_eq!(
            check_url(&url("ftp://example.com/"), strict),
            Err(EgressError::InvalidUrl)
        );
        let open = EgressPolicy::Unrestricted;
        assert_eq!(check_url(&url("http://127.0.0.1:9/h"), open), Ok(()));
        assert_eq!(
            check_url(&url("ftp://example.com/"), open),
            Err(EgressError::InvalidUrl)
        );
    }

    #[tokio::test]
    async fn the_guarded_resolver_refuses_names_that_resolve_only_to_loopback() {
        let name: Name = "localhost".parse().expect("name");
        let resolved = GuardedResolver.resolve(name).await;
        assert!(resolved.is_err());
    }
}
