//! The request model every scheme verifies: what arrived on the wire, nothing parsed away.

use std::net::IpAddr;

/// Request headers: names compared case-insensitively, repeated names kept in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// `(lower-cased name, raw value)` in arrival order.
    entries: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// An empty header list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header; earlier values of the same name are kept.
    pub fn append(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.entries.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Replaces every value of `name` with `value`.
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.remove(name);
        self.append(name, value);
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The first value of `name` as text; `None` when absent or not valid UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .find_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Every value of `name` that is valid UTF-8, in arrival order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Whether any value of `name` is present, text or not.
    pub fn contains(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// All headers as `(lower-cased name, raw value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<N: AsRef<str>, V: Into<Vec<u8>>> FromIterator<(N, V)> for Headers {
    fn from_iter<T: IntoIterator<Item = (N, V)>>(iter: T) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.append(name.as_ref(), value);
        }
        headers
    }
}

/// One incoming HTTP request, as the verifier sees it.
///
/// The body is borrowed: the server keeps the bytes it read and the verifier never copies
/// them.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Upper-case method, e.g. `POST`.
    pub method: String,
    /// The path as received, without the query, e.g. `/client_webhook_endpoint`.
    pub path: String,
    /// The raw query string without `?`, if any.
    pub query: Option<String>,
    /// All request headers.
    pub headers: Headers,
    /// The raw body bytes, exactly as received.
    pub body: &'a [u8],
    /// The TCP peer address, when known.
    pub peer: Option<IpAddr>,
}

impl<'a> Request<'a> {
    /// A `POST` to `path` with `body` and no headers.
    pub fn post(path: &str, body: &'a [u8]) -> Self {
        Request {
            method: "POST".to_owned(),
            path: path.to_owned(),
            query: None,
            headers: Headers::new(),
            body,
            peer: None,
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Path and query as they appeared in the request line.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }
}
