// `gradhpo methods`: every registered method — offline, online and search — with its summary,
// its paper and its options (name, allowed values, default, help), from the registry's one
// declaration of each (hpo/registry.h). Each is listed under its kind.
#include <iostream>

#include <gradhpo/hpo/registry.h>

#include "commands.h"

namespace gradhpo::tools {

void add_methods_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("methods", "List every hypergradient method and search, with its options");
  cmd->callback([] { std::cout << hpo::Registry::global().help(); });
}

}  // namespace gradhpo::tools
