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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_cut_to_their_network() {
        assert_eq!(coarse_ip("203.0.113.77".parse().expect("ip")), "203.0.113.0/24");
        assert_eq!(coarse_ip("192.168.1.20".parse().expect("ip")), "a private network (192.168.1.0/24)");
        assert_eq!(coarse_ip("127.0.0.1".parse().expect("ip")), "this computer (localhost)");
        assert_eq!(coarse_ip("2001:db8:1:2::5".parse().expect("ip")), "2001:db8:1::/48");
        assert_eq!(coarse_ip("::ffff:203.0.113.9".parse().expect("ip")), "203.0.113.0/24");
    }
}
