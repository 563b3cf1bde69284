//! The size of a server's Handshake flight against quiche's 64 KiB limit.
