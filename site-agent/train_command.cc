#include "train_command.h"

#include <iostream>
#include <memory>
#include <string>

#include "fedattn/agent/site_collective.h"
#include "fedattn/models/central_training.h"
#include "fedattn/parallel/collective.h"

namespace fedattn::agent {

void AddTrainCommand(CLI::App& app) {
  auto config = std::make_shared<std::string>();
  auto timeout_s = std::make_shared<double>(600);
  CLI::App* train = app.add_subcommand("train", "Train one model centrally on one dataset (non-federated baseline; DP-SGD, "
                                              "reporting the epsilon spent, when the config has a privacy: section); "
                                              "data-parallel under mpirun (docs/multi-gpu.md)");
  train->add_option("--config", *config, "Train config (YAML), e.g. configs/train/wdbc.yaml")
      ->required()
      ->check(CLI::ExistingFile);
  train->add_option("--collective-timeout", *timeout_s,
                    "Under mpirun: seconds a rank waits for the others in one operation before failing")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train->callback([config, timeout_s] {
    models::EnsurePassiveOpenMpWait();
    std::unique_ptr<parallel::Collective> collective;
    {
      auto loaded = models::LoadTrainConfig(*config);
      SiteCollectiveOptions options;
      options.timeout = absl::Seconds(*timeout_s);
      if (loaded.ok()) options.device = loaded->trainer.device();
      auto created = CreateSiteCollective(options);
      if (!created.ok()) {
        std::cerr << "fedattn-agent train: " << created.status().message() << "\n";
        throw CLI::RuntimeError(1);
      }
      collective = *std::move(created);
    }
    // Only rank 0 reports; the others train silently.
    std::ostream discard(nullptr);
    std::ostream& out = collective->rank() == 0 ? std::cout : discard;
    auto result = models::RunCentralTraining(*config, out, collective.get());
    if (!result.ok()) {
      std::cerr << "fedattn-agent train" << (collective->size() > 1 ? " (rank " + std::to_string(collective->rank()) + ")" : "")
                << ": " << result.status().message() << "\n";
      throw CLI::RuntimeError(1);
    }
    // Training ran inside parse(); end the program here (CLI11_PARSE returns 0) rather than fall
    // through to the agent's own start-up.
    throw CLI::Success();
  });
}

}  // namespace fedattn::agent
