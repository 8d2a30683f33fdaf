//! "IP Whitelist": the addresses a staff member may use the Back Office from, one address or
//! CIDR range per line, IPv4 and IPv6. Empty means anywhere.
//!
//! A whitelist restricts only its holder (it is not a power one grants, so it is no dimension of
//! [`crate::Authority`]); what the rules need is which addresses it admits and whether one list
//! admits everything another does, so that a holder may narrow their own list but never widen
//! or remove it.
//!
//! Laws (property-tested below):
//! - parsing the stored text gives the same whitelist back (`parse(w.to_text()) == w`), and
//!   normalising changes no answer of `admits`;
//! - `a.beyond(&b)` is an address `b` admits and `a` doesn't, and is `None` exactly when `a`
//!   admits every address `b` admits (`a.covers(&b)`); `covers` is reflexive and transitive,
//!   the empty list covers every list, and a list covers each list of some of its own lines.
//!
//! Client addresses are compared in canonical form: an IPv4-mapped IPv6 address
//! (`::ffff:203.0.113.7`, as a dual-stack listener reports IPv4 peers) is its IPv4 address. So a
//! mapped range can't be written in a list (write the IPv4 range), and the mapped block is never
//! an address a list is said to admit.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// At most this many lines: a whitelist is a handful of offices and VPNs, and each sign-in and
/// request compares the address with every one of them.
pub const MAX_ENTRIES: usize = 200;

/// A parsed, normalised whitelist: host bits cleared, ranges inside other ranges dropped,
/// adjacent ranges merged, sorted (IPv4 first). Empty admits every address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct IpWhitelist {
    nets: Vec<IpNet>,
}

/// Why a whitelist was refused: one problem per bad line, each naming its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhitelistError {
    pub problems: Vec<String>,
}

impl fmt::Display for WhitelistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("; "))
    }
}

impl std::error::Error for WhitelistError {}

/// The block of IPv4-mapped IPv6 addresses, `::ffff:0:0/96`.
fn mapped_block() -> IpNet {
    IpNet::V6(Ipv6Net::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96).expect("96 <= 128"))
}

/// Every address: the value an empty list stands for.
fn everywhere() -> [IpNet; 2] {
    [IpNet::V4(Ipv4Net::default()), IpNet::V6(Ipv6Net::default())]
}

/// The address as rules compare it: IPv4-mapped IPv6 addresses as IPv4.
pub fn canonical(addr: IpAddr) -> IpAddr {
    addr.to_canonical()
}

fn parse_line(line: &str) -> Result<IpNet, String> {
    let net = match line.parse::<IpAddr>() {
        Ok(addr) => IpNet::from(addr),
        Err(_) => line.parse::<IpNet>().map_err(|_| {
            format!("“{line}” is not an IPv4 or IPv6 address or CIDR range (e.g. 203.0.113.7, 10.0.0.0/8, 2001:db8::/32)")
        })?,
    };
    if let IpNet::V6(v6) = net {
        if v6.network().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 {
            return Err(format!(
                "“{line}” is an IPv4-mapped IPv6 address; write the IPv4 address or range instead"
            ));
        }
    }
    Ok(net.trunc())
}

impl IpWhitelist {
    /// Anywhere: the empty list.
    pub fn anywhere() -> Self {
        Self::default()
    }

    /// Reads the form's text: one address or CIDR range per line; blank lines and surrounding
    /// spaces are ignored. Every bad line is reported, by its number.
    pub fn parse(text: &str) -> Result<Self, WhitelistError> {
        let mut nets = Vec::new();
        let mut problems = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match parse_line(line) {
                Ok(net) => nets.push(net),
                Err(p) => problems.push(format!("Line {}: {p}", n + 1)),
            }
        }
        if nets.len() > MAX_ENTRIES {
            problems.push(format!(
                "At most {MAX_ENTRIES} addresses or ranges, one per line"
            ));
        }
        if !problems.is_empty() {
            return Err(WhitelistError { problems });
        }
        Ok(Self::from_nets(nets))
    }

    fn from_nets(nets: Vec<IpNet>) -> Self {
        let mut nets = IpNet::aggregate(&nets);
        nets.sort();
        Self { nets }
    }

    /// True for the empty list, which admits every address.
    pub fn is_anywhere(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether a request from `addr` is admitted.
    pub fn admits(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.is_anywhere() || self.nets.iter().any(|n| n.contains(&addr))
    }

    /// Whether a request from this address (as the client address rules give it; `None` when
    /// it is unknown) is admitted. An unknown or unreadable address is admitted only by the
    /// empty list.
    pub fn admits_client(&self, addr: Option<&str>) -> bool {
        match addr.and_then(|a| a.parse::<IpAddr>().ok()) {
            Some(a) => self.admits(a),
            None => self.is_anywhere(),
        }
    }

    /// True when `self` admits every address `other` admits.
    pub fn covers(&self, other: &IpWhitelist) -> bool {
        self.beyond(other).is_none()
    }

    /// An address `other` admits that `self` does not, if there is one: the reason a change
    /// from `self` to `other` widens the list.
    pub fn beyond(&self, other: &IpWhitelist) -> Option<IpAddr> {
        if self.is_anywhere() {
            return None;
        }
        let mut holes = self.nets.clone();
        holes.push(mapped_block());
        let wanted: Vec<IpNet> = if other.is_anywhere() {
            everywhere().to_vec()
        } else {
            other.nets.clone()
        };
        wanted.into_iter().find_map(|n| outside(n, &holes))
    }

    /// The lines, normalised (a single address without its /32 or /128).
    pub fn entries(&self) -> impl Iterator<Item = String> + '_ {
        self.nets.iter().map(|n| {
            if n.prefix_len() == n.max_prefix_len() {
                n.addr().to_string()
            } else {
                n.to_string()
            }
        })
    }

    /// The stored and displayed form: one line per entry, no trailing newline; "" for anywhere.
    pub fn to_text(&self) -> String {
        self.entries().collect::<Vec<_>>().join("\n")
    }
}

impl fmt::Display for IpWhitelist {
    /// The entries on one line, comma-separated ("" for anywhere): for lists and events.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.entries().collect::<Vec<_>>().join(", "))
    }
}

/// An address in `net` that no net of `holes` contains. CIDR ranges are nested or disjoint, so
/// either a hole contains `net`, or none touches it (its first address will do), or the holes
/// touching it lie inside it and one of its halves still has a gap.
fn outside(net: IpNet, holes: &[IpNet]) -> Option<IpAddr> {
    if holes.iter().any(|h| h.contains(&net)) {
        return None;
    }
    if !holes.iter().any(|h| net.contains(h)) {
        return Some(net.network());
    }
    let halves = net.subnets(net.prefix_len() + 1).ok()?;
    halves.into_iter().find_map(|half| outside(half, holes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// Ranges and addresses drawn from two small blocks, so that lists overlap often.
    fn net() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            8 => (any::<u16>(), 16u8..=32).prop_map(|(low, p)| {
                let a = Ipv4Addr::new(10, 0, (low >> 8) as u8, low as u8);
                IpNet::V4(Ipv4Net::new(a, p).unwrap())
            }),
            4 => (any::<u8>(), 120u8..=128).prop_map(|(low, p)| {
                let a = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(low));
                IpNet::V6(Ipv6Net::new(a, p).unwrap())
            }),
            1 => Just(IpNet::V4(Ipv4Net::default())),
            1 => Just(IpNet::V6(Ipv6Net::default())),
        ]
    }

    fn addr() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            (any::<u16>()).prop_map(|low| IpAddr::V4(Ipv4Addr::new(
                10,
                0,
                (low >> 8) as u8,
                low as u8
            ))),
            (any::<u8>()).prop_map(|low| IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                0,
                u16::from(low)
            ))),
            Just("192.0.2.1".parse().unwrap()),
            Just("::ffff:10.0.0.1".parse().unwrap()),
        ]
    }

    fn lines() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(net().prop_map(|n| n.to_string()), 0..6)
    }

    fn list(lines: &[String]) -> IpWhitelist {
        IpWhitelist::parse(&lines.join("\n")).unwrap()
    }

    proptest! {
        #[test]
        fn the_stored_text_parses_back_to_the_same_list(l in lines()) {
            let w = list(&l);
            prop_assert_eq!(IpWhitelist::parse(&w.to_text()).unwrap(), w);
        }

        #[test]
        fn normalising_admits_exactly_what_the_lines_admit(l in lines(), a in addr()) {
            let raw: Vec<IpNet> = l.iter().map(|s| s.parse::<IpNet>().unwrap()).collect();
            let by_lines = raw.is_empty() || raw.iter().any(|n| n.contains(&canonical(a)));
            prop_assert_eq!(list(&l).admits(a), by_lines);
        }

        #[test]
        fn beyond_names_an_address_only_the_other_admits(a in lines(), b in lines()) {
            let (a, b) = (list(&a), list(&b));
            if let Some(x) = a.beyond(&b) {
                prop_assert!(b.admits(x) && !a.admits(x), "{x}");
                prop_assert_eq!(canonical(x), x);
            }
        }

        #[test]
        fn covering_means_admitting_everything_the_other_admits(a in lines(), b in lines(), x in addr()) {
            let (a, b) = (list(&a), list(&b));
            if a.covers(&b) && b.admits(x) {
                prop_assert!(a.admits(x));
            }
        }

        #[test]
        fn a_list_covers_any_of_its_own_lines_and_the_empty_list_covers_all(
            l in lines(), keep in proptest::collection::vec(any::<bool>(), 6)
        ) {
            let some: Vec<String> = l.iter().zip(&keep).filter(|(_, k)| **k).map(|(s, _)| s.clone()).collect();
            let (whole, part) = (list(&l), list(&some));
            prop_assert!(whole.covers(&whole));
            prop_assert!(IpWhitelist::anywhere().covers(&whole));
            if !some.is_empty() {
                prop_assert!(whole.covers(&part));
            }
        }

        #[test]
        fn covers_is_transitive(a in lines(), b in lines(), c in lines()) {
            let (a, b, c) = (list(&a), list(&b), list(&c));
            if a.covers(&b) && b.covers(&c) {
                prop_assert!(a.covers(&c));
            }
        }
    }

    #[test]
    fn lines_are_normalised() {
        let w = IpWhitelist::parse(
            " 10.0.0.5/24 \n\n203.0.113.7\n10.0.0.0/25\n2001:DB8::1/32\n10.0.1.0/24\n203.0.113.7/32",
        )
        .unwrap();
        assert_eq!(w.to_text(), "10.0.0.0/23\n203.0.113.7\n2001:db8::/32");
        assert_eq!(w.to_string(), "10.0.0.0/23, 203.0.113.7, 2001:db8::/32");
        assert!(IpWhitelist::parse("\n  \n").unwrap().is_anywhere());
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        let e = IpWhitelist::parse(
            "10.0.0.1\n10.0.0.300\n\n10.0.0.0/33\n::ffff:10.0.0.1\nfe80::1%eth0",
        )
        .unwrap_err();
        assert_eq!(e.problems.len(), 4, "{e}");
        assert!(e.problems[0].starts_with("Line 2: “10.0.0.300”"), "{e}");
        assert!(e.problems[1].starts_with("Line 4: “10.0.0.0/33”"), "{e}");
        assert!(
            e.problems[2].starts_with("Line 5: “::ffff:10.0.0.1” is an IPv4-mapped"),
            "{e}"
        );
        assert!(e.problems[3].starts_with("Line 6:"), "{e}");
        let many = (0..=MAX_ENTRIES).map(|i| format!("10.1.{}.{}", i / 256, i % 256));
        let e = IpWhitelist::parse(&many.collect::<Vec<_>>().join("\n")).unwrap_err();
        assert_eq!(
            e.problems,
            vec![format!(
                "At most {MAX_ENTRIES} addresses or ranges, one per line"
            )]
        );
    }

    #[test]
    fn admits_v4_v6_ranges_and_mapped_v4_clients() {
        let w = IpWhitelist::parse("198.51.100.0/24\n2001:db8:abcd::/48").unwrap();
        assert!(w.admits_client(Some("198.51.100.77")));
        assert!(w.admits_client(Some("::ffff:198.51.100.77")));
        assert!(w.admits_client(Some("2001:db8:abcd:12::9")));
        assert!(!w.admits_client(Some("198.51.101.1")));
        assert!(!w.admits_client(Some("2001:db8:abce::1")));
        assert!(!w.admits_client(None));
        assert!(!w.admits_client(Some("not an address")));
        assert!(IpWhitelist::anywhere().admits_client(None));
    }

    #[test]
    fn widening_and_removing_are_found() {
        let office = IpWhitelist::parse("198.51.100.0/24").unwrap();
        let narrower = IpWhitelist::parse("198.51.100.0/25\n198.51.100.200").unwrap();
        let wider = IpWhitelist::parse("198.51.100.0/23").unwrap();
        assert!(office.covers(&narrower));
        assert_eq!(office.beyond(&wider), Some("198.51.101.0".parse().unwrap()));
        assert_eq!(
            office.beyond(&IpWhitelist::anywhere()),
            Some("0.0.0.0".parse().unwrap())
        );
        let halves = IpWhitelist::parse("198.51.100.0/25\n198.51.100.128/25").unwrap();
        assert!(halves.covers(&office), "two halves admit the whole");
    }
}
