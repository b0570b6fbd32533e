#include "register_all.h"

#include "../hoag/register.h"
#include "../search/bayesian/register.h"

namespace gradhpo::hpo {

void register_all_methods(Registry& r) {
  register_builtin_methods(r);  // idempotent itself
  if (!r.contains("bayesian")) register_bayesian_methods(r);
  if (!r.contains("hoag")) register_hoag_method(r);
}

}  // namespace gradhpo::hpo
