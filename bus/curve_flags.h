// Public, header-only (binaries link CLI11; the bus library does not). The CURVE
// flags every bus peer binary (imbus-edge, imbus-actor) shares, so both spell them
// and their environment variables the same way.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "bus/curve.h"

namespace imbus::bus {

struct CurvePeerFlags {
  std::string server_key;   // --curve-server-key / IMBUS_CURVE_SERVER_KEY
  std::string secret_file;  // --curve-secret-file / IMBUS_CURVE_SECRET_FILE
};

inline void AddCurvePeerFlags(CLI::App& app, CurvePeerFlags* flags) {
  app.add_option("--curve-server-key", flags->server_key,
                 "the broker's CURVE public key (Z85); turns CURVE on (needs our own secret "
                 "key too). Off by default")
      ->envname("IMBUS_CURVE_SERVER_KEY");
  app.add_option("--curve-secret-file", flags->secret_file,
                 "file with our CURVE secret key (Z85); or put the key in $IMBUS_CURVE_SECRET")
      ->envname("IMBUS_CURVE_SECRET_FILE");
}

}  // namespace imbus::bus
