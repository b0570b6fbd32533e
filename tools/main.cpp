// gradhpo: the command-line program. With no arguments it runs `reproduce quickstart`: a
// learning-rate schedule learned by forward mode against random search on Fashion-MNIST.
#include <algorithm>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <gradhpo/hpo/tasks/register_all.h>

#include "commands.h"
#include "ranks.h"

int main(int argc, char** argv) {
  gradhpo::tools::start_ranks(&argc, &argv);  // MPI when started by mpirun (tools/ranks.h)
  gradhpo::hpo::register_all_methods();  // every command constructs its methods by name
  CLI::App app{"gradhpo: exact hypergradients on a C++ autodiff engine", "gradhpo"};
  app.require_subcommand(1);
  app.footer("With no arguments: gradhpo reproduce quickstart (forward mode against random search, under a minute).");
  gradhpo::tools::add_demo_command(app);
  gradhpo::tools::add_train_command(app);
  gradhpo::tools::add_hpo_command(app);
  gradhpo::tools::add_check_command(app);
  gradhpo::tools::add_hypervariance_command(app);
  gradhpo::tools::add_compare_command(app);
  gradhpo::tools::add_reproduce_command(app);
  gradhpo::tools::add_methods_command(app);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) args = {"reproduce", "quickstart"};
  // A first word that is no option and no subcommand: name it and list the subcommands (CLI11
  // would say only "A subcommand is required").
  std::string names;
  bool known = false;
  for (const CLI::App* sub : app.get_subcommands({})) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
    known = known || sub->check_name(args.front());
  }
  const std::string& first = args.front();
  if (!known && first != "-h" && first != "--help") {
    const bool option = !first.empty() && first[0] == '-';
    std::cerr << "gradhpo: unknown " << (option ? "option '" : "subcommand '") << first << "'"
              << (option ? " (options follow a subcommand: gradhpo SUBCOMMAND [OPTIONS])" : "")
              << "; the subcommands are: " << names << " (gradhpo --help describes them)\n";
    return 109;  // CLI11's exit code for an unknown argument (CLI::ExitCodes::ExtrasError)
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector of arguments last-first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    // On several ranks the others may wait for this one: end them all, naming this rank.
    gradhpo::tools::abort_other_ranks(std::string("error: ") + e.what());
    std::cerr << "gradhpo: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
