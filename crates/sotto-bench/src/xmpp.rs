//! A minimal XMPP client: just enough of RFC 6120/6121 to put a pair of users on a server and
//! push chat messages between them, which is all the ejabberd target of `otr-relay` needs.
//!
//! - **Set-up** (not measured): TCP with `TCP_NODELAY`, stream open, in-band registration
//!   (XEP-0077, before authentication, on the same stream), SASL PLAIN without TLS, stream
//!   restart, resource binding, initial presence (waiting for the server's echo of it, so that
//!   it does not arrive during the run). No session establishment: ejabberd marks it optional.
//! - **The measured path**: the sender writes pre-built `<message>` stanzas into a 64 KiB
//!   buffer and flushes once per batch; the receiver reads into one reusable buffer and finds
//!   stanza boundaries with a byte scanner ([`scan`]) — no DOM, no allocation per message.
//!
//! The scanner knows what a server's stream looks like: an XML declaration, the
//! `<stream:stream>` header, then top-level elements (stanzas and stream-level elements such as
//! `<stream:features>` or `<success/>`), and finally `</stream:stream>`. Quoted attribute values
//! are skipped as a whole (they may contain `>`), text is skipped to the next `<`, and nesting is
//! counted to find where each top-level element ends. Comments, processing instructions and
//! CDATA inside the stream are refused (RFC 6120 forbids the first two; servers do not send the
//! third).

use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::Bytes;

use crate::load::{Arrival, LoadConnection, LoadReceiver, LoadSender};

/// Why talking XMPP failed.
#[derive(Debug, thiserror::Error)]
pub enum XmppError {
    /// The socket failed.
    #[error("xmpp socket: {0}")]
    Io(#[from] std::io::Error),
    /// The server's bytes are not the XML this client understands.
    #[error("xmpp stream: {0}")]
    Scan(#[from] ScanError),
    /// The server answered something other than what the step expects.
    #[error("xmpp {step}: unexpected answer {answer}")]
    Unexpected {
        /// The set-up step (`register`, `auth`, `bind`...).
        step: &'static str,
        /// What the server sent (truncated).
        answer: String,
    },
    /// The server closed the stream during set-up.
    #[error("xmpp {0}: the server closed the stream")]
    Closed(&'static str),
    /// Set-up took too long.
    #[error("xmpp set-up timed out after {0:?}")]
    Timeout(Duration),
}

/// Why the scanner refused the server's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// A closing tag without an opening one at the stream's top level.
    #[error("unbalanced closing tag at byte {0}")]
    Unbalanced(usize),
    /// A comment, processing instruction or CDATA section inside the stream.
    #[error("unsupported markup (comment, processing instruction or CDATA) at byte {0}")]
    Unsupported(usize),
    /// Text outside any element where only whitespace may be.
    #[error("text between stanzas at byte {0}")]
    StrayText(usize),
    /// An element larger than the read buffer may grow.
    #[error("a stanza larger than {0} bytes")]
    TooLarge(usize),
}

/// What the next complete item of a server's stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// The XML declaration or the `<stream:stream ...>` header (the stream restarts after
    /// authentication, so there may be several).
    Header,
    /// A complete top-level element: a stanza or a stream-level element.
    Element,
    /// `</stream:stream>`: the server ends the stream.
    StreamEnd,
}

/// Finds the first complete item in `bytes`: how many bytes it takes (leading whitespace
/// included) and its kind; `Ok(None)` when more bytes are needed. Never allocates.
pub fn scan(bytes: &[u8]) -> Result<Option<(usize, ItemKind)>, ScanError> {
    let Some(start) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Ok(None);
    };
    let rest = &bytes[start..];
    if rest[0] != b'<' {
        return Err(ScanError::StrayText(start));
    }
    const DECLARATION: &[u8] = b"<?xml";
    const STREAM_OPEN: &[u8] = b"<stream:stream";
    const STREAM_CLOSE: &[u8] = b"</stream:stream";
    if [DECLARATION, STREAM_OPEN, STREAM_CLOSE]
        .iter()
        .any(|marker| rest.len() < marker.len() && marker.starts_with(rest))
    {
        // Too short to tell the stream's own markup from a stanza.
        return Ok(None);
    }
    if rest.starts_with(DECLARATION) {
        return Ok(find(rest, b"?>").map(|end| (start + end + 2, ItemKind::Header)));
    }
    if rest.starts_with(STREAM_OPEN) {
        return Ok(tag_end(rest, 0).map(|end| (start + end + 1, ItemKind::Header)));
    }
    if rest.starts_with(STREAM_CLOSE) {
        return Ok(find(rest, b">").map(|end| (start + end + 1, ItemKind::StreamEnd)));
    }
    let mut depth = 0usize;
    let mut at = 0usize;
    loop {
        // `at` is on a `<`.
        let Some(&next) = rest.get(at + 1) else {
            return Ok(None);
        };
        match next {
            b'/' => {
                let Some(end) = find(&rest[at..], b">") else {
                    return Ok(None);
                };
                depth = depth
                    .checked_sub(1)
                    .ok_or(ScanError::Unbalanced(start + at))?;
                at += end + 1;
                if depth == 0 {
                    return Ok(Some((start + at, ItemKind::Element)));
                }
            }
            b'!' | b'?' => return Err(ScanError::Unsupported(start + at)),
            _ => {
                let Some(end) = tag_end(rest, at) else {
                    return Ok(None);
                };
                let self_closing = rest[end - 1] == b'/';
                at = end + 1;
                if !self_closing {
                    depth += 1;
                } else if depth == 0 {
                    return Ok(Some((start + at, ItemKind::Element)));
                }
            }
        }
        // Skip text to the next tag.
        match rest[at..].iter().position(|&b| b == b'<') {
            Some(offset) => at += offset,
            None => return Ok(None),
        }
    }
}

/// The index of the `>` ending the tag that starts at `from`, skipping quoted values.
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from + 1;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'>' => return Some(at),
            b'\'' | b'"' => at += 1 + bytes[at + 1..].iter().position(|&c| c == b)? + 1,
            _ => at += 1,
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A complete top-level element, borrowed from the read buffer.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    bytes: &'a [u8],
}

impl<'a> Element<'a> {
    /// Wraps the bytes of one complete element, as [`scan`] delimits them.
    pub fn new(bytes: &'a [u8]) -> Element<'a> {
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        Element {
            bytes: &bytes[start..],
        }
    }

    /// The whole element.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The qualified name (`message`, `stream:features`...).
    pub fn name(&self) -> &'a [u8] {
        let rest = self.bytes.get(1..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b.is_ascii_whitespace() || b == b'>' || b == b'/')
            .unwrap_or(rest.len());
        &rest[..end]
    }

    /// The value of an attribute of the opening tag, as written (not unescaped).
    pub fn attribute(&self, wanted: &[u8]) -> Option<&'a [u8]> {
        let tag_end = tag_end(self.bytes, 0)?;
        let mut rest = &self.bytes[1 + self.name().len()..tag_end];
        loop {
            let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
            rest = &rest[start..];
            let equals = rest.iter().position(|&b| b == b'=')?;
            let name = rest[..equals].trim_ascii();
            let after = rest[equals + 1..].trim_ascii_start();
            let quote = *after.first()?;
            let value_len = after[1..].iter().position(|&b| b == quote)?;
            if name == wanted {
                return Some(&after[1..1 + value_len]);
            }
            rest = &after[value_len + 2..];
        }
    }

    /// The element as text, shortened for error messages.
    fn describe(&self) -> String {
        let text = String::from_utf8_lossy(self.bytes);
        match text.char_indices().nth(300) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text.into_owned(),
        }
    }
}

/// The read buffer's starting size; it grows only for a stanza that does not fit.
const READ_BUFFER: usize = 16 * 1024;
/// The largest element the reader accepts (ejabberd is configured with the same limit).
pub const MAX_STANZA_BYTES: usize = 1024 * 1024;
/// The write buffer: a window's worth of stanzas goes out in one write.
const WRITE_BUFFER: usize = 64 * 1024;

/// The receiving half: one reusable buffer, items handed out as ranges of it.
pub struct StanzaReader {
    read: OwnedReadHalf,
    buffer: Vec<u8>,
    /// Bytes before this index have been handed out.
    consumed: usize,
}

impl StanzaReader {
    fn new(read: OwnedReadHalf) -> StanzaReader {
        StanzaReader {
            read,
            buffer: Vec::with_capacity(READ_BUFFER),
            consumed: 0,
        }
    }

    /// The next complete item: its kind and its range in the buffer (valid until the next
    /// call); `None` when the connection ended. Cancel-safe: bytes are consumed only when an
    /// item is returned, and a read that is dropped has read nothing.
    async fn next_item(&mut self) -> Result<Option<(ItemKind, usize, usize)>, XmppError> {
        loop {
            if let Some((len, kind)) = scan(&self.buffer[self.consumed..])? {
                let start = self.consumed;
                self.consumed += len;
                return Ok(Some((kind, start, start + len)));
            }
            // Make room: drop what was handed out, keep a partial item.
            if self.consumed == self.buffer.len() {
                self.buffer.clear();
                self.consumed = 0;
            } else if self.consumed > 0 {
                self.buffer.drain(..self.consumed);
                self.consumed = 0;
            }
            if self.buffer.len() >= MAX_STANZA_BYTES {
                return Err(ScanError::TooLarge(MAX_STANZA_BYTES).into());
            }
            if self.buffer.capacity() - self.buffer.len() < READ_BUFFER / 4 {
                self.buffer.reserve(self.buffer.capacity());
            }
            if self.read.read_buf(&mut self.buffer).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// The next complete top-level element, skipping stream headers (set-up only).
    async fn next_element(&mut self, step: &'static str) -> Result<Element<'_>, XmppError> {
        loop {
            match self.next_item().await? {
                Some((ItemKind::Element, start, end)) => {
                    return Ok(Element::new(&self.buffer[start..end]));
                }
                Some((ItemKind::Header, _, _)) => {}
                Some((ItemKind::StreamEnd, _, _)) | None => return Err(XmppError::Closed(step)),
            }
        }
    }
}

impl LoadReceiver for StanzaReader {
    async fn next(&mut self) -> Option<Result<Arrival, String>> {
        let (kind, start, end) = match self.next_item().await {
            Ok(Some(item)) => item,
            Ok(None) => return None,
            Err(error) => return Some(Err(error.to_string())),
        };
        Some(Ok(match kind {
            ItemKind::Header => Arrival::Ignored,
            ItemKind::StreamEnd => Arrival::Closed("</stream:stream>".into()),
            ItemKind::Element => {
                let element = Element::new(&self.buffer[start..end]);
                match (element.name(), element.attribute(b"type")) {
                    (b"message", Some(b"error")) => Arrival::Event("message/error".into()),
                    (b"message", _) => Arrival::Frame,
                    (name, _) => Arrival::Event(String::from_utf8_lossy(name).into_owned()),
                }
            }
        }))
    }
}

/// The sending half: stanzas go into a buffer, one write per flush.
pub struct StanzaWriter {
    write: BufWriter<OwnedWriteHalf>,
}

impl StanzaWriter {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), XmppError> {
        self.write.write_all(bytes).await?;
        self.write.flush().await?;
        Ok(())
    }
}

impl LoadSender for StanzaWriter {
    async fn feed(&mut self, frame: &Bytes) -> Result<(), String> {
        self.write
            .write_all(frame)
            .await
            .map_err(|error| format!("write: {error}"))
    }

    async fn flush(&mut self) -> Result<(), String> {
        self.write
            .flush()
            .await
            .map_err(|error| format!("write: {error}"))
    }

    async fn close(&mut self) {
        let _ = self.write.write_all(b"</stream:stream>").await;
        let _ = self.write.flush().await;
        let _ = self.write.shutdown().await;
    }
}

/// Who to be on which server.
#[derive(Debug, Clone)]
pub struct Account {
    /// The server's c2s address.
    pub addr: std::net::SocketAddr,
    /// The XMPP domain (`localhost`).
    pub domain: String,
    /// Local part of the JID.
    pub user: String,
    /// Password (registered in-band).
    pub password: String,
    /// Resource to bind.
    pub resource: String,
}

impl Account {
    /// The full JID once bound: `user@domain/resource`.
    pub fn full_jid(&self) -> String {
        format!("{}@{}/{}", self.user, self.domain, self.resource)
    }
}

/// An XMPP stream that is registered, authenticated, bound and available.
pub struct XmppConnection {
    reader: StanzaReader,
    writer: StanzaWriter,
}

impl LoadConnection for XmppConnection {
    type Sender = StanzaWriter;
    type Receiver = StanzaReader;

    fn split(self) -> (StanzaWriter, StanzaReader) {
        (self.writer, self.reader)
    }
}

impl XmppConnection {
    /// Connects, registers the account in-band (XEP-0077), logs in with SASL PLAIN, binds the
    /// resource and sends initial presence, all within `timeout`.
    pub async fn register_and_connect(
        account: &Account,
        timeout: Duration,
    ) -> Result<XmppConnection, XmppError> {
        tokio::time::timeout(timeout, Self::set_up(account))
            .await
            .map_err(|_| XmppError::Timeout(timeout))?
    }

    async fn set_up(account: &Account) -> Result<XmppConnection, XmppError> {
        let stream = TcpStream::connect(account.addr).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let mut connection = XmppConnection {
            reader: StanzaReader::new(read),
            writer: StanzaWriter {
                write: BufWriter::with_capacity(WRITE_BUFFER, write),
            },
        };
        let open = format!(
            "<?xml version='1.0'?><stream:stream to='{}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
            account.domain
        );
        connection.writer.send(open.as_bytes()).await?;
        connection.expect("features", b"stream:features").await?;

        let register = format!(
            "<iq type='set' id='register'><query xmlns='jabber:iq:register'>\
             <username>{}</username><password>{}</password></query></iq>",
            account.user, account.password
        );
        connection.writer.send(register.as_bytes()).await?;
        connection.expect_result("register").await?;

        let credentials = format!("\0{}\0{}", account.user, account.password);
        let auth = format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        connection.writer.send(auth.as_bytes()).await?;
        connection.expect("auth", b"success").await?;

        // After SASL the stream restarts.
        connection.writer.send(open.as_bytes()).await?;
        connection.expect("features", b"stream:features").await?;
        let bind = format!(
            "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>{}</resource></bind></iq>",
            account.resource
        );
        connection.writer.send(bind.as_bytes()).await?;
        connection.expect_result("bind").await?;

        // Initial presence; the server echoes it to the sender's own resource.
        connection.writer.send(b"<presence/>").await?;
        connection.expect("presence", b"presence").await?;
        Ok(connection)
    }

    async fn expect(&mut self, step: &'static str, name: &[u8]) -> Result<(), XmppError> {
        let element = self.reader.next_element(step).await?;
        if element.name() == name {
            Ok(())
        } else {
            Err(XmppError::Unexpected {
                step,
                answer: element.describe(),
            })
        }
    }

    async fn expect_result(&mut self, id: &'static str) -> Result<(), XmppError> {
        let element = self.reader.next_element(id).await?;
        if element.name() == b"iq"
            && element.attribute(b"type") == Some(b"result")
            && element.attribute(b"id") == Some(id.as_bytes())
        {
            Ok(())
        } else {
            Err(XmppError::Unexpected {
                step: id,
                answer: element.describe(),
            })
        }
    }
}

/// A chat message stanza to `to` whose body is the base64 text of `payload` (the bytes another
/// target carries as a binary frame; XMPP bodies are text, and OTR over XMPP is base64 too).
pub fn chat_stanza(to: &str, payload: &[u8]) -> Bytes {
    let body = base64::engine::general_purpose::STANDARD.encode(payload);
    Bytes::from(format!(
        "<message to='{to}' type='chat'><body>{body}</body></message>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "<?xml version='1.0'?><stream:stream id='1' version='1.0' xml:lang='en' \
        xmlns:stream='http://etherx.jabber.org/streams' from='localhost' xmlns='jabber:client'>\
        <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\
        <presence xml:lang='en' to='a@localhost/b' from='a@localhost/b'/>\n\
        <message xml:lang='en' to='a@localhost/b' from='c@localhost/d' type='chat'>\
        <body>q+/=</body></message>\
        <message type='error' a='x > y'><error type='cancel'/></message></stream:stream>";

    /// Every item of a byte string, scanned whole.
    fn items(mut bytes: &[u8]) -> Vec<(ItemKind, String)> {
        let mut out = Vec::new();
        while let Some((len, kind)) = scan(bytes).expect("well-formed") {
            out.push((
                kind,
                String::from_utf8_lossy(&bytes[..len]).trim().to_owned(),
            ));
            bytes = &bytes[len..];
        }
        assert!(bytes.iter().all(u8::is_ascii_whitespace), "left over");
        out
    }

    #[test]
    fn a_server_stream_splits_into_headers_elements_and_the_end() {
        let kinds: Vec<_> = items(SERVER.as_bytes())
            .into_iter()
            .map(|(kind, text)| (kind, text.split([' ', '>']).next().map(str::to_owned)))
            .collect();
        let expected = [
            (ItemKind::Header, "<?xml"),
            (ItemKind::Header, "<stream:stream"),
            (ItemKind::Element, "<stream:features"),
            (ItemKind::Element, "<presence"),
            (ItemKind::Element, "<message"),
            (ItemKind::Element, "<message"),
            (ItemKind::StreamEnd, "</stream:stream"),
        ];
        assert_eq!(kinds.len(), expected.len(), "{kinds:?}");
        for ((kind, start), (want_kind, want_start)) in kinds.iter().zip(expected) {
            assert_eq!((*kind, start.as_deref()), (want_kind, Some(want_start)));
        }
    }

    #[test]
    fn every_prefix_is_either_incomplete_or_a_whole_item() {
        // A read may stop anywhere: the scanner must wait for more, never misjudge.
        let whole = items(SERVER.as_bytes());
        for cut in 0..SERVER.len() {
            let prefix = &SERVER.as_bytes()[..cut];
            let mut bytes = prefix;
            let mut seen = 0;
            while let Some((len, kind)) = scan(bytes).expect("a prefix is never an error") {
                assert_eq!(kind, whole[seen].0, "cut at {cut}");
                assert_eq!(
                    String::from_utf8_lossy(&bytes[..len]).trim(),
                    whole[seen].1,
                    "cut at {cut}"
                );
                seen += 1;
                bytes = &bytes[len..];
            }
        }
    }

    #[test]
    fn attributes_and_names_are_read_from_the_opening_tag() {
        let stanza =
            "<message xml:lang='en' to=\"a@b/c\" type='chat'><body>type='error'</body></message>";
        let element = Element::new(stanza.as_bytes());
        assert_eq!(element.name(), b"message");
        assert_eq!(element.attribute(b"type"), Some(&b"chat"[..]));
        assert_eq!(element.attribute(b"to"), Some(&b"a@b/c"[..]));
        assert_eq!(element.attribute(b"id"), None);
        let empty = Element::new(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        assert_eq!(empty.name(), b"success");
    }

    #[test]
    fn markup_the_client_does_not_speak_is_refused() {
        assert_eq!(
            scan(b"<message><!-- x --></message>"),
            Err(ScanError::Unsupported(9))
        );
        assert_eq!(scan(b"</message>"), Err(ScanError::Unbalanced(0)));
        assert_eq!(scan(b" hello <a/>"), Err(ScanError::StrayText(1)));
    }

    #[test]
    fn a_chat_stanza_carries_the_payload_as_base64() {
        let stanza = chat_stanza("b@localhost/bench", &[0, 1, 2, 255]);
        let element = Element::new(&stanza);
        assert_eq!(element.name(), b"message");
        assert_eq!(element.attribute(b"to"), Some(&b"b@localhost/bench"[..]));
        assert!(stanza.ends_with(b"<body>AAEC/w==</body></message>"));
        assert_eq!(scan(&stanza), Ok(Some((stanza.len(), ItemKind::Element))));
    }
}
