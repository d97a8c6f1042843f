//! `relay`: a bare TCP relay, the floor of what any proxy adds on this machine.
//!
//! Why: the targets compare MidStream with the direct path, and part of what a proxy adds is
//! not the proxy's doing: a second loopback hop each way, one more read and one more write per
//! frame (on loopback a write also runs the reader's side of TCP and wakes it), one more process
//! to schedule on shared cores. This mode forwards bytes between each client and the upstream
//! and does nothing else (no HTTP, no SSE, no record), so the same load through it shows that
//! part alone, and the gateway's own cost is what it adds beyond the relay.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// After an accept error (out of file descriptors), wait this long before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts clients on `listen` and relays each to a new connection to `upstream`, until the
/// process is stopped. Prints `relaying on http://ADDR` once listening.
pub async fn run(listen: SocketAddr, upstream: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    // Standard output is line-buffered: the line is out as soon as it is printed.
    println!("relaying on http://{}", listener.local_addr()?);
    serve(listener, upstream).await;
    Ok(())
}

/// The accept loop: a task per client. An accept error is reported and waited out, as the
/// gateway does, so a burst past the open-file limit does not end the relay.
async fn serve(listener: TcpListener, upstream: SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(async move {
                    if let Err(error) = relay(client, upstream).await {
                        eprintln!("relay: a connection ended with an error: {error}");
                    }
                });
            }
            Err(error) => {
                eprintln!("relay: accepting failed, retrying: {error}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Copies both ways until either side closes. Both sockets send at once (no Nagle), as the
/// gateway's do, so the relay adds no delay of its own to a frame.
async fn relay(mut client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A relay in front of `upstream`, on a free port.
    async fn relay_to(upstream: SocketAddr) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(serve(listener, upstream));
        addr
    }

    #[tokio::test]
    async fn bytes_go_both_ways_and_the_upstream_closing_closes_the_client() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream_addr = upstream.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut socket, _) = upstream.accept().await.expect("accept");
            let mut request = [0u8; 4];
            socket.read_exact(&mut request).await.expect("request");
            assert_eq!(&request, b"ping");
            socket.write_all(b"pong").await.expect("reply");
        });
        let mut client = TcpStream::connect(relay_to(upstream_addr).await)
            .await
            .expect("connect");
        client.write_all(b"ping").await.expect("write");
        let mut reply = Vec::new();
        client
            .read_to_end(&mut reply)
            .await
            .expect("read to the end");
        assert_eq!(reply, b"pong");
    }

    #[tokio::test]
    async fn a_client_of_an_unreachable_upstream_is_closed_not_held() {
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let nobody = closed.local_addr().expect("address");
        drop(closed);
        let mut client = TcpStream::connect(relay_to(nobody).await)
            .await
            .expect("connect");
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.expect("closed");
        assert!(reply.is_empty());
    }
}
