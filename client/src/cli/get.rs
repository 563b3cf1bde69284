//! The arguments of `quicprobe get`.

use std::path::PathBuf;

use clap::Args;

use super::ConnectionOptions;

#[derive(Debug, Args)]
#[command(after_help = super::help::get())]
pub struct GetArgs {
    /// https://host[:port]/path (repeatable; requests to one origin share a connection).
    #[arg(value_name = "URL", required = true)]
    pub urls: Vec<String>,
    #[command(flatten)]
    pub conn: ConnectionOptions,
    /// Write the body of the Nth URL to the Nth FILE, as curl's -o.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Vec<PathBuf>,
    /// Write each body to a file named like the last segment of its URL path, as curl's -O.
    #[arg(short = 'O', long = "remote-name")]
    pub remote_name: bool,
    /// An extra request header, 'name: value' (repeatable; HTTP/3 only).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The request method (HTTP/3 only).
    #[arg(
        short = 'X',
        long = "request",
        value_name = "METHOD",
        default_value = "GET"
    )]
    pub method: String,
    /// A request body: a string, or @FILE (HTTP/3 only; makes the default method POST).
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Option<String>,
    /// With an ALPN other than h3 and hq-interop: send DATA (a string or @FILE)
    /// on a stream and take what comes back as the response.
    #[arg(long, value_name = "DATA")]
    pub send: Option<String>,
    /// Write the response's status and header fields before its body, as curl's -i.
    #[arg(short = 'i', long = "include")]
    pub include: bool,
    /// Print one JSON outcome per connection instead of the bodies (use -o for them).
    #[arg(long)]
    pub json: bool,
}
