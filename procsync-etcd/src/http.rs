//! A minimal HTTP/1.1 client over `std::net::TcpStream`, enough for etcd's JSON gateway:
//! one POST per connection (`Connection: close`), bodies by length, by chunks or to the
//! end, and a streaming reader of newline-separated JSON messages for watches. Owns
//! framing only; knows nothing of etcd.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Sends `body` to `http://{addr}{path}` and returns the status and the whole body.
pub(crate) fn post(
    addr: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> io::Result<(u16, Vec<u8>)> {
    let mut r = open(addr, path, body, timeout)?;
    let (status, chunked, len) = read_head(&mut r)?;
    let mut out = Vec::new();
    if chunked {
        while let Some(chunk) = read_chunk(&mut r)? {
            out.extend_from_slice(&chunk);
        }
    } else if let Some(n) = len {
        out.resize(n, 0);
        r.read_exact(&mut out)?;
    } else {
        r.read_to_end(&mut out)?;
    }
    Ok((status, out))
}

fn open(
    addr: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> io::Result<BufReader<TcpStream>> {
    let sa = addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing")
    })?;
    let s = TcpStream::connect_timeout(&sa, timeout)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut w = &s;
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    Ok(BufReader::new(s))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Reads the status line and headers: (status, chunked, content length).
fn read_head(r: &mut BufReader<TcpStream>) -> io::Result<(u16, bool, Option<usize>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no HTTP status line"))?;
    let (mut chunked, mut len) = (false, None);
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside the headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((status, chunked, len));
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                len = v.parse().ok();
            }
        }
    }
}

/// One chunk of a chunked body, `None` at the final empty chunk.
fn read_chunk(r: &mut BufReader<TcpStream>) -> io::Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "stream closed",
        ));
    }
    let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
        .map_err(|_| bad("bad chunk size"))?;
    let mut buf = vec![0; size + 2];
    r.read_exact(&mut buf)?;
    buf.truncate(size);
    Ok(if size == 0 { None } else { Some(buf) })
}

/// A long POST whose chunked answer is a sequence of JSON messages, one per line.
pub(crate) struct Stream {
    r: BufReader<TcpStream>,
    pending: Vec<u8>,
}

impl Stream {
    /// Opens the stream; fails unless the answer is `200` and chunked.
    pub(crate) fn open(
        addr: &str,
        path: &str,
        body: &[u8],
        timeout: Duration,
    ) -> io::Result<Stream> {
        let mut r = open(addr, path, body, timeout)?;
        let (status, chunked, _) = read_head(&mut r)?;
        if status != 200 || !chunked {
            return Err(bad(&format!("stream refused with HTTP {status}")));
        }
        Ok(Stream {
            r,
            pending: Vec::new(),
        })
    }

    /// The next message, waiting at most `wait`: `Ok(None)` when none came in time.
    pub(crate) fn next(&mut self, wait: Duration) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(p) = self.pending.iter().position(|&b| b == b'\n') {
                let msg: Vec<u8> = self.pending.drain(..=p).collect();
                if msg.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(msg));
            }
            // A chunk header is read under the short timeout; once it has begun, the rest
            // of the chunk is read under a long one so that framing is never cut mid-way.
            self.r
                .get_ref()
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
            let have = match self.r.fill_buf() {
                Ok(b) => !b.is_empty(),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            if !have {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream closed",
                ));
            }
            self.r
                .get_ref()
                .set_read_timeout(Some(Duration::from_secs(10)))?;
            match read_chunk(&mut self.r)? {
                Some(c) => self.pending.extend_from_slice(&c),
                None => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended")),
            }
        }
    }
}
