// The subcommands of the `gradhpo` program. Each lives in its own tools/cmd_*.cpp and adds
// itself to the CLI11 app; main.cpp only wires them together.
#pragma once

#include <CLI/CLI.hpp>

namespace gradhpo::tools {

/// `gradhpo demo`: gradient, JVP, HVP and mixed product of a small MLP loss,
/// each checked against finite differences, printed as a table.
void add_demo_command(CLI::App& app);
/// `gradhpo train`: trains a model on a dataset with SGD+momentum (or Adam).
void add_train_command(CLI::App& app);
/// `gradhpo hpo`: learns a learning-rate schedule, momentum and weight decay by hypergradients.
void add_hpo_command(CLI::App& app);
/// `gradhpo check`: the exactness ladder of a problem (and a finite-difference check).
void add_check_command(CLI::App& app);
/// `gradhpo hypervariance`: Micaelli & Storkey's Section 5.1 diagnostics.
void add_hypervariance_command(CLI::App& app);
/// `gradhpo compare`: several methods on one problem at an equal budget.
void add_compare_command(CLI::App& app);
/// `gradhpo methods`: the registry's methods with their options.
void add_methods_command(CLI::App& app);
/// `gradhpo reproduce`: a paper's table or figure from a shipped JSON experiment (the default:
/// `reproduce quickstart`).
void add_reproduce_command(CLI::App& app);

}  // namespace gradhpo::tools
