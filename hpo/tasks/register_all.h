// Every method of gradhpo in one registry: what a program that links gradhpo::tasks (and with it
// gradhpo::bayesian and gradhpo::hoag) calls once at its start.
#pragma once

#include "../registry.h"

namespace gradhpo::hpo {

/// register_builtin_methods (offline, online, random and grid search), register_bayesian_methods
/// and register_hoag_method; a second call does nothing.
void register_all_methods(Registry& r = Registry::global());

}  // namespace gradhpo::hpo
