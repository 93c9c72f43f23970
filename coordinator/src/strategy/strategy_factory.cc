#include "fedattn/coordinator/strategy/strategy_factory.h"

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/coordinator/strategy/fedavg.h"
#include "fedattn/coordinator/strategy/robust_aggregation.h"
#include "fedattn/coordinator/strategy/server_optimizer.h"

namespace fedattn::coordinator::strategy {
namespace {

double Param(const models::JobStrategy& config, const std::string& key, double fallback) {
  return config.Has(key) ? config.Get(key) : fallback;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(const models::JobStrategy& config, int min_sites) {
  const std::string& name = config.name;
  if (name == "fedavg") {
    ASSIGN_OR_RETURN(std::unique_ptr<FedAvg> strategy, FedAvg::Create(FedAvgOptions{.min_sites = min_sites}));
    return std::unique_ptr<Strategy>(std::move(strategy));
  }
  if (name == "fedprox") {
    FedProxOptions options{.min_sites = min_sites, .proximal_mu = Param(config, "proximal_mu", 0.01)};
    ASSIGN_OR_RETURN(std::unique_ptr<FedProx> strategy, FedProx::Create(options));
    return std::unique_ptr<Strategy>(std::move(strategy));
  }
  if (name == "fedadam" || name == "fedyogi" || name == "fedadagrad") {
    ServerOptimizerOptions options;
    options.min_sites = min_sites;
    options.eta = Param(config, "server_lr", options.eta);
    options.beta1 = Param(config, "beta1", options.beta1);
    options.beta2 = Param(config, "beta2", options.beta2);
    options.tau = Param(config, "tau", options.tau);
    absl::StatusOr<std::unique_ptr<ServerOptimizerStrategy>> strategy =
        name == "fedadam" ? MakeFedAdam(options) : name == "fedyogi" ? MakeFedYogi(options) : MakeFedAdagrad(options);
    if (!strategy.ok()) return strategy.status();
    return std::unique_ptr<Strategy>(std::move(*strategy));
  }
  if (name == "median") {
    ASSIGN_OR_RETURN(std::unique_ptr<CoordinateMedian> strategy,
                     CoordinateMedian::Create(MedianOptions{.min_sites = min_sites}));
    return std::unique_ptr<Strategy>(std::move(strategy));
  }
  if (name == "trimmed_mean") {
    TrimmedMeanOptions options{.min_sites = min_sites, .beta = Param(config, "trim_fraction", 0.1)};
    ASSIGN_OR_RETURN(std::unique_ptr<TrimmedMean> strategy, TrimmedMean::Create(options));
    return std::unique_ptr<Strategy>(std::move(strategy));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown strategy '", name, "'"));
}

}  // namespace fedattn::coordinator::strategy
