//! Addresses: coarse descriptions of where a request came from (for emails and confirmation
//! pages), the keys rate limits count under, trusted-proxy ranges, and which addresses are
//! public (the only ones Keyward fetches a client's keys from, unless allowed).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

/// Why `ip` is not a public internet address (loopback, private, link-local, …), or None for
/// a public one. An outbound fetch to a client-supplied URL (its `jwks_uri`) goes only to
/// public addresses, so a client cannot make Keyward reach its own host or network
/// (server-side request forgery). Ranges from the IANA special-purpose registries
/// (RFC 6890 and its updates); IPv4 inside IPv6 (mapped, NAT64, 6to4) is judged as IPv4.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

const V4_RANGES: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" (0.0.0.0/8)"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private (10.0.0.0/8)"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "shared carrier-grade NAT (100.64.0.0/10)"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local (169.254.0.0/16)"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private (172.16.0.0/12)"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments (192.0.0.0/24)"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation (192.0.2.0/24)"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast (192.88.99.0/24)"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private (192.168.0.0/16)"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking (198.18.0.0/15)"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation (198.51.100.0/24)"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation (203.0.113.0/24)"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved (240.0.0.0/4, with broadcast)"),
];

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    V4_RANGES.iter().find(|(net, prefix, _)| in_v4(ip, *net, *prefix)).map(|(_, _, why)| *why)
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX << (32 - u32::from(prefix));
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: u128, prefix: u8) -> bool {
    let mask = u128::MAX << (128 - u32::from(prefix));
    u128::from(ip) & mask == net & mask
}

/// The IPv4 address carried in the low 32 bits.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    // NAT64 (RFC 6052) reaches the IPv4 address in the low bits.
    if in_v6(ip, 0x0064_ff9b << 96, 96) {
        return non_public_v4(low_v4(ip));
    }
    // 6to4 (RFC 3056) carries the IPv4 address in bits 16..48.
    if in_v6(ip, 0x2002 << 112, 16) {
        return non_public_v4(Ipv4Addr::from(((u128::from(ip) >> 80) & 0xffff_ffff) as u32));
    }
    const RANGES: &[(u128, u8, &str)] = &[
        (0xfc00 << 112, 7, "unique local (fc00::/7)"),
        (0xfe80 << 112, 10, "link-local (fe80::/10)"),
        (0xfec0 << 112, 10, "site-local (fec0::/10)"),
        (0xff00 << 112, 8, "multicast (ff00::/8)"),
        (0x2001_0db8 << 96, 32, "documentation (2001:db8::/32)"),
        (0x3fff << 112, 20, "documentation (3fff::/20)"),
        (0x2001 << 112, 23, "IETF protocol assignments (2001::/23, Teredo included)"),
    ];
    if let Some((_, _, why)) = RANGES.iter().find(|(net, prefix, _)| in_v6(ip, *net, *prefix)) {
        return Some(why);
    }
    // Only global unicast (2000::/3) is routed on the internet; the rest is reserved,
    // deprecated (IPv4-compatible ::a.b.c.d) or a local use (discard 100::/64, 5f00::/16 SRv6).
    if !in_v6(ip, 0x2000 << 112, 3) {
        return Some("not global unicast (outside 2000::/3)");
    }
    None
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
    fn f5_only_public_addresses_are_public() {
        for (addr, why) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("fd12:3456::1", "unique local"),
            ("100.64.0.1", "carrier-grade"),
            ("0.0.0.0", "this network"),
            ("::", "unspecified"),
            ("224.0.0.251", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("192.0.2.10", "documentation"),
            ("2001:db8::1", "documentation"),
            ("64:ff9b::a00:1", "private"),
            ("2002:7f00:1::1", "loopback"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("::127.0.0.1", "not global unicast"),
            ("100::1", "not global unicast"),
        ] {
            let got = non_public_range(ip(addr));
            assert!(got.is_some_and(|g| g.contains(why)), "{addr}: {got:?}, expected {why}");
        }
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700::1111",
        ] {
            assert_eq!(non_public_range(ip(addr)), None, "{addr} is public");
        }
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
