//! The URL: an `http://` caIssuers URL parsed and checked for a request;
//! any other scheme is refused before a connection is made.

use std::net::Ipv6Addr;

use super::AiaErrorKind;

/// An `http://` URL, split for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HttpUrl {
    /// The host as written, without brackets.
    pub(super) host: String,
    pub(super) port: u16,
    /// The Host header: host as written (brackets kept), and the port unless 80.
    pub(super) host_header: String,
    /// Path and query, at least "/".
    pub(super) target: String,
}

pub(super) fn parse_url(url: &str) -> Result<HttpUrl, AiaErrorKind> {
    let bad = |why: &str| AiaErrorKind::BadUrl(why.to_owned());
    if url.is_empty() {
        return Err(bad("empty"));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("it holds spaces, control or non-ASCII characters"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("no scheme (expected http://)"));
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(AiaErrorKind::UnsupportedScheme {
            scheme: scheme.to_ascii_lowercase(),
        });
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let tail = tail.split('#').next().unwrap_or_default();
    let target = if tail.starts_with('/') {
        tail.to_owned()
    } else {
        format!("/{tail}")
    };
    if authority.contains('@') {
        return Err(bad("user information (user@host) is not supported"));
    }
    let (host, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(bad("'[' without ']'"));
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address in brackets"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("text after ']' that is not a port"))?,
            ),
        };
        (inside, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if !authority.starts_with('[') && host.contains([':', '[', ']']) {
        return Err(bad("an IPv6 address must be in brackets"));
    }
    let port = match port_text {
        None | Some("") => 80,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => port,
            _ => return Err(bad(&format!("bad port '{text}'"))),
        },
    };
    let host_name = if authority.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let host_header = if port == 80 {
        host_name
    } else {
        format!("{host_name}:{port}")
    };
    Ok(HttpUrl {
        host: host.to_owned(),
        port,
        host_header,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_target() {
        let url = parse_url("http://r11.i.lencr.org/").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.host_header.as_str(),
                url.target.as_str()
            ),
            ("r11.i.lencr.org", 80, "r11.i.lencr.org", "/")
        );
        let url = parse_url("HTTP://127.0.0.1:8080/a/b.der?x=1#frag").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.host_header.as_str(),
                url.target.as_str()
            ),
            ("127.0.0.1", 8080, "127.0.0.1:8080", "/a/b.der?x=1")
        );
        let url = parse_url("http://[::1]:9/x").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.host_header.as_str(),
                url.target.as_str()
            ),
            ("::1", 9, "[::1]:9", "/x")
        );
        let url = parse_url("http://[::1]").unwrap();
        assert_eq!(
            (url.port, url.host_header.as_str(), url.target.as_str()),
            (80, "[::1]", "/")
        );
        let url = parse_url("http://host?q").unwrap();
        assert_eq!(url.target, "/?q");
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        for (url, want) in [
            ("", "empty"),
            ("r11.i.lencr.org/", "no scheme"),
            ("http:///x", "no host"),
            ("http://h:0/", "bad port"),
            ("http://h:99999/", "bad port"),
            ("http://h:+80/", "bad port"),
            ("http://u:p@h/", "user information"),
            ("http://[::1/", "without ']'"),
            ("http://[nope]/", "IPv6"),
            ("http://::1/", "brackets"),
            ("http://h/a b", "spaces"),
            ("http://h/\r\nX: y", "control"),
            ("http://hé/", "non-ASCII"),
        ] {
            let error = parse_url(url).unwrap_err().to_string();
            assert!(error.contains(want), "{url:?}: {error}");
        }
        for (url, scheme) in [
            ("https://h/", "https"),
            ("ldap://h/cn=x", "ldap"),
            ("file:///etc/passwd", "file"),
            ("FTP://h/x", "ftp"),
        ] {
            assert_eq!(
                parse_url(url).unwrap_err(),
                AiaErrorKind::UnsupportedScheme {
                    scheme: scheme.into()
                }
            );
        }
    }
}
