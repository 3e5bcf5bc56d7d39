//! Coarse descriptions of where a request came from, for emails and confirmation pages:
//! enough for a person to recognise their own network, not a precise address.

use std::net::IpAddr;

/// `203.0.113.0/24`, `2001:db8:1::/48`, or a plain phrase for local networks.
pub fn coarse_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => "this computer (localhost)".into(),
        IpAddr::V6(v6) if v6.is_loopback() => "this computer (localhost)".into(),
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            let net = format!("{a}.{b}.{c}.0/24");
            if v4.is_private() || v4.is_link_local() { format!("a private network ({net})") } else { net }
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => coarse_ip(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        },
    }
}

/// The key a per-client limit counts under: an IPv4 address as itself (also when it
/// arrives IPv4-mapped, `::ffff:1.2.3.4`, on a dual-stack listener), an IPv6 address
/// cut to its /64 (one subscriber's network; rotating the low bits buys nothing).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..16].fill(0);
                IpAddr::V6(octets.into())
            }
        },
        v4 => v4,
    }
}

/// An address range (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, p)) => (ip.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr: ip, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy; then the nearest
/// address in `X-Forwarded-For` (read right to left) that is not itself a trusted proxy.
/// Entries a client could have forged (left of the first untrusted one) are never used.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut nearest = peer;
    for entry in forwarded_for.unwrap_or("").rsplit(',') {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else { return nearest };
        nearest = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let trusted = [Cidr::parse("10.0.0.0/8").expect("cidr"), Cidr::parse("127.0.0.1").expect("ip")];
        // From an untrusted peer the header is ignored.
        assert_eq!(client_ip(ip("198.51.100.7"), Some("203.0.113.9"), &trusted), ip("198.51.100.7"));
        // Through one proxy.
        assert_eq!(client_ip(ip("127.0.0.1"), Some("203.0.113.9"), &trusted), ip("203.0.113.9"));
        // A forged leftmost entry is not used: the nearest untrusted hop is.
        assert_eq!(client_ip(ip("10.1.2.3"), Some("1.2.3.4, 203.0.113.9, 10.0.0.5"), &trusted), ip("203.0.113.9"));
        // No header, or garbage: the proxy itself.
        assert_eq!(client_ip(ip("10.1.2.3"), None, &trusted), ip("10.1.2.3"));
        assert_eq!(client_ip(ip("10.1.2.3"), Some("nonsense"), &trusted), ip("10.1.2.3"));
        assert!(Cidr::parse("2001:db8::/32").expect("v6").contains(ip("2001:db8:5::1")));
        assert!(!Cidr::parse("2001:db8::/32").expect("v6").contains(ip("2001:db9::1")));
        assert!(Cidr::parse("10.0.0.0/33").is_none() && Cidr::parse("ten").is_none());
    }

    #[test]
    fn f7_limit_keys_are_ipv4_addresses_and_ipv6_slash_64() {
        assert_eq!(limit_key(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(limit_key(ip("203.0.113.9")), ip("203.0.113.9"));
        assert_ne!(limit_key(ip("::ffff:203.0.113.9")), limit_key(ip("::ffff:198.51.100.7")));
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("2001:db8:1:2::1")), limit_key(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(limit_key(ip("2001:db8:1:2::1")), limit_key(ip("2001:db8:1:3::1")));
        assert_eq!(limit_key(ip("::1")), ip("::"));
    }

    #[test]
    fn addresses_are_cut_to_their_network() {
        assert_eq!(coarse_ip("203.0.113.77".parse().expect("ip")), "203.0.113.0/24");
        assert_eq!(coarse_ip("192.168.1.20".parse().expect("ip")), "a private network (192.168.1.0/24)");
        assert_eq!(coarse_ip("127.0.0.1".parse().expect("ip")), "this computer (localhost)");
        assert_eq!(coarse_ip("2001:db8:1:2::5".parse().expect("ip")), "2001:db8:1::/48");
        assert_eq!(coarse_ip("::ffff:203.0.113.9".parse().expect("ip")), "203.0.113.0/24");
    }
}
