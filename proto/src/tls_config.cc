#include "fedattn/rpc/tls_config.h"

namespace fedattn::rpc {

void ReadTlsSection(config::MapReader& tls, TlsFiles* files) {
  tls.RequiredPath("ca", &files->ca_cert);
  tls.RequiredPath("cert", &files->cert);
  tls.RequiredPath("key", &files->key);
  tls.OptionalPath("crl_dir", &files->crl_dir);
}

}  // namespace fedattn::rpc

namespace fedattn::rpc {

void ReadCoordinatorEndpoint(config::MapReader& coordinator, CoordinatorEndpoint* endpoint) {
  coordinator.Required("address", &endpoint->address);
  coordinator.Optional("name", &endpoint->name);
  if (!endpoint->address.empty() && endpoint->address.find(':') == std::string::npos) {
    coordinator.Error("address", "needs host:port");
  }
}

}  // namespace fedattn::rpc
