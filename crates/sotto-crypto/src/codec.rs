//! Bounds-checked reading and writing of the compact binary formats.
//!
//! Every length is checked against the bytes that are left and against an explicit limit before
//! anything is allocated, so a decoder fed arbitrary bytes returns [`CodecError`] and never panics.

use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input ended before the structure was complete.
    #[error("input truncated")]
    Truncated,
    /// Bytes were left over after the structure was complete.
    #[error("unexpected trailing bytes")]
    TrailingBytes,
    /// A length field is larger than the limit for that field.
    #[error("field too long")]
    TooLong,
    /// A text field is not valid UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// A tag or enumeration value is not one this version knows.
    #[error("unknown tag {0}")]
    UnknownTag(u8),
    /// The format version is not supported.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// A value is structurally valid but not allowed (for example an empty list).
    #[error("invalid value")]
    InvalidValue,
}

/// A cursor over borrowed bytes.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        if len > self.rest.len() {
            return Err(CodecError::Truncated);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Bytes with a `u16` length prefix, at most `max` long.
    pub(crate) fn bytes16(&mut self, max: usize) -> Result<&'a [u8], CodecError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(CodecError::TooLong);
        }
        self.take(len)
    }

    /// Bytes with a `u32` length prefix, at most `max` long.
    pub(crate) fn bytes32(&mut self, max: usize) -> Result<&'a [u8], CodecError> {
        let len = usize::try_from(self.u32()?).map_err(|_| CodecError::TooLong)?;
        if len > max {
            return Err(CodecError::TooLong);
        }
        self.take(len)
    }

    /// UTF-8 text with a `u16` length prefix, at most `max` bytes.
    pub(crate) fn str16(&mut self, max: usize) -> Result<&'a str, CodecError> {
        std::str::from_utf8(self.bytes16(max)?).map_err(|_| CodecError::InvalidUtf8)
    }

    /// UTF-8 text with a `u32` length prefix, at most `max` bytes.
    pub(crate) fn str32(&mut self, max: usize) -> Result<&'a str, CodecError> {
        std::str::from_utf8(self.bytes32(max)?).map_err(|_| CodecError::InvalidUtf8)
    }

    /// Everything that is left, at most `max` bytes.
    pub(crate) fn rest(&mut self, max: usize) -> Result<&'a [u8], CodecError> {
        if self.rest.len() > max {
            return Err(CodecError::TooLong);
        }
        self.take(self.rest.len())
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), CodecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes)
        }
    }
}

/// Appends fields to a buffer. Lengths are checked by the callers' types, so encoding cannot fail;
/// an over-long field is truncated to what its prefix can express only if a caller broke that
/// contract, which the round-trip tests would catch.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.buf.push(value);
        self
    }

    pub(crate) fn u16(&mut self, value: u16) -> &mut Self {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn bytes16(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        self.u16(len);
        self.raw(bytes.get(..usize::from(len)).unwrap_or_default())
    }

    pub(crate) fn bytes32(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.raw(bytes.get(..len as usize).unwrap_or_default())
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Fills `out` with random bytes from the operating system (or the browser's `crypto`).
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)?;
    Ok(out)
}
