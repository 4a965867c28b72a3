// Public. EdgeOptions: everything an edge is configured with (flags of imbus-edge).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "net/token_bucket.h"
#include "edge/login_backoff.h"
#include "bus/curve.h"

namespace imbus::edge {

struct EdgeOptions {
  std::string listen_host = "0.0.0.0";
  uint16_t listen_port = 7000;  // 0: any free port (read it back with EdgeServer::port())
  std::string broker = "tcp://127.0.0.1:5555";
  int threads = 1;              // event loops, each with its own socket and BusPeer
  std::string name;             // empty: edge-<hostname>-<port>
  std::string advertise_host;   // empty: the listen host (0.0.0.0 -> 127.0.0.1)
  uint16_t advertise_port = 0;  // 0: the actual listening port
  int idle_timeout_s = 30;
  uint32_t max_frame = 65536;
  size_t max_output_bytes = size_t{1} << 20;  // pending output past this: slow reader
  int request_timeout_ms = 15000;
  int heartbeat_ms = 1000;
  // Rate limits (a 0 rate or cap turns one off). The defaults are far above what a
  // person or the benchmarks (64 source addresses) do; they stop floods.
  net::TokenRate conn_requests{500, 1000};  // every frame of one connection
  net::TokenRate conn_sends{200, 400};      // MSG/SEND of one connection
  // File bytes (FILE/UPLOAD_CHUNK's frame, DOWNLOAD's largest answer) of the whole
  // edge process in bytes per second, shared by its loops, so uploads and downloads
  // cannot take the CPU and disk that chat needs.
  net::TokenRate file_bytes{8.0 * 1024 * 1024, 2.0 * 1024 * 1024};
  uint32_t max_conns_per_ip = 4096;   // open connections from one address
  LoginBackoffOptions login_backoff;  // failed LOGIN/RESUME/DELETE_ACCOUNT per address
  bus::CurveClientKeys curve;         // to the broker; empty: CURVE off
  // TLS listener beside the plain one (same frames inside TLS 1.2+): on when
  // tls_listen_host is set, and then both PEM files are required.
  std::string tls_listen_host;
  uint16_t tls_listen_port = 0;  // 0: any free port (read it back with EdgeServer::tls_port())
  std::string tls_cert_file;     // certificate chain, leaf first
  std::string tls_key_file;      // its private key
  // WebSocket listeners for browsers (one PROTOCOL.md frame per binary message at
  // ws://HOST:PORT/ws), serving the web app at GET / on the same port: plain on when
  // ws_listen_host is set, TLS (wss://, with the certificate above) on when
  // wss_listen_host is set.
  std::string ws_listen_host;
  uint16_t ws_listen_port = 0;  // 0: any free port (EdgeServer::ws_port())
  std::string wss_listen_host;
  uint16_t wss_listen_port = 0;  // 0: any free port (EdgeServer::wss_port())
  // Origins allowed to open a WebSocket ("https://chat.example.com", "*" for any);
  // empty: only pages served by this edge (Origin matching Host). Requests without
  // Origin (not from a browser) are always allowed.
  std::vector<std::string> ws_origins;
  std::string web_root;  // the web app's directory; empty: GET / answers 404
};

// Splits "HOST:PORT" (PORT 0..65535). False, with *error set, when malformed.
bool ParseHostPort(const std::string& text, std::string* host, uint16_t* port, std::string* error);

}  // namespace imbus::edge
