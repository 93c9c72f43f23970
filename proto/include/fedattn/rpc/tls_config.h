// The `tls:` section every party's YAML has (ca, cert, key, optional crl_dir).
#pragma once

#include "fedattn/config/yaml_reader.h"
#include "fedattn/rpc/tls.h"

namespace fedattn::rpc {

// Reads `tls:` into `files`; relative paths are resolved against the YAML file's directory.
void ReadTlsSection(config::MapReader& tls, TlsFiles* files);

}  // namespace fedattn::rpc

namespace fedattn::rpc {

// Where a party finds the coordinator: the `coordinator:` section of site and admin YAML.
struct CoordinatorEndpoint {
  std::string address;              // host:port to dial
  std::string name = "coordinator";  // the party name its certificate must carry
};
void ReadCoordinatorEndpoint(config::MapReader& coordinator, CoordinatorEndpoint* endpoint);

}  // namespace fedattn::rpc
