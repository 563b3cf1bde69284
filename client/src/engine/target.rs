//! What the user asked to connect to: `https://host[:port][/path]`,
//! `host:port`, `host` or `[v6addr]:port`, with curl's `--resolve`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use quicprobe_verifier::PeerName;

use crate::engine::request::RequestSpec;

/// The port when the target names none.
pub const DEFAULT_PORT: u16 = 443;

/// A parsed target, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as written (without brackets for IPv6).
    pub host: String,
    pub port: u16,
    /// The path of an https URL ("/" when none).
    pub path: String,
    /// What to ask once connected: an https:// URL asks for its path, a
    /// bare host:port for the handshake only; `get` fills in its own.
    pub requests: Vec<RequestSpec>,
}

/// Why a target or a --resolve entry could not be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error(
        "{0:?}: not a target (expected https://host[:port][/path], host:port or [v6addr]:port)"
    )]
    Malformed(String),
    #[error("{0:?}: only https:// URLs can be dialled over QUIC")]
    Scheme(String),
    #[error("{0:?}: bad port")]
    Port(String),
    #[error("--resolve {0:?}: expected host:port:address[,address]...")]
    Resolve(String),
    #[error("{host}: cannot resolve: {reason}")]
    Lookup { host: String, reason: String },
    #[error(
        "--connect-to {0:?}: expected HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT (any may be empty)"
    )]
    ConnectTo(String),
    #[error("{host}: no {family} address")]
    NoAddressOfFamily { host: String, family: &'static str },
}

/// `-4` / `-6`: which addresses may be dialled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Family {
    #[default]
    Any,
    V4,
    V6,
}

impl Family {
    /// From the `-4` and `-6` flags (clap keeps them exclusive).
    pub fn from_flags(ipv4: bool, ipv6: bool) -> Self {
        match (ipv4, ipv6) {
            (true, _) => Self::V4,
            (_, true) => Self::V6,
            _ => Self::Any,
        }
    }

    fn admits(self, addr: &SocketAddr) -> bool {
        match self {
            Self::Any => true,
            Self::V4 => addr.is_ipv4(),
            Self::V6 => addr.is_ipv6(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Any => "usable",
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }
}

/// Where to dial, as curl decides it: `--connect-to` first, then
/// `--resolve` or the resolver, then `-4`/`-6`.
#[derive(Debug, Clone, Default)]
pub struct Addressing {
    pub resolve: Vec<ResolveEntry>,
    pub connect_to: Vec<ConnectTo>,
    pub family: Family,
}

/// One `--connect-to HOST:PORT:HOST2:PORT2` entry, as curl's: connections
/// meant for HOST:PORT go to HOST2:PORT2 instead, while the SNI and the name
/// the certificate must carry stay HOST. An empty field matches any host or
/// port, or keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub to_host: Option<String>,
    pub to_port: Option<u16>,
}

impl ConnectTo {
    fn applies_to(&self, target: &Target) -> bool {
        self.host
            .as_ref()
            .is_none_or(|h| h.eq_ignore_ascii_case(&target.host))
            && self.port.is_none_or(|p| p == target.port)
    }
}

impl std::str::FromStr for ConnectTo {
    type Err = TargetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || TargetError::ConnectTo(text.into());
        let fields = split_outside_brackets(text);
        let [host, port, to_host, to_port] = fields.as_slice() else {
            return Err(bad());
        };
        let host_of = |s: &str| {
            (!s.is_empty()).then(|| s.trim_start_matches('[').trim_end_matches(']').to_owned())
        };
        let port_of = |s: &str| -> Result<Option<u16>, TargetError> {
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse().map(Some).map_err(|_| bad())
            }
        };
        Ok(Self {
            host: host_of(host),
            port: port_of(port)?,
            to_host: host_of(to_host),
            to_port: port_of(to_port)?,
        })
    }
}

/// Splits on ':' except inside `[...]` (IPv6 literals).
fn split_outside_brackets(text: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (at, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => {
                fields.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    fields.push(&text[start..]);
    fields
}

impl Target {
    /// Parses one TARGET argument.
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        // Schemes are case-insensitive (RFC 3986 §3.1): HTTPS:// is https://.
        let (rest, from_url) = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (rest, true),
            Some(_) => return Err(TargetError::Scheme(text.into())),
            None => (text, false),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) if from_url => (&rest[..at], &rest[at..]),
            Some(_) => return Err(TargetError::Malformed(text.into())),
            None => (rest, "/"),
        };
        let authority = without_userinfo(authority, text);
        let (host, port) = split_host_port(authority, text)?;
        // Brackets only enclose an IPv6 literal (RFC 3986 §3.2.2); a host
        // holding one would not read back from its own `authority()`.
        if host.is_empty() || host.contains(['[', ']']) {
            return Err(TargetError::Malformed(text.into()));
        }
        Ok(Self {
            host,
            port,
            path: path.to_owned(),
            requests: if from_url {
                vec![RequestSpec::get(path)]
            } else {
                Vec::new()
            },
        })
    }

    /// `host:port`, with an IPv6 host in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The name the certificate must carry: the host, or the IP it spells.
    pub fn peer_name(&self) -> PeerName {
        PeerName::parse(&self.host)
    }

    /// The SNI to send: the host unless it is an IP literal (RFC 6066 §3).
    pub fn default_sni(&self) -> Option<String> {
        self.host
            .parse::<IpAddr>()
            .is_err()
            .then(|| self.host.clone())
    }

    /// Every address to dial, in order, after `--connect-to`, `--resolve`
    /// and `-4`/`-6` (never empty).
    pub fn addresses(&self, addressing: &Addressing) -> Result<Vec<SocketAddr>, TargetError> {
        let dialled = match addressing.connect_to.iter().find(|c| c.applies_to(self)) {
            Some(redirect) => Target {
                host: redirect
                    .to_host
                    .clone()
                    .unwrap_or_else(|| self.host.clone()),
                port: redirect.to_port.unwrap_or(self.port),
                path: self.path.clone(),
                requests: Vec::new(),
            },
            None => self.clone(),
        };
        let resolved = dialled.resolve_all(&addressing.resolve)?;
        log_resolution(&dialled, &resolved);
        let addrs: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|addr| addressing.family.admits(addr))
            .collect();
        if addrs.is_empty() {
            return Err(TargetError::NoAddressOfFamily {
                host: dialled.host,
                family: addressing.family.name(),
            });
        }
        Ok(addrs)
    }

    /// The address to dial: a matching `--resolve` entry, else the system
    /// resolver's first answer.
    pub fn resolve(&self, overrides: &[ResolveEntry]) -> Result<SocketAddr, TargetError> {
        self.resolve_all(overrides).map(|addrs| addrs[0])
    }

    /// Every address to try, in order (never empty): a matching `--resolve`
    /// entry, the IP the host spells, or all the system resolver's answers
    /// (`localhost` is often ::1 first, then 127.0.0.1).
    pub fn resolve_all(&self, overrides: &[ResolveEntry]) -> Result<Vec<SocketAddr>, TargetError> {
        if let Some(entry) = overrides
            .iter()
            .find(|e| e.host.eq_ignore_ascii_case(&self.host) && e.port == self.port)
        {
            return Ok(entry
                .addrs
                .iter()
                .map(|ip| SocketAddr::new(*ip, self.port))
                .collect());
        }
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let lookup_error = |reason: String| TargetError::Lookup {
            host: self.host.clone(),
            reason,
        };
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for addr in (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|error| lookup_error(error.to_string()))?
        {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(lookup_error("no address".into()));
        }
        Ok(addrs)
    }
}

/// curl -v's lines: `Host x:443 was resolved.`, then the addresses by family.
fn log_resolution(target: &Target, addrs: &[SocketAddr]) {
    if !log::log_enabled!(log::Level::Info) {
        return;
    }
    log::info!("Host {} was resolved.", target.authority());
    for (family, v6) in [("IPv6", true), ("IPv4", false)] {
        let ips: Vec<String> = addrs
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| a.ip().to_string())
            .collect();
        let ips = if ips.is_empty() {
            "(none)".to_owned()
        } else {
            ips.join(", ")
        };
        log::info!("{family}: {ips}");
    }
}

/// One `--resolve host:port:addr[,addr]...` entry, as curl's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveEntry {
    pub host: String,
    pub port: u16,
    /// Tried in order: the next one when one refuses.
    pub addrs: Vec<IpAddr>,
}

impl std::str::FromStr for ResolveEntry {
    type Err = TargetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || TargetError::Resolve(text.into());
        let (host, rest) = text.split_once(':').ok_or_else(bad)?;
        let (port, addr) = rest.split_once(':').ok_or_else(bad)?;
        let addrs = addr
            .split(',')
            .map(|a| {
                a.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .map_err(|_| bad())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            host: host.to_owned(),
            port: port.parse().map_err(|_| bad())?,
            addrs,
        })
    }
}

/// curl's handling of `user[:password]@` in a URL: stripped, never sent to
/// the resolver; said once, since nothing in QUIC or HTTP/3 carries it.
fn without_userinfo<'a>(authority: &'a str, whole: &str) -> &'a str {
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            log::warn!(
                "{whole}: the user name in the URL is not used (quicprobe sends no credentials)"
            );
            host
        }
        None => authority,
    }
}

fn split_host_port(authority: &str, whole: &str) -> Result<(String, u16), TargetError> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| TargetError::Malformed(whole.into()))?;
        let port = match after.strip_prefix(':') {
            Some(port) => parse_port(port, whole)?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return Err(TargetError::Malformed(whole.into())),
        };
        return Ok((host.to_owned(), port));
    }
    if authority.matches(':').count() > 1 {
        // A bare IPv6 address without brackets has no room for a port.
        return match authority.parse::<IpAddr>() {
            Ok(_) => Ok((authority.to_owned(), DEFAULT_PORT)),
            Err(_) => Err(TargetError::Malformed(whole.into())),
        };
    }
    match authority.split_once(':') {
        Some((host, port)) => Ok((host.to_owned(), parse_port(port, whole)?)),
        None => Ok((authority.to_owned(), DEFAULT_PORT)),
    }
}

fn parse_port(port: &str, whole: &str) -> Result<u16, TargetError> {
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| TargetError::Port(whole.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addressing(connect_to: &[&str], family: Family) -> Addressing {
        Addressing {
            resolve: Vec::new(),
            connect_to: connect_to.iter().map(|c| c.parse().unwrap()).collect(),
            family,
        }
    }

    #[test]
    fn connect_to_sends_the_connection_elsewhere_but_keeps_the_name() {
        let target = Target::parse("https://example.test:443/").unwrap();
        let addrs = target
            .addresses(&addressing(
                &["example.test:443:127.0.0.2:4433"],
                Family::Any,
            ))
            .unwrap();
        assert_eq!(addrs, ["127.0.0.2:4433".parse().unwrap()]);
        assert_eq!(target.peer_name(), PeerName::Dns("example.test".into()));
        // Empty fields: any host on port 443 goes to [::1], same port.
        let addrs = target
            .addresses(&addressing(&["::[::1]:"], Family::Any))
            .unwrap();
        assert_eq!(addrs, ["[::1]:443".parse().unwrap()]);
        // An entry for another port does not apply.
        let other = Target::parse("127.0.0.3:9").unwrap();
        let addrs = other
            .addresses(&addressing(&["127.0.0.3:10:127.0.0.4:11"], Family::Any))
            .unwrap();
        assert_eq!(addrs, ["127.0.0.3:9".parse().unwrap()]);
    }

    #[test]
    fn bad_connect_to_entries_are_usage_errors() {
        for text in ["", "a:1:b", "a:x:b:1", "a:1:b:99999", "a:1:b:2:c"] {
            assert!(text.parse::<ConnectTo>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn families_filter_the_addresses() {
        let target = Target::parse("localhost:443").unwrap();
        let resolve = vec!["localhost:443:::1,127.0.0.1".parse().unwrap()];
        let with = |family| {
            target.addresses(&Addressing {
                resolve: resolve.clone(),
                connect_to: Vec::new(),
                family,
            })
        };
        assert_eq!(
            with(Family::V4).unwrap(),
            ["127.0.0.1:443".parse().unwrap()]
        );
        assert_eq!(with(Family::V6).unwrap(), ["[::1]:443".parse().unwrap()]);
        let v6_only = Target::parse("[::1]:443").unwrap();
        assert!(matches!(
            v6_only.addresses(&addressing(&[], Family::V4)),
            Err(TargetError::NoAddressOfFamily { .. })
        ));
    }

    #[test]
    fn https_url_with_port_and_path() {
        let target = Target::parse("https://localhost:4433/bytes/10").unwrap();
        assert_eq!(target.host, "localhost");
        assert_eq!(target.port, 4433);
        assert_eq!(target.path, "/bytes/10");
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let target = Target::parse("HTTPS://localhost:4433/x").unwrap();
        assert_eq!((target.host.as_str(), target.port), ("localhost", 4433));
        assert_eq!(target.path, "/x");
        assert!(Target::parse("Https://h/").is_ok());
        assert!(Target::parse("HTTP://h/").is_err());
    }

    #[test]
    fn userinfo_never_reaches_the_host() {
        for url in [
            "https://user@localhost:4433/",
            "https://u:p@w@localhost:4433/",
        ] {
            let target = Target::parse(url).unwrap();
            assert_eq!(
                (target.host.as_str(), target.port),
                ("localhost", 4433),
                "{url}"
            );
        }
        assert!(Target::parse("https://user@/").is_err());
    }

    #[test]
    fn host_without_port_defaults_to_443() {
        assert_eq!(Target::parse("example.test").unwrap().port, 443);
        assert_eq!(Target::parse("https://example.test").unwrap().port, 443);
    }

    #[test]
    fn bracketed_ipv6_with_port() {
        let target = Target::parse("[::1]:4433").unwrap();
        assert_eq!(target.host, "::1");
        assert_eq!(target.port, 4433);
        assert_eq!(target.default_sni(), None);
    }

    #[test]
    fn bad_targets_are_errors() {
        for bad in [
            "http://x",
            "x:0",
            "x:99999",
            "[::1",
            "https://:443",
            "::1:443x",
            "",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_host_holding_a_bracket_is_malformed() {
        // Found by fuzzing: "[[a]:1" gave the host "[a", whose authority
        // "[a:1" no longer parsed.
        for bad in ["[[a]:1", "[a[b]:1", "a]b:1", "https://[[::1]/"] {
            assert_eq!(
                Target::parse(bad),
                Err(TargetError::Malformed(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn resolve_entry_takes_several_addresses_in_order() {
        let entry: ResolveEntry = "example.test:4433:[::1],127.0.0.1".parse().unwrap();
        let target = Target::parse("example.test:4433").unwrap();
        let addrs = target.resolve_all(&[entry]).unwrap();
        assert_eq!(
            addrs,
            vec![
                "[::1]:4433".parse().unwrap(),
                "127.0.0.1:4433".parse().unwrap()
            ]
        );
    }

    #[test]
    fn resolve_entry_overrides_the_resolver() {
        let entry: ResolveEntry = "example.test:4433:127.0.0.1".parse().unwrap();
        let target = Target::parse("example.test:4433").unwrap();
        assert_eq!(
            target.resolve(&[entry]).unwrap(),
            "127.0.0.1:4433".parse().unwrap()
        );
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    #[test]
    fn odd_targets_and_resolve_entries_give_errors_not_panics() {
        let samples = [
            "",
            ":",
            "::",
            "[",
            "]",
            "[]",
            "[]:1",
            "https://",
            "https:///",
            "https://[::1",
            "https://h:65536/",
            "h:-1",
            "h:1:2",
            "héllo:443",
            "a b:1",
            "https://h:1:2/",
            "\u{0}:1",
            "[::1]x",
            "[::1]:",
            "x:",
            "https://x:443/../..",
        ];
        for sample in samples {
            let _ = Target::parse(sample);
            let _ = sample.parse::<ResolveEntry>();
            let _ = format!("{sample}:1:127.0.0.1").parse::<ResolveEntry>();
        }
    }
}
