// compare_seeds over a pool (compare.h, row_pool.h): every seed's methods as independent tasks,
// the coordinator holding the plans' hooks. What every process knows is kept identical by the
// coordinator's shares: the plans' checks and recorded rows before any task, each round's new
// rows after it, so every process can give each task its budget and return the same result.
#include <chrono>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "../progress.h"
#include "compare.h"
#include "compare_record.h"

namespace gradhpo::hpo {

namespace {

using nlohmann::json;

/// What every process holds of one seed.
struct SeedRows {
  Comparison header;                                 ///< no results; its calibration once a task measured it
  std::vector<std::optional<MethodResult>> rows;     ///< by method, as they finish (or were recorded)
  std::vector<std::vector<JournalEntry>> trials;     ///< recorded trials of the unfinished methods
  bool calibrated = false;
};

/// What only the coordinator holds of one seed: its plan's hooks and method names.
struct SeedHooks {
  std::function<void(std::size_t, const MethodResult&)> on_result;
  std::function<void(std::size_t, std::size_t, const JournalEntry&)> on_trial;
  std::vector<std::string> methods;
};

/// A task's answer: its seed's calibration as this process measured it, the seconds it spent
/// outside the method's clock (calibration, warm-up), and the row.
std::string task_answer(double work_per_step, double calibration_seconds, const MethodResult& row) {
  return json{{"work_per_step", work_per_step}, {"calibration_seconds", calibration_seconds},
              {"row", encode_method_result(row)}}
      .dump();
}

/// The plan of one seed on this process: built when a task needs it, one at a time (a worker's
/// tasks come mostly in seed order), and the seed's calibration, measured once per process.
class Plans {
 public:
  Plans(const std::vector<std::uint64_t>& seeds, const std::function<ComparisonPlan(std::uint64_t)>& build)
      : seeds_(seeds), build_(build), calibration_(seeds.size()) {}

  const ComparisonPlan& at(std::size_t k) {
    if (k != held_) {
      plan_.reset();  // the previous one goes first: at most one is alive
      plan_ = build_(seeds_[k]);
      require(plan_->problem != nullptr, "comparison: the plan at seed " + std::to_string(seeds_[k]) + " has no problem");
      held_ = k;
    }
    return *plan_;
  }
  std::uint64_t seed(std::size_t k) const { return seeds_[k]; }
  /// Drops the plan held (the next at() builds again).
  void release() {
    plan_.reset();
    held_ = static_cast<std::size_t>(-1);
  }
  /// The seed's calibration; `spent` grows by its seconds when it is measured now.
  const Calibration& calibration(std::size_t k, double& spent) {
    if (!calibration_[k]) {
      calibration_[k] = calibrate(*at(k).problem);
      spent += calibration_[k]->seconds;
    }
    return *calibration_[k];
  }

 private:
  const std::vector<std::uint64_t>& seeds_;
  const std::function<ComparisonPlan(std::uint64_t)>& build_;
  std::optional<ComparisonPlan> plan_;
  std::size_t held_ = static_cast<std::size_t>(-1);
  std::vector<std::optional<Calibration>> calibration_;
};

/// The coordinator's first share: every seed's header, recorded rows and trials, or the error
/// its checks threw.
std::string first_share(Plans& plans, std::size_t K, std::vector<SeedHooks>& hooks) {
  json seeds = json::array();
  std::size_t M = 0;
  try {
    for (std::size_t k = 0; k < K; ++k) {
      const ComparisonPlan& plan = plans.at(k);
      validate_comparison(*plan.problem, plan.methods, plan.options);
      SeedHooks h{plan.options.on_result, plan.options.on_trial, {}};
      for (const CompareMethod& m : plan.methods) h.methods.push_back(m.name);
      if (k == 0) M = h.methods.size();
      require(h.methods.size() == M && (k == 0 || h.methods.front() == hooks.front().methods.front()),
              "compare_seeds: the plan at seed " + std::to_string(plans.seed(k)) + " has other methods than the first");
      hooks.push_back(std::move(h));
      json rows = json::array(), trials = json::array();
      for (std::size_t i = 0; i < M; ++i) {
        const auto recorded = plan.options.recorded.find(i);
        rows.push_back(recorded == plan.options.recorded.end() ? json(nullptr) : json(encode_method_result(recorded->second)));
        json t = json::array();
        if (const auto r = plan.options.recorded_trials.find(i); r != plan.options.recorded_trials.end())
          for (const JournalEntry& e : r->second) t.push_back(encode_trial(e));
        trials.push_back(std::move(t));
      }
      seeds.push_back({{"header", encode_comparison(comparison_header(*plan.problem, plan.options))},
                       {"rows", std::move(rows)},
                       {"trials", std::move(trials)}});
    }
  } catch (const std::exception& e) {
    return json{{"error", e.what()}}.dump();
  }
  return json{{"seeds", std::move(seeds)}}.dump();
}

void read_first_share(const std::string& bytes, std::vector<SeedRows>& seeds) {
  const json j = json::parse(bytes);
  if (j.contains("error")) throw Error(j.at("error").get<std::string>());
  for (const json& s : j.at("seeds")) {
    SeedRows rows;
    rows.header = decode_comparison(s.at("header").get<std::string>(), "the coordinator's plan");
    for (const json& r : s.at("rows"))
      rows.rows.push_back(r.is_null() ? std::nullopt
                                      : std::optional<MethodResult>(decode_method_result(r.get<std::string>(), "a recorded row")));
    for (const json& t : s.at("trials")) {
      rows.trials.emplace_back();
      for (const json& e : t) rows.trials.back().push_back(decode_trial(e.get<std::string>(), "a recorded trial"));
    }
    seeds.push_back(std::move(rows));
  }
}

/// A round's new rows and calibrations, as the coordinator shares them.
json seed_state(const std::vector<SeedRows>& seeds, const std::vector<std::pair<std::size_t, std::size_t>>& done) {
  json rows = json::array(), calibration = json::array();
  for (const auto& [k, i] : done) rows.push_back({k, i, encode_method_result(*seeds[k].rows[i])});
  for (const SeedRows& s : seeds)
    calibration.push_back(s.calibrated ? json{s.header.work_per_step, s.header.calibration_seconds} : json(nullptr));
  return {{"rows", std::move(rows)}, {"calibration", std::move(calibration)}};
}

void read_seed_state(const json& j, std::vector<SeedRows>& seeds) {
  for (const json& r : j.at("rows"))
    seeds[r.at(0).get<std::size_t>()].rows[r.at(1).get<std::size_t>()] =
        decode_method_result(r.at(2).get<std::string>(), "the coordinator's row");
  for (std::size_t k = 0; k < seeds.size(); ++k) {
    const json& c = j.at("calibration").at(k);
    if (c.is_null()) continue;
    seeds[k].calibrated = true;
    seeds[k].header.work_per_step = c.at(0).get<double>();
    seeds[k].header.calibration_seconds = c.at(1).get<double>();
  }
}

}  // namespace

SeededComparison compare_seeds(const std::vector<std::uint64_t>& seeds,
                               const std::function<ComparisonPlan(std::uint64_t seed)>& plan, RowPool& pool) {
  require(!seeds.empty(), "compare_seeds: no seeds");
  require(std::set<std::uint64_t>(seeds.begin(), seeds.end()).size() == seeds.size(), "compare_seeds: two seeds are equal");
  const std::size_t K = seeds.size();
  Plans plans(seeds, plan);
  std::vector<SeedHooks> hooks;  // the coordinator's
  std::string bytes = pool.coordinator() ? first_share(plans, K, hooks) : std::string();
  plans.release();  // the coordinator's last plan: tasks build theirs
  pool.share(bytes);
  std::vector<SeedRows> state;
  read_first_share(bytes, state);  // the checks' error, on every process
  const std::size_t M = state.front().rows.size();
  const bool equalised = state.front().header.equalise != Equalise::none;

  std::int64_t rows_done = 0;
  for (const SeedRows& s : state)
    for (const auto& r : s.rows) rows_done += r.has_value();
  const auto rows_total = static_cast<std::int64_t>(K * M);
  if (pool.coordinator()) report_progress("rows", rows_done, rows_total);

  // Equalised, the first methods run first: the others' budgets are what they used.
  for (const bool first_round : {true, false}) {
    if (first_round && !equalised) continue;
    std::vector<std::pair<std::size_t, std::size_t>> pending;  // (seed, method), seed by seed
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t i = 0; i < (first_round ? 1 : M); ++i)
        if (!state[k].rows[i]) pending.emplace_back(k, i);
    const auto task = [&](std::int64_t j) {
      const auto [k, i] = pending[static_cast<std::size_t>(j)];
      double spent = 0;  // outside the method's clock
      const Calibration& calibration = plans.calibration(k, spent);
      const ComparisonPlan& p = plans.at(k);
      const CompareMethod& m = p.methods.at(i);
      if (m.warm_up) {
        const auto start = std::chrono::steady_clock::now();
        m.warm_up(*p.problem);
        spent += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
      ComparisonOptions options = p.options;
      options.recorded_trials = {{i, state[k].trials.at(i)}};
      if (!pool.coordinator()) options.on_trial = nullptr;  // only the coordinator writes
      const Budget given = given_budget(options, calibration);
      const Budget budget = row_budget(options, given, i > 0 && state[k].rows[0] ? &*state[k].rows[0] : nullptr);
      return task_answer(calibration.work_per_step, spent,
                         run_row(*p.problem, m, i, budget, given.work_per_step, options));
    };
    std::vector<std::pair<std::size_t, std::size_t>> done;
    const auto on_done = [&](const RowPool::Outcome& o) {
      const auto [k, i] = pending.at(static_cast<std::size_t>(o.index));
      SeedRows& s = state[k];
      MethodResult row;
      if (o.ok) {
        const json a = json::parse(o.bytes);
        row = decode_method_result(a.at("row").get<std::string>(), "the row of worker " + std::to_string(o.worker));
        if (!s.calibrated) s.header.work_per_step = a.at("work_per_step").get<double>();
        s.calibrated = true;
        s.header.calibration_seconds += a.at("calibration_seconds").get<double>();
      } else {  // it failed outside its method's run (the row itself never throws)
        row = failed_row(Hyperparameters{}, hooks[k].methods[i], "failed on rank " + std::to_string(o.worker) + ": " + o.error);
      }
      s.rows[i] = std::move(row);
      done.emplace_back(k, i);
      if (hooks[k].on_result) hooks[k].on_result(i, *s.rows[i]);
      report_progress("rows", ++rows_done, rows_total);
    };
    (void)pool.run(static_cast<std::int64_t>(pending.size()), task, on_done);
    std::string news = pool.coordinator() ? seed_state(state, done).dump() : std::string();
    pool.share(news);
    read_seed_state(json::parse(news), state);
  }

  // A seed whose rows were all recorded ran no task: its calibration is measured here.
  std::string calibrations;
  if (pool.coordinator()) {
    for (std::size_t k = 0; k < K; ++k)
      if (!state[k].calibrated) {
        double spent = 0;
        state[k].header.work_per_step = plans.calibration(k, spent).work_per_step;
        state[k].header.calibration_seconds = spent;
        state[k].calibrated = true;
      }
    calibrations = seed_state(state, {}).dump();
  }
  pool.share(calibrations);
  read_seed_state(json::parse(calibrations), state);

  SeededComparison out;
  out.seeds = seeds;
  for (SeedRows& s : state) {
    Comparison c = std::move(s.header);
    for (std::optional<MethodResult>& r : s.rows) c.results.push_back(std::move(*r));
    out.runs.push_back(std::move(c));
  }
  return out;
}

}  // namespace gradhpo::hpo
