//! Peers that connect to a server and misbehave. Each returns its open
//! connection, so that a test can hold it and then see when the server
//! lets it go ([`closed_by_server`]).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connects to `addr` (`host:port`) and sends the start of a request's
/// headers, never the blank line that ends them.
pub async fn stalled_headers(addr: &str) -> std::io::Result<TcpStream> {
    let mut socket = TcpStream::connect(addr).await?;
    socket
        .write_all(b"POST / HTTP/1.1\r\nhost: x\r\nx-a: 1\r\n")
        .await?;
    Ok(socket)
}

/// Connects to `addr` and sends header lines without end (`x-n: n`) until
/// the server closes the connection; returns how many bytes it sent.
pub async fn endless_headers(addr: &str) -> std::io::Result<u64> {
    let mut socket = TcpStream::connect(addr).await?;
    socket.write_all(b"POST / HTTP/1.1\r\nhost: x\r\n").await?;
    let mut sent = 0u64;
    for n in 0u64.. {
        let line = format!("x-{n}: {n}\r\n");
        if socket.write_all(line.as_bytes()).await.is_err() {
            break;
        }
        sent += line.len() as u64;
    }
    Ok(sent)
}

/// Connects to `addr` and sends complete headers declaring `declared`
/// bytes of `content_type` body, then only `sent` of them; the connection
/// stays open.
pub async fn unfinished_body(
    addr: &str,
    path: &str,
    content_type: &str,
    declared: usize,
    sent: usize,
) -> std::io::Result<TcpStream> {
    let mut socket = TcpStream::connect(addr).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\n\
         content-length: {declared}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(&vec![b' '; sent]).await?;
    Ok(socket)
}

/// `n` connections made by `open`, all held open at once.
pub async fn many<F, Fut>(n: usize, mut open: F) -> std::io::Result<Vec<TcpStream>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<TcpStream>>,
{
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(open().await?);
    }
    Ok(all)
}

/// Reads `socket` to its end and returns what the server sent before
/// closing it (an answer, or nothing): it returns once the server lets the
/// connection go.
pub async fn closed_by_server(mut socket: TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = socket.read(&mut chunk).await {
        if n == 0 || answer.len() > 64 * 1024 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    answer
}
