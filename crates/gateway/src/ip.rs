//! Client addresses: allow-list entries (addresses or CIDR blocks, v4 and v6) and the client
//! IP behind trusted proxies (`docs/design-decisions.md` 11).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One allow-list entry: an address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IpRule {
    network: IpAddr,
    prefix: u8,
}

/// `::ffff:a.b.c.d` is `a.b.c.d`.
#[must_use]
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl IpRule {
    /// Parses `1.2.3.4`, `10.0.0.0/8`, `2001:db8::1`, `2001:db8::/32`. Host bits below the
    /// prefix must be zero.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR block"))?;
        let ip = canonical(ip);
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                let p: u8 = p
                    .parse()
                    .map_err(|_| format!("{text:?}: the prefix length is not a number"))?;
                if p > max {
                    return Err(format!("{text:?}: the prefix length is over {max}"));
                }
                p
            }
        };
        let rule = Self {
            network: ip,
            prefix,
        };
        if rule.mask(ip) != ip {
            return Err(format!(
                "{text:?}: host bits are set below the /{prefix} prefix (write {}/{prefix})",
                rule.mask(ip)
            ));
        }
        Ok(rule)
    }

    fn mask(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                IpAddr::V4(Ipv4Addr::from(bits & mask))
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        }
    }

    /// Whether `ip` is inside this entry.
    #[must_use]
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.network.is_ipv4() && self.mask(ip) == self.network
    }
}

impl fmt::Display for IpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.network.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

/// Finds the client address: the peer, unless the peer is a trusted proxy; then the
/// forwarded addresses (all header instances joined in order) are walked from the right,
/// trusted proxies skipped, and the first untrusted address is the client.
#[must_use]
pub(crate) fn client_ip(peer: IpAddr, trusted: &[IpRule], forwarded_for: &[&str]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for value in forwarded_for.iter().rev() {
        for item in value.rsplit(',') {
            let Some(ip) = parse_forwarded_item(item) else {
                // An unparsable hop: stop at the last address we could trust.
                return client;
            };
            client = ip;
            if !is_trusted(ip) {
                return ip;
            }
        }
    }
    client
}

/// One `X-Forwarded-For` item (`1.2.3.4`, `[::1]:80`, `1.2.3.4:5678`) or one `Forwarded`
/// `for=` value.
fn parse_forwarded_item(item: &str) -> Option<IpAddr> {
    let item = item.trim();
    let item = item
        .split(';')
        .find_map(|part| {
            let part = part.trim();
            part.get(..4)
                .filter(|p| p.eq_ignore_ascii_case("for="))
                .map(|_| &part[4..])
        })
        .unwrap_or(item)
        .trim_matches('"');
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = item.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok().map(canonical);
    }
    let (host, _port) = item.rsplit_once(':')?;
    host.parse().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn rules() {
        let r = IpRule::parse("10.0.0.0/8").expect("cidr");
        assert!(r.contains(ip("10.1.2.3")));
        assert!(r.contains(ip("::ffff:10.1.2.3")));
        assert!(!r.contains(ip("11.0.0.1")));
        assert!(IpRule::parse("10.0.0.1/8").is_err());
        assert!(IpRule::parse("10.0.0.0/33").is_err());
        assert!(IpRule::parse("nope").is_err());
        let v6 = IpRule::parse("2001:db8::/32").expect("v6");
        assert!(v6.contains(ip("2001:db8::5")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert_eq!(
            IpRule::parse("::ffff:1.2.3.4").expect("mapped").to_string(),
            "1.2.3.4"
        );
        assert!(
            IpRule::parse("0.0.0.0/0")
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
    }

    #[test]
    fn client_behind_proxies() {
        let trusted = [IpRule::parse("10.0.0.0/8").expect("cidr")];
        assert_eq!(
            client_ip(ip("8.8.8.8"), &trusted, &["1.1.1.1"]),
            ip("8.8.8.8")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &trusted, &["1.1.1.1, 10.0.0.2"]),
            ip("1.1.1.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &trusted, &["9.9.9.9, 1.1.1.1", "10.0.0.3"]),
            ip("1.1.1.1")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &trusted, &[]), ip("10.0.0.1"));
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &trusted, &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                &trusted,
                &["for=\"1.2.3.4:80\";proto=https"]
            ),
            ip("1.2.3.4")
        );
    }
}
