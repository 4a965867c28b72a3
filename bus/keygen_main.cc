// imbus-keygen: makes CURVE key pairs for the bus (docs/bus.md "Security").
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "bus/curve.h"

int main(int argc, char** argv) {
  std::string write_base;
  std::string public_of;
  CLI::App app{
      "imbus-keygen: makes a ZeroMQ CURVE key pair (Z85) for the imbus bus.\n"
      "Without options it prints two lines, 'public: KEY' and 'secret: KEY'."};
  app.add_option("--write", write_base,
                 "write NAME.key (the secret, mode 0600) and NAME.pub instead of printing; "
                 "NAME may include a directory. Existing files are not overwritten")
      ->option_text("NAME");
  app.add_option("--public-of", public_of,
                 "print the public key of the secret key in FILE and exit")
      ->option_text("FILE");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  std::string error;
  if (!public_of.empty()) {
    std::string secret;
    std::string pub;
    if (!imbus::bus::LoadCurveSecretFile(public_of, &secret, &error) ||
        !imbus::bus::CurvePublicFromSecret(secret, &pub, &error)) {
      std::fprintf(stderr, "imbus-keygen: %s\n", error.c_str());
      return 1;
    }
    std::cout << pub << "\n";
    return 0;
  }
  std::string pub;
  std::string secret;
  if (!imbus::bus::GenerateCurveKeyPair(&pub, &secret, &error)) {
    std::fprintf(stderr, "imbus-keygen: %s\n", error.c_str());
    return 1;
  }
  if (write_base.empty()) {
    std::cout << "public: " << pub << "\nsecret: " << secret << "\n";
    return 0;
  }
  if (!imbus::bus::WriteCurveKeyFiles(write_base, pub, secret, &error)) {
    std::fprintf(stderr, "imbus-keygen: %s\n", error.c_str());
    return 1;
  }
  std::cout << write_base << ".pub: " << pub << "\n";
  return 0;
}
