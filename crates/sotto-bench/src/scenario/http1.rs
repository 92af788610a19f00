//! A minimal HTTP/1.1 keep-alive client connection for the load generator's send path.
//!
//! The bench shares the machine's cores with the server it measures, so its cost per request
//! must stay far below the server's: a general client (reqwest over hyper) spends tens of
//! microseconds per request on URL parsing, header maps, its connection pool and allocations.
//! This one does nothing the scenario does not need: the caller hands it a complete request
//! (built once, digits rewritten in place), it writes it and reads one response into a buffer
//! it keeps, parsing only the status, `Content-Length`, `Transfer-Encoding` and `Connection`.
//! One request is in flight per connection, so bytes after the response are a protocol error,
//! not a pipelined answer.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Room for a typical response head and a small JSON body without growing.
const INITIAL_BUFFER: usize = 8 * 1024;

/// A response head larger than this is refused (nothing the server sends comes close).
const MAX_HEAD: usize = 64 * 1024;

/// A response body larger than this is refused, so a bad `Content-Length` cannot make the
/// buffer grow without bound (the server's answers to a send are a few hundred bytes).
const MAX_BODY: usize = 1024 * 1024;

/// Why an exchange failed. The connection is unusable afterwards.
#[derive(Debug, thiserror::Error)]
pub enum Http1Error {
    /// Connecting, writing or reading failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection before the response was complete.
    #[error("connection closed by the server before a complete response")]
    Closed,
    /// The response is not HTTP/1.1 as this client reads it.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// One response, borrowed from the connection's buffer until the next exchange.
#[derive(Debug)]
pub struct Response<'a> {
    /// The status code.
    pub status: u16,
    /// The body (`Content-Length` bytes).
    pub body: &'a [u8],
    /// The server said `Connection: close`: this connection takes no further request.
    pub close: bool,
}

/// One keep-alive connection: a TCP stream and the buffer responses are read into.
#[derive(Debug)]
pub struct Http1Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Http1Connection {
    /// Connects to `server` with Nagle off (requests are written whole, and a delayed last
    /// segment would add the delayed-ACK wait to every latency).
    pub async fn connect(server: SocketAddr) -> std::io::Result<Http1Connection> {
        let stream = TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        Ok(Http1Connection {
            stream,
            buffer: Vec::with_capacity(INITIAL_BUFFER),
        })
    }

    /// The server's address (to connect again after the server closed this connection).
    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    /// Writes `request` (a complete HTTP/1.1 request, head and body) and reads its response,
    /// however many reads it arrives in. No allocation unless a response outgrows the buffer.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<Response<'_>, Http1Error> {
        self.stream.write_all(request).await?;
        self.buffer.clear();
        let mut scanned = 0;
        let head = loop {
            if let Some(head) = parse_head(&self.buffer, &mut scanned)? {
                break head;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(Http1Error::Malformed("response head too large"));
            }
            self.fill().await?;
        };
        let end = head.length + head.content_length;
        while self.buffer.len() < end {
            self.fill().await?;
        }
        if self.buffer.len() > end {
            return Err(Http1Error::Malformed(
                "bytes after the response (nothing else was asked for)",
            ));
        }
        Ok(Response {
            status: head.status,
            body: &self.buffer[head.length..end],
            close: head.close,
        })
    }

    /// One read, appended to the buffer (grown only when full).
    async fn fill(&mut self) -> Result<(), Http1Error> {
        if self.buffer.len() == self.buffer.capacity() {
            self.buffer.reserve(self.buffer.len().max(INITIAL_BUFFER));
        }
        match self.stream.read_buf(&mut self.buffer).await? {
            0 => Err(Http1Error::Closed),
            _ => Ok(()),
        }
    }
}

/// What the response head says.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    /// Bytes of the head, the final CRLFCRLF included.
    length: usize,
    content_length: usize,
    close: bool,
}

/// Parses the head once `buffer` holds all of it (`None` before); `scanned` remembers how far
/// the end-of-head search got, so a head arriving in pieces is not searched from the start each
/// time.
fn parse_head(buffer: &[u8], scanned: &mut usize) -> Result<Option<Head>, Http1Error> {
    let from = scanned.saturating_sub(3);
    let Some(at) = buffer[from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| from + p)
    else {
        *scanned = buffer.len();
        return Ok(None);
    };
    let length = at + 4;
    let mut lines = buffer[..at].split(|&b| b == b'\n').map(|line| {
        // Lines end in CRLF; the split leaves the CR.
        line.strip_suffix(b"\r").unwrap_or(line)
    });
    let status_line = lines.next().unwrap_or_default();
    if !status_line.starts_with(b"HTTP/1.") || status_line.len() < 12 || status_line[8] != b' ' {
        return Err(Http1Error::Malformed("status line"));
    }
    let status = parse_decimal(&status_line[9..12])
        .and_then(|s| u16::try_from(s).ok())
        .ok_or(Http1Error::Malformed("status code"))?;
    let mut content_length = None;
    let mut close = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(Http1Error::Malformed("header line without a colon"));
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let parsed = parse_decimal(value).and_then(|v| usize::try_from(v).ok());
            let length = parsed.ok_or(Http1Error::Malformed("Content-Length"))?;
            if length > MAX_BODY {
                return Err(Http1Error::Malformed("Content-Length above 1 MiB"));
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The server's JSON answers are complete bodies; a chunked one is not expected.
            return Err(Http1Error::Malformed("Transfer-Encoding is not supported"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= value
                .split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    let content_length = match (content_length, status) {
        (Some(n), _) => n,
        // No body by definition.
        (None, 100..=199 | 204 | 304) => 0,
        (None, _) => {
            return Err(Http1Error::Malformed(
                "no Content-Length (a body up to EOF is not supported)",
            ));
        }
    };
    Ok(Some(Head {
        status,
        length,
        content_length,
        close,
    }))
}

/// ASCII decimal digits (at least one, at most 19) as a number.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// Writes `value` as zero-padded decimal filling all of `out`; false (and `out` unspecified)
/// when it does not fit.
pub(crate) fn write_decimal(out: &mut [u8], mut value: u64) -> bool {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    value == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, Http1Error> {
        parse_head(text.as_bytes(), &mut 0)
    }

    #[test]
    fn a_complete_head_gives_status_length_and_close() {
        let text = "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 42\r\nConnection: keep-alive, Close\r\n\r\n{";
        let parsed = head(text).expect("valid").expect("complete");
        assert_eq!(
            parsed,
            Head {
                status: 201,
                length: text.len() - 1,
                content_length: 42,
                close: true,
            }
        );
    }

    #[test]
    fn a_head_in_pieces_is_found_across_reads() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let mut scanned = 0;
        for end in 1..text.len() {
            assert!(
                parse_head(&text[..end], &mut scanned)
                    .expect("valid so far")
                    .is_none()
            );
        }
        let parsed = parse_head(text, &mut scanned)
            .expect("valid")
            .expect("complete");
        assert_eq!((parsed.status, parsed.content_length), (200, 0));
        assert!(!parsed.close);
    }

    #[test]
    fn what_this_client_does_not_read_is_an_error() {
        assert!(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n").is_err());
        assert!(head("SMTP ready\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 204 No Content\r\n\r\n").is_ok());
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n").is_err());
    }

    #[test]
    fn decimals_round_trip_at_fixed_width() {
        let mut out = [0u8; 10];
        assert!(write_decimal(&mut out, 1234));
        assert_eq!(&out, b"0000001234");
        assert_eq!(parse_decimal(&out), Some(1234));
        assert!(!write_decimal(&mut out[..3], 1234));
        assert_eq!(parse_decimal(b"12a"), None);
        assert_eq!(parse_decimal(b""), None);
    }
}
