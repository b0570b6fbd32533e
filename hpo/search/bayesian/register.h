// Bayesian optimization's registry entry (gradhpo::bayesian): the component registers it itself,
// since gradhpo::hpo's register_builtin_methods cannot reach GSL and NLopt.
#pragma once

#include "../../registry.h"

namespace gradhpo::hpo {

/// Adds "bayesian" (GP with a Matérn 5/2 kernel + expected improvement, Sobol initial design).
void register_bayesian_methods(Registry& r = Registry::global());

}  // namespace gradhpo::hpo
