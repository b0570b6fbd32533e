#include "search.h"

#include <cstring>
#include <vector>

#include "../../engine/error.h"
#include "../registry.h"
#include "task_pool.h"

namespace gradhpo::mpi {

namespace {

// A trial's journal entry on the wire: fixed-size numbers as they are in memory, strings and
// vectors as a u64 length and their elements (every rank runs the same build).
class Out {
 public:
  template <class T>
  void pod(const T& x) {
    bytes.append(reinterpret_cast<const char*>(&x), sizeof x);
  }
  void str(const std::string& s) {
    pod<std::uint64_t>(s.size());
    bytes.append(s);
  }
  std::string bytes;
};

class In {
 public:
  explicit In(const std::string& b) : b_(b) {}
  template <class T>
  T pod() {
    require(at_ + sizeof(T) <= b_.size(), "mpi search: a trial record cut short");
    T x;
    std::memcpy(&x, b_.data() + at_, sizeof x);
    at_ += sizeof x;
    return x;
  }
  std::string str() {
    const auto n = pod<std::uint64_t>();
    require(at_ + n <= b_.size(), "mpi search: a trial record cut short");
    std::string s = b_.substr(at_, n);
    at_ += n;
    return s;
  }

 private:
  const std::string& b_;
  std::size_t at_ = 0;
};

std::string encode(const hpo::JournalEntry& e) {
  Out o;
  const hpo::Trial& t = e.trial;
  o.pod<std::int32_t>(t.index);
  const std::vector<double> theta = t.theta.to_vector();
  o.pod<std::uint64_t>(theta.size());
  for (double x : theta) o.pod(x);
  o.pod(t.val_loss);
  o.pod(t.final_train_loss);
  o.pod<std::uint8_t>(t.failed ? 1 : 0);
  o.pod(t.inner_steps);
  o.pod(e.steps_run);
  o.pod(e.work.multiply_adds);
  o.pod(e.work.elementwise);
  const hpo::FailedTrial& f = t.failure;
  o.str(f.method);
  o.pod(f.trial);
  o.pod(f.inner_step);
  o.pod(f.value);
  o.pod<std::uint64_t>(f.hyperparameters.size());
  for (const auto& [name, value] : f.hyperparameters) {
    o.str(name);
    o.pod(value);
  }
  o.str(f.reason);
  return o.bytes;
}

hpo::JournalEntry decode(const std::string& bytes) {
  In in(bytes);
  hpo::JournalEntry e;
  hpo::Trial& t = e.trial;
  t.index = in.pod<std::int32_t>();
  std::vector<double> theta(in.pod<std::uint64_t>());
  for (double& x : theta) x = in.pod<double>();
  t.theta = Tensor::from(theta, Shape{static_cast<std::int64_t>(theta.size())}, DType::f64);
  t.val_loss = in.pod<double>();
  t.final_train_loss = in.pod<double>();
  t.failed = in.pod<std::uint8_t>() != 0;
  t.inner_steps = in.pod<std::int64_t>();
  e.steps_run = in.pod<std::int64_t>();
  e.work.multiply_adds = in.pod<std::int64_t>();
  e.work.elementwise = in.pod<std::int64_t>();
  hpo::FailedTrial& f = t.failure;
  f.method = in.str();
  f.trial = in.pod<std::int64_t>();
  f.inner_step = in.pod<std::int64_t>();
  f.value = in.pod<double>();
  const auto n = in.pod<std::uint64_t>();
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string name = in.str();
    f.hyperparameters.emplace_back(std::move(name), in.pod<double>());
  }
  f.reason = in.str();
  return e;
}

}  // namespace

hpo::SearchRun run_search(const Communicator& comm, const std::string& name, const hpo::BilevelProblem& problem,
                          const hpo::SearchOptions& common, const std::map<std::string, std::string>& options) {
  require(name == "random" || name == "grid",
          "mpi search: '" + name + "' proposes from its results, so its trials cannot be proposed before they train "
          "(random and grid search can)");
  require(common.budget.seconds == 0 && common.budget.work == 0,
          "mpi search: a budget in seconds or work gives no trial count to spread over the ranks (give inner steps or "
          "trials; a resumed run replays the count it recorded)");
  const hpo::Registry& registry = hpo::Registry::global();
  // 1. Propose.
  std::vector<hpo::Proposal> proposals;
  hpo::TrialJournal dry;
  dry.proposals = &proposals;
  {
    const hpo::TrialJournalScope scope(&dry);
    (void)registry.run_search(name, problem, common, options);
  }
  // 2. Train over the ranks.
  const std::vector<TaskOutcome> outcomes = run_tasks(
      comm, static_cast<std::int64_t>(proposals.size()),
      [&](std::int64_t i) { return encode(hpo::train_proposal(problem, proposals[static_cast<std::size_t>(i)])); });
  // Rank 0 sends every rank the entries in index order — or the error one trial threw (not a
  // diverged run: that is a failed trial), so that every rank throws it.
  std::string all;
  if (comm.is_root()) {
    Out o;
    std::string error;
    for (const TaskOutcome& t : outcomes) {
      if (!t.ok && error.empty())
        error = "mpi search: trial " + std::to_string(t.index) + " failed on rank " + std::to_string(t.rank) + ": " + t.error;
      o.str(t.bytes);
    }
    all = error.empty() ? "+" + o.bytes : "!" + error;
  }
  comm.broadcast(all);
  require(!all.empty() && all[0] == '+', all.empty() ? "mpi search: nothing from rank 0" : all.substr(1));
  all.erase(0, 1);
  // 3. Replay: the single-process search, its trials taken from the ranks.
  hpo::TrialJournal journal;
  In in(all);
  for (std::size_t i = 0; i < proposals.size(); ++i) journal.recorded.push_back(decode(in.str()));
  const hpo::TrialJournalScope scope(&journal);
  return registry.run_search(name, problem, common, options);
}

}  // namespace gradhpo::mpi
