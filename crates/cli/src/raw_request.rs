//! Reads a captured raw HTTP/1.1 request: request line, headers, blank line, body. Lines may
//! end in CRLF or LF (files edited by hand); a chunked body is decoded; `Content-Length`,
//! when present, bounds the body.

use anyhow::{bail, Context};

/// A request read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn parse(bytes: &[u8]) -> anyhow::Result<RawRequest> {
        let (head, body) =
            split_head(bytes).context("no blank line between the headers and the body")?;
        let head = std::str::from_utf8(head).context("the request head is not UTF-8")?;
        let mut lines = head.lines();
        let request_line = lines.next().context("empty request")?;
        let mut parts = request_line.split_whitespace();
        let method = parts
            .next()
            .context("no method on the request line")?
            .to_ascii_uppercase();
        let target = parts.next().context("no path on the request line")?;
        if let Some(version) = parts.next() {
            if !version.starts_with("HTTP/1") {
                bail!("`{version}`: only HTTP/1.x requests are read");
            }
        }
        // An absolute-form target (http://host/path) keeps only its path and query.
        let target = match target.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => target,
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .with_context(|| format!("header line without `:`: {line:?}"))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            decode_chunked(body)?
        } else if let Some(length) = header("content-length") {
            let length: usize = length
                .parse()
                .with_context(|| format!("Content-Length `{length}` is not a number"))?;
            if body.len() < length {
                bail!(
                    "the body has {} bytes, Content-Length says {length}",
                    body.len()
                );
            }
            body[..length].to_vec()
        } else {
            body.to_vec()
        };
        Ok(RawRequest {
            method,
            path,
            query,
            headers,
            body,
        })
    }

    pub fn to_request(&self) -> hookgate_verify::Request<'_> {
        hookgate_verify::Request {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes().to_vec()))
                .collect(),
            body: &self.body,
            peer: None,
        }
    }
}

fn split_head(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((&bytes[..i], &bytes[i + 4..]));
    }
    bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (&bytes[..i], &bytes[i + 2..]))
}

fn decode_chunked(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunked body: missing chunk size line")?;
        let size_text = std::str::from_utf8(&data[..line_end])?
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("chunked body: bad chunk size `{size_text}`"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            bail!("chunked body: truncated chunk");
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_crlf_lf_chunked_and_absolute_targets() {
        let r = RawRequest::parse(b"POST /hooks/x?a=1 HTTP/1.1\r\nHost: h\r\nX-Sig: abc\r\nContent-Length: 5\r\n\r\nhello trailing").unwrap();
        assert_eq!(
            (
                r.method.as_str(),
                r.path.as_str(),
                r.query.as_deref(),
                r.body.as_slice()
            ),
            ("POST", "/hooks/x", Some("a=1"), &b"hello"[..])
        );
        assert_eq!(r.headers[1], ("X-Sig".to_owned(), "abc".to_owned()));
        let r = RawRequest::parse(b"post http://example.com/p HTTP/1.1\nA: b\n\n{}").unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.body.as_slice()),
            ("POST", "/p", &b"{}"[..])
        );
        let r = RawRequest::parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, b"abcde");
        assert!(RawRequest::parse(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort").is_err());
        assert!(RawRequest::parse(b"POST / HTTP/1.1\r\nno colon\r\n\r\n").is_err());
        assert!(RawRequest::parse(b"just text").is_err());
    }
}
