// INTEGRATION SHIM (issue 18): the papers' problems moved to the library,
// <gradhpo/hpo/tasks/experiments.h>. Only tools/cmd_hpo.cpp (not helper H3's file) still includes
// this header for SplitSets and load_split_sets; once it includes the library header and names
// hpo::SplitSets / hpo::load_split_sets, delete this file.
#pragma once

#include <gradhpo/hpo/tasks/experiments.h>

namespace gradhpo::tools {

using hpo::load_split_sets;
using hpo::SplitSets;

}  // namespace gradhpo::tools
