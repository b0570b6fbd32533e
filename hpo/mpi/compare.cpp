#include "compare.h"

#include "task_pool.h"

namespace gradhpo::mpi {

std::vector<hpo::RowPool::Outcome> RankPool::run(std::int64_t count, const std::function<std::string(std::int64_t)>& task,
                                                 const std::function<void(const Outcome&)>& on_done) {
  const auto as_row = [](const TaskOutcome& t) { return Outcome{t.index, t.ok, t.bytes, t.error, t.rank}; };
  std::vector<Outcome> out;
  for (const TaskOutcome& t : run_tasks(comm_, count, task, [&](const TaskOutcome& t) {
         if (on_done) on_done(as_row(t));
       }))
    out.push_back(as_row(t));
  return out;
}

void RankPool::share(std::string& bytes) { comm_.broadcast(bytes); }

}  // namespace gradhpo::mpi
