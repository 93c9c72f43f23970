#include "train_command.h"

#include <iostream>
#include <memory>
#include <string>

#include "fedattn/models/central_training.h"

namespace fedattn::agent {

void AddTrainCommand(CLI::App& app) {
  auto config = std::make_shared<std::string>();
  CLI::App* train = app.add_subcommand("train", "Train one model centrally on one dataset (non-federated baseline; DP-SGD, "
                                              "reporting the epsilon spent, when the config has a privacy: section)");
  train->add_option("--config", *config, "Train config (YAML), e.g. configs/train/wdbc.yaml")
      ->required()
      ->check(CLI::ExistingFile);
  train->callback([config] {
    models::EnsurePassiveOpenMpWait();
    auto result = models::RunCentralTraining(*config, std::cout);
    if (!result.ok()) {
      std::cerr << "fedattn-agent train: " << result.status().message() << "\n";
      throw CLI::RuntimeError(1);
    }
    // Training ran inside parse(); end the program here (CLI11_PARSE returns 0) rather than fall
    // through to the agent's own start-up.
    throw CLI::Success();
  });
}

}  // namespace fedattn::agent
