//! What the user asked to connect to: `https://host[:port][/path]`,
//! `host:port`, `host` or `[v6addr]:port`, with curl's `--resolve`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use quicprobe_verifier::PeerName;

use crate::request::RequestSpec;

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
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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
}

impl Target {
    /// Parses one TARGET argument.
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        let (rest, from_url) = match text.split_once("://") {
            Some(("https", rest)) => (rest, true),
            Some(_) => return Err(TargetError::Scheme(text.into())),
            None => (text, false),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) if from_url => (&rest[..at], &rest[at..]),
            Some(_) => return Err(TargetError::Malformed(text.into())),
            None => (rest, "/"),
        };
        let (host, port) = split_host_port(authority, text)?;
        if host.is_empty() {
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

    #[test]
    fn https_url_with_port_and_path() {
        let target = Target::parse("https://localhost:4433/bytes/10").unwrap();
        assert_eq!(target.host, "localhost");
        assert_eq!(target.port, 4433);
        assert_eq!(target.path, "/bytes/10");
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
