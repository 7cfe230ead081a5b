//! Listening sockets. Every shard binds its own listener on the same address with
//! SO_REUSEPORT, so the kernel spreads incoming connections over the shards by a hash of the
//! 4-tuple and no shard ever hands an accepted socket to another one.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// Backlog for each listener: large enough for connection storms of load tests.
const BACKLOG: i32 = 4096;

/// Bind a nonblocking listener with SO_REUSEADDR and SO_REUSEPORT set.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// Per-connection socket options applied right after accept: no Nagle delay, since every
/// write we make is a complete response or a batch of complete frames.
pub fn tune_accepted(stream: &mio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
}
