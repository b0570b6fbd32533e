#include "compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>

#include "../hoag/register.h"
#include "../inner_run.h"
#include "../progress.h"

namespace gradhpo::hpo {

Scorer scorer(std::shared_ptr<const ClassificationTask> task, data::Dataset set) {
  require(task != nullptr, "scorer: no task");
  require(set.size() >= 1, "scorer: the set '" + set.name + "' is empty");
  return [task = std::move(task), set = std::move(set)](const Tensor& w) {
    const nn::Evaluation e = task->evaluate(w, set);
    return Score{e.loss, e.accuracy};
  };
}

namespace {

std::string number(double v, int precision = 4) {
  if (std::isnan(v)) return "–";
  std::ostringstream s;
  s << std::setprecision(precision) << v;
  return s.str();
}

}  // namespace

void describe_hyperparameters(const Hyperparameters& h, MethodResult& r) {
  r.hyperparameters_brief = "–";
  if (!r.theta.defined()) return;
  for (std::int64_t i = 0; i < r.theta.numel(); ++i) r.hyperparameters.emplace_back(h.entry_name(i), h.value_at(r.theta, i));
  std::vector<std::string> items;  // one per group whose entries agree, else one per entry
  for (int g = 0; g < static_cast<int>(h.count()); ++g) {
    const std::int64_t first = h.offset(g), n = h.group(g).size();
    const auto entry = [&](std::int64_t k) { return r.hyperparameters[static_cast<std::size_t>(first + k)]; };
    bool uniform = n > 1;
    for (std::int64_t k = 1; k < n && uniform; ++k) uniform = entry(k).second == entry(0).second;
    if (uniform) {
      items.push_back(h.group(g).name + " = " + number(entry(0).second) + " (all " + std::to_string(n) + ")");
      continue;
    }
    for (std::int64_t k = 0; k < n; ++k) items.push_back(entry(k).first + " = " + number(entry(k).second));
  }
  constexpr std::size_t kShown = 6;
  std::ostringstream s;
  for (std::size_t i = 0; i < std::min(items.size(), kShown); ++i) s << (i ? ", " : "") << items[i];
  if (items.size() > kShown) s << ", ... (" << r.hyperparameters.size() << " values in all)";
  r.hyperparameters_brief = s.str();
}


OuterRun run_outer_within(const BilevelProblem& problem, const Method& method, OuterOptions outer, const Budget& budget,
                          const Tensor& theta0) {
  const std::int64_t T = problem.horizon;
  budget.validate(T);
  // Every outer step is one pass through the horizon: T inner steps (forward mode trains while
  // it carries its tangents; reverse mode trains once and then goes back).
  std::int64_t steps = budget.inner_steps > 0 ? budget.inner_steps / T : std::int64_t{1} << 30;
  if (budget.trials > 0) steps = std::min(steps, budget.trials);
  outer.max_steps = static_cast<int>(std::min<std::int64_t>(steps, 1 << 30));
  BudgetMeter meter(budget);
  OuterRun run = run_outer(problem, method, outer, theta0, [&](const OuterStep&, const OuterOptimizer&) {
    meter.charge(T);
    return meter.can_start(T);
  });
  if (!run.gave_up && !meter.can_start(T)) run.stop_reason = meter.exhausted_reason(T);
  return run;
}

MethodResult outer_result(const BilevelProblem& problem, std::string name, const OuterRun& run) {
  MethodResult r;
  r.method = std::move(name);
  const OuterStep* best = nullptr;
  for (const OuterStep& s : run.steps) {
    accumulate(r.cost, s.cost);
    if (s.rejected) {  // the step's own record: where it diverged, the value, λ, the reason
      FailedTrial f = s.failure;
      f.method = r.method;
      r.failed_trials.push_back(std::move(f));
    }
    if (!s.rejected && std::isfinite(s.val_loss) && (!best || s.val_loss < best->val_loss)) best = &s;
  }
  if (best) {
    r.theta = best->theta;
    r.best_val_loss = best->val_loss;
  }
  describe_hyperparameters(problem.hyper, r);
  r.evaluations = static_cast<int>(run.steps.size());
  r.failures = run.rejections;
  r.inner_steps = static_cast<std::int64_t>(run.steps.size()) * problem.horizon;
  r.seconds = run.seconds;
  r.peak_bytes = r.cost.peak_bytes;
  r.stop_reason = run.stop_reason;
  return r;
}

MethodResult search_result(const BilevelProblem& problem, std::string name, const SearchRun& run) {
  MethodResult r;
  r.method = std::move(name);
  if (const Trial* t = run.best_trial()) {
    r.theta = t->theta;
    r.best_val_loss = t->val_loss;
  }
  describe_hyperparameters(problem.hyper, r);
  r.evaluations = static_cast<int>(run.trials.size());
  r.failures = run.failures;
  for (const Trial& t : run.trials)
    if (t.failed) r.failed_trials.push_back(t.failure);
  r.inner_steps = run.inner_steps;
  r.seconds = run.seconds;
  r.cost = run.cost;
  r.peak_bytes = run.cost.peak_bytes;
  r.stop_reason = run.stop_reason;
  return r;
}

namespace {

/// One hypergradient over the first two steps at the initial θ: every product shape the method's
/// passes use is planned (engine/kernels/gemm.h) before its clock starts. A problem this fails on
/// fails again, with its message, in the method's own run.
std::function<void(const BilevelProblem&)> offline_warm_up(std::shared_ptr<const Method> method) {
  return [method](const BilevelProblem& p) {
    BilevelProblem q = p;
    q.horizon = std::min<std::int64_t>(p.horizon, 2);
    try {
      (void)method->compute(q, q.hyper.initial(DType::f64));
    } catch (const Error&) {
    }
  };
}

}  // namespace

Budget replay_budget(const MethodResult& r) {
  Budget b;
  b.trials = std::max(1, r.evaluations);
  return b;
}

CompareMethod offline_entry(std::string label, std::shared_ptr<const Method> method, OuterOptions outer, Tensor theta0) {
  require(method != nullptr, "comparison: entry '" + label + "' has no method");
  CompareMethod m;
  m.name = label;
  m.warm_up = offline_warm_up(method);
  m.validate = [outer, method](const BilevelProblem& p, const Budget&) {
    outer.validate(p.hyper.count());
    method->check_supports(p);
  };
  m.run = [label, method, outer, theta0](const BilevelProblem& p, const Budget& b) {
    return outer_result(p, label, run_outer_within(p, *method, outer, b, theta0));
  };
  return m;
}

CompareMethod offline_entry(std::string label, const std::string& name, const OptionTexts& options, OuterOptions outer,
                            Tensor theta0) {
  return offline_entry(std::move(label), std::shared_ptr<const Method>(Registry::global().make_offline(name, options)),
                       std::move(outer), std::move(theta0));
}

CompareMethod greedy_setting_entry(std::string label, std::shared_ptr<const Method> method, OuterOptions outer,
                                   std::int64_t segments) {
  require(method != nullptr, "comparison: entry '" + label + "' has no method");
  require(segments >= 1, "comparison: '" + label + "': the greedy setting needs >= 1 segments, got " + std::to_string(segments));
  CompareMethod m;
  m.name = label;
  m.warm_up = offline_warm_up(method);
  m.validate = [outer, method](const BilevelProblem& p, const Budget&) {
    outer.validate(p.hyper.count());
    method->check_supports(p);
  };
  m.run = [label, method, outer, segments](const BilevelProblem& p, const Budget& budget) {
    const std::int64_t H = std::max<std::int64_t>(1, p.horizon / segments);
    TrialRunner runner(p, budget, 0, label);
    OuterOptions o = outer;
    o.max_steps = budget.inner_steps > 0 ? static_cast<int>(std::max<std::int64_t>(1, budget.inner_steps / p.horizon)) : 1 << 30;
    std::vector<FailedTrial> rejected;  // segments whose training diverged (retried with smaller steps)
    const OuterRun greedy = run_greedy(p, H, *method, o, Tensor(), [&](const OuterStep& s, const OuterOptimizer&) {
      runner.add_cost(s.cost);
      if (s.rejected) {
        rejected.push_back(s.failure);
        rejected.back().method = label;
      }
      if (s.next_first != 0) return true;  // a pass ends with the segment that reaches T
      runner.run_at(s.next_theta);          // the pass's end θ, trained from w₀, charged T
      return runner.can_run();
    });
    MethodResult r = search_result(p, label, runner.finish(runner.can_run() || greedy.gave_up ? greedy.stop_reason : ""));
    r.failures += static_cast<int>(rejected.size());
    r.failed_trials.insert(r.failed_trials.end(), rejected.begin(), rejected.end());
    return r;
  };
  return m;
}

CompareMethod online_entry(std::string label, const std::string& name, OuterOptions online, const OptionTexts& options) {
  const OnlineEntry& entry = Registry::global().online(name);
  (void)Options::parse(entry.options, options, name);  // a bad option is refused here, before any problem
  const auto make = [name, online, options](const BilevelProblem& p) {
    return Registry::global().make_online(name, p, online, options);
  };
  CompareMethod m;
  m.name = label;
  m.validate = [make](const BilevelProblem& p, const Budget&) { make(p); };  // refuses groups it cannot learn
  m.run = [label, make](const BilevelProblem& p, const Budget& budget) {
    const auto start = std::chrono::steady_clock::now();
    std::unique_ptr<OnlineMethod> method = make(p);
    BudgetMeter meter(budget);
    MethodResult r;
    r.method = label;
    Tensor theta = p.hyper.initial(DType::f64);
    std::int64_t passes = budget.inner_steps > 0 ? budget.inner_steps / p.horizon : 0;
    if (budget.trials > 0) passes = passes > 0 ? std::min(passes, budget.trials) : budget.trials;
    report_progress("pass", 0, passes);
    while (meter.can_start(p.horizon)) {
      BilevelState s = method->init(theta);
      meter.charge(p.horizon);
      ++r.evaluations;
      const int pass = r.evaluations - 1;
      try {
        method->run(s);
      } catch (const InnerDivergence& e) {
        ++r.failures;
        r.stop_reason = e.what();
        r.failed_trials.push_back(failed_trial(p.hyper, s.theta, label, pass, e.step(), e.value(), e.what()));
        break;
      }
      const Candidate sc = evaluate_candidate(p, s.theta);  // the θ it ends with, trained from w₀
      if (sc.failed) {
        ++r.failures;
        r.stop_reason = "the θ of pass " + std::to_string(r.evaluations) + ", trained from w₀: " + sc.message;
        r.failed_trials.push_back(failed_trial(p.hyper, s.theta, label, pass, sc.failed_step, sc.failed_value, r.stop_reason));
        break;
      }
      if (!(sc.val_loss >= r.best_val_loss)) {
        r.best_val_loss = sc.val_loss;
        r.theta = s.theta.clone();
      }
      theta = s.theta;
      report_progress("pass", r.evaluations, passes);
    }
    r.inner_steps = meter.steps_used();
    if (r.stop_reason.empty()) r.stop_reason = meter.exhausted_reason(p.horizon);
    describe_hyperparameters(p.hyper, r);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.cost.seconds = r.seconds;
    r.peak_bytes = 4 * static_cast<std::size_t>(p.num_params()) * sizeof(double);
    return r;
  };
  return m;
}

CompareMethod search_entry(std::string label, const std::string& name, SearchOptions common, const OptionTexts& options) {
  const SearchEntry& entry = Registry::global().search(name);
  const Options parsed = Options::parse(entry.options, options, name);
  auto with_budget = [common](const Budget& b) {
    SearchOptions o = common;
    o.budget = b;
    return o;
  };
  CompareMethod m;
  m.name = label;
  m.validate = [name, with_budget, parsed](const BilevelProblem& p, const Budget& b) {
    const SearchEntry& e = Registry::global().search(name);
    if (e.validate) e.validate(p, with_budget(b), parsed);
  };
  m.run = [label, name, with_budget, parsed](const BilevelProblem& p, const Budget& b) {
    return search_result(p, label, Registry::global().search(name).run(p, with_budget(b), parsed));
  };
  return m;
}

namespace {

/// A typed search as an entry: the comparison's budget replaces the options' own.
template <class Options, class Search>
CompareMethod search_method(std::string name, Options options, Search search) {
  auto with_budget = [options](const Budget& b) {
    Options o = options;
    o.budget = b;
    return o;
  };
  CompareMethod m;
  m.name = name;
  m.validate = [with_budget](const BilevelProblem& p, const Budget& b) { with_budget(b).validate(p); };
  m.run = [name, with_budget, search](const BilevelProblem& p, const Budget& b) {
    return search_result(p, name, search(p, with_budget(b)));
  };
  return m;
}

}  // namespace

CompareMethod random_search_method(std::string name, RandomSearchOptions options) {
  return search_method(std::move(name), std::move(options), random_search);
}
CompareMethod grid_search_method(std::string name, GridSearchOptions options) {
  return search_method(std::move(name), std::move(options), grid_search);
}
CompareMethod bayesian_method(std::string name, BayesianOptions options) {
  return search_method(std::move(name), std::move(options), bayesian_optimization);
}

CompareMethod hoag_method(std::string name, HoagOptions options) {
  CompareMethod m;
  m.name = name;
  m.validate = [options](const BilevelProblem& p, const Budget&) {
    require_loss_defining(p.hyper, "HOAG");
    options.validate();
  };
  m.run = [name, options](const BilevelProblem& p, const Budget& budget) {
    return search_result(p, name, hoag_within(p, options, budget));
  };
  return m;
}

void validate_comparison(const BilevelProblem& problem, const std::vector<CompareMethod>& methods,
                         const ComparisonOptions& options) {
  problem.validate();
  Budget checked = options.budget;  // a work budget's unit is measured by the calibration run
  if (checked.work > 0 && checked.work_per_step <= 0) checked.work_per_step = 1;
  checked.validate(problem.horizon);
  require(!methods.empty(), "comparison: no methods to compare");
  std::set<std::string> names;
  for (const CompareMethod& m : methods) {
    require(!m.name.empty(), "comparison: a method without a name");
    require(static_cast<bool>(m.run), "comparison: method '" + m.name + "' has nothing to run");
    require(names.insert(m.name).second, "comparison: two methods are called '" + m.name + "'");
    if (m.validate) m.validate(problem, checked);
  }
}

Comparison comparison_header(const BilevelProblem& problem, const ComparisonOptions& options) {
  Comparison c;
  c.problem = problem.description;
  c.budget = options.budget;
  c.equalise = options.equalise;
  c.search_space = options.search_space;
  c.horizon = problem.horizon;
  c.test_name = options.test_name;
  return c;
}

Calibration calibrate(const BilevelProblem& problem) {
  // Its products are planned now (engine/kernels/gemm.h), before any method's clock starts.
  const auto start = std::chrono::steady_clock::now();
  const WorkCount before = work_count();
  try {
    (void)run_inner(problem, problem.hyper.initial(DType::f64));
  } catch (const InnerDivergence&) {  // its work until then still measures the steps it ran
  }
  Calibration c;
  c.work_per_step = (work_count() - before).total() / static_cast<double>(problem.horizon);
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return c;
}

Budget given_budget(const ComparisonOptions& options, const Calibration& calibration) {
  Budget given = options.budget;
  if (given.work_per_step <= 0) given.work_per_step = calibration.work_per_step;
  require(given.work == 0 || given.work_per_step > 0,
          "comparison: a work budget, but the calibration run did no measurable work (work per step 0)");
  return given;
}

Budget row_budget(const ComparisonOptions& options, const Budget& given, const MethodResult* first) {
  if (options.equalise == Equalise::none || first == nullptr) return given;
  Budget budget;
  budget.work_per_step = given.work_per_step;
  if (options.equalise == Equalise::seconds) budget.seconds = first->seconds;
  else budget.work = first->work;
  if (!(budget.seconds > 0 || budget.work > 0)) return given;  // the first method did nothing: the given budget
  return budget;
}

MethodResult failed_row(const Hyperparameters& h, const std::string& method, const std::string& why,
                        std::int64_t inner_step, double value) {
  MethodResult r;
  r.method = method;
  r.failures = 1;
  r.stop_reason = "stopped: " + why;
  r.failed_trials.push_back(failed_trial(h, Tensor(), method, -1, inner_step, value, why));
  describe_hyperparameters(h, r);
  return r;
}

MethodResult run_row(const BilevelProblem& problem, const CompareMethod& m, std::size_t index, const Budget& budget,
                     double work_per_step, const ComparisonOptions& options) {
  TrialJournal journal;
  if (const auto trials = options.recorded_trials.find(index); trials != options.recorded_trials.end())
    journal.recorded = trials->second;
  if (options.on_trial)
    journal.on_trial = [&, position = journal.recorded.size()](const JournalEntry& e) mutable {
      options.on_trial(index, position++, e);
    };
  const TrialJournalScope journal_scope(options.on_trial || !journal.recorded.empty() ? &journal : nullptr);
  MethodResult r;
  const double t0 = budget_clock_now();
  const WorkCount w0 = work_count();
  try {
    r = m.run(problem, budget);
  } catch (const InnerDivergence& e) {
    // A method that lets training diverge where it cannot recover ends its row there; the
    // other methods' rows are not lost.
    r = failed_row(problem.hyper, m.name, e.what(), e.step(), e.value());
  } catch (const std::exception& e) {  // any other error of the method: its row too, never the job's
    r = failed_row(problem.hyper, m.name, e.what());
  }
  r.seconds = budget_clock_now() - t0;
  // Trials replayed from a run store did their work when they ran: it counts here too.
  r.work = work_in_steps(work_count() - w0 + journal.replayed_work, work_per_step);
  r.budget = budget;
  if ((options.evaluate || options.evaluate_validation) && r.theta.defined()) {
    try {
      const Tensor w = run_inner(problem, r.theta).final_state.w();
      if (options.evaluate) r.test = options.evaluate(w);
      if (options.evaluate_validation) r.validation = options.evaluate_validation(w);
    } catch (const InnerDivergence&) {
      // stays NaN: cannot happen for a θ whose own run finished, unless the problem is not deterministic
    }
  }
  return r;
}

Comparison compare(const BilevelProblem& problem, const std::vector<CompareMethod>& methods,
                   const ComparisonOptions& options) {
  validate_comparison(problem, methods, options);
  Comparison c = comparison_header(problem, options);
  // Calibration, outside every method's clock: one plain training run at the initial θ, then warm-ups.
  const auto calibration_start = std::chrono::steady_clock::now();
  const Calibration calibration = calibrate(problem);
  c.work_per_step = calibration.work_per_step;
  for (const CompareMethod& m : methods)
    if (m.warm_up) m.warm_up(problem);
  c.calibration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - calibration_start).count();
  const Budget given = given_budget(options, calibration);
  const auto n_methods = static_cast<std::int64_t>(methods.size());
  report_progress("methods", 0, n_methods);
  for (std::size_t index = 0; index < methods.size(); ++index) {
    if (const auto done = options.recorded.find(index); done != options.recorded.end()) {
      c.results.push_back(done->second);
    } else {
      const Budget budget = row_budget(options, given, c.results.empty() ? nullptr : &c.results.front());
      c.results.push_back(run_row(problem, methods[index], index, budget, given.work_per_step, options));
      if (options.on_result) options.on_result(index, c.results.back());
    }
    report_progress("methods", static_cast<std::int64_t>(c.results.size()), n_methods);
  }
  return c;
}

Comparison compare(const ComparisonPlan& plan) {
  require(plan.problem != nullptr, "comparison: a plan without a problem");
  return compare(*plan.problem, plan.methods, plan.options);
}

// --- rendering -------------------------------------------------------------------------------

namespace {

/// printf pads by bytes; names hold multi-byte symbols (×, λ, –): pad by code points.
std::size_t width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

std::string percent(double fraction) { return std::isnan(fraction) ? "–" : number(100 * fraction) + "%"; }

std::string work_steps(double w) {
  if (!(w > 0)) return "–";
  std::ostringstream s;
  s << std::setprecision(3);
  if (w >= 1e6) s << w / 1e6 << "M";
  else if (w >= 1e4) s << w / 1e3 << "k";
  else s << std::fixed << std::setprecision(0) << w;
  return s.str();
}

/// At most `n` columns (code points), "…" marking a cut.
std::string cut(const std::string& s, std::size_t n) {
  if (width(s) <= n) return s;
  std::string out;
  std::size_t w = 0;
  for (unsigned char ch : s) {
    const bool starts = (ch & 0xC0) != 0x80;
    if (starts && ++w > n - 1) break;
    out += static_cast<char>(ch);
  }
  return out + "…";
}

constexpr std::size_t kColumns = 120;

/// `text` in lines of at most `n` columns, broken after "; " where it can be, continued indented.
std::string wrap(const std::string& text, std::size_t n) {
  std::string out, line;
  std::size_t from = 0;
  while (from < text.size()) {
    std::size_t to = text.find("; ", from);
    to = to == std::string::npos ? text.size() : to + 2;
    const std::string piece = text.substr(from, to - from);
    if (!line.empty() && width(line) + width(piece) > n) {
      out += line + "\n";
      line = "  ";
    }
    line += piece;
    from = to;
  }
  return out + cut(line, n) + "\n";
}

std::vector<std::vector<std::string>> cells(const Comparison& c) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"method", "runs", "failed", "inner steps", "work", "wall s", "best L_val", "val acc",
                  c.test_name + " acc"});
  for (const MethodResult& r : c.results)
    rows.push_back({cut(r.method, 40), std::to_string(r.evaluations), std::to_string(r.failures),
                    std::to_string(r.inner_steps), work_steps(r.work), number(r.seconds, 3), number(r.best_val_loss, 5),
                    percent(r.validation.accuracy), percent(r.test.accuracy)});
  return rows;
}

/// Lines in a table of `rows` (names left, numbers right).
std::string render(const std::vector<std::vector<std::string>>& rows, TableFormat format) {
  std::vector<std::size_t> w(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t k = 0; k < row.size(); ++k) w[k] = std::max(w[k], width(row[k]));
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& row) {
    for (std::size_t k = 0; k < row.size(); ++k) {
      const std::string pad(w[k] - width(row[k]), ' ');
      const bool left = k == 0;
      if (format == TableFormat::markdown) out << "| ";
      else if (k) out << "  ";
      out << (left ? row[k] + pad : pad + row[k]);
      if (format == TableFormat::markdown) out << " ";
    }
    out << (format == TableFormat::markdown ? "|\n" : "\n");
  };
  line(rows.front());
  if (format == TableFormat::markdown) {
    for (std::size_t k = 0; k < w.size(); ++k) out << "|" << std::string(w[k] + 1, '-') << (k == 0 ? "-" : ":");
    out << "|\n";
  } else {
    std::size_t total = 0;
    for (std::size_t k : w) total += k + 2;
    out << std::string(total - 2, '-') << "\n";
  }
  for (std::size_t i = 1; i < rows.size(); ++i) line(rows[i]);
  return out.str();
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

std::string json_string(const std::string& s) {
  std::ostringstream q;
  q << '"';
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') q << '\\' << ch;
    else if (ch == '\n') q << "\\n";
    else if (ch < 0x20) q << "\\u" << std::hex << std::setw(4) << std::setfill('0') << static_cast<int>(ch) << std::dec;
    else q << ch;
  }
  q << '"';
  return q.str();
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream s;
  s << std::setprecision(17) << v;
  return s.str();
}

std::string budget_json(const Budget& b) {
  std::ostringstream s;
  s << "{\"inner_steps\": " << b.inner_steps << ", \"seconds\": " << json_number(b.seconds) << ", \"work\": "
    << json_number(b.work) << ", \"trials\": " << b.trials << "}";
  return s.str();
}

}  // namespace

const char* equalise_name(Equalise e) {
  switch (e) {
    case Equalise::none: return "none";
    case Equalise::seconds: return "seconds";
    case Equalise::work: return "work";
  }
  return "none";
}

Equalise parse_equalise(const std::string& name) {
  for (Equalise e : {Equalise::none, Equalise::seconds, Equalise::work})
    if (name == equalise_name(e)) return e;
  throw Error("equalise: expected none, seconds or work, got '" + name + "'");
}

std::string Comparison::table(TableFormat format) const {
  std::ostringstream head;
  switch (equalise) {
    case Equalise::none: head << "equal budget: " << budget.describe(); break;
    case Equalise::seconds: head << "equal seconds: the first method ran " << budget.describe() << ", the others its wall time"; break;
    case Equalise::work: head << "equal work: the first method ran " << budget.describe() << ", the others its work"; break;
  }
  head << " (T = " << horizon << " inner steps per run";
  if (work_per_step > 0) head << "; work in plain steps of " << work_steps(work_per_step) << " operations";
  head << ")";
  std::ostringstream out;
  out << wrap(head.str(), kColumns);
  if (!problem.empty()) out << cut(problem, kColumns) << "\n";
  out << render(cells(*this), format);
  if (equalise != Equalise::none && results.size() > 1) {  // what the first method's use gave the others
    std::set<std::string> given;
    for (std::size_t i = 1; i < results.size(); ++i) given.insert(results[i].budget.describe());
    std::string line;
    if (given.size() == 1) line = *given.begin() + " each";
    else
      for (std::size_t i = 1; i < results.size(); ++i)
        line += (i > 1 ? "; " : "") + cut(results[i].method, 24) + " " + results[i].budget.describe();
    out << wrap("budget given to the others: " + line, kColumns);
  }
  if (!search_space.empty()) out << wrap("search space: " + search_space, kColumns);
  out << "hyperparameters at each method's best validation loss (all of them in results.json):\n";
  for (const MethodResult& r : results) out << cut("  " + r.method + ": " + r.hyperparameters_brief, kColumns) << "\n";
  bool any_failed = false;
  for (const MethodResult& r : results) {
    if (r.failed_trials.empty()) continue;
    if (!any_failed) out << "failed trials (every one in results.json):\n";
    any_failed = true;
    constexpr std::size_t kShown = 3;
    for (std::size_t k = 0; k < std::min(kShown, r.failed_trials.size()); ++k) {
      const FailedTrial& f = r.failed_trials[k];
      out << cut("  " + r.method + ", trial " + std::to_string(f.trial) + ": " + f.reason, kColumns) << "\n";
    }
    if (r.failed_trials.size() > kShown)
      out << "  " << cut(r.method, 40) << ": " << r.failed_trials.size() - kShown << " more\n";
  }
  return out.str();
}

std::string Comparison::csv() const {
  std::ostringstream out;
  out << "method,evaluations,failures,inner_steps,best_val_loss,val_accuracy," << test_name << "_accuracy," << test_name
      << "_loss,seconds,work_steps,peak_bytes,gradient_evals,fwd_over_rev_passes,stop_reason,hyperparameters\n";
  for (const MethodResult& r : results) {
    std::ostringstream h;
    for (std::size_t i = 0; i < r.hyperparameters.size(); ++i)
      h << (i ? ";" : "") << r.hyperparameters[i].first << "=" << json_number(r.hyperparameters[i].second);
    out << csv_field(r.method) << "," << r.evaluations << "," << r.failures << "," << r.inner_steps << ","
        << json_number(r.best_val_loss) << "," << json_number(r.validation.accuracy) << ","
        << json_number(r.test.accuracy) << "," << json_number(r.test.loss) << ","
        << json_number(r.seconds) << "," << json_number(r.work) << "," << r.peak_bytes << "," << r.cost.gradient_evals << ","
        << r.cost.fwd_over_rev_passes << "," << csv_field(r.stop_reason) << "," << csv_field(h.str()) << "\n";
  }
  return out.str();
}

std::string Comparison::json() const {
  std::ostringstream out;
  out << "{\"problem\": " << json_string(problem) << ", \"horizon\": " << horizon << ", \"budget\": " << budget_json(budget)
      << ", \"equalise\": " << json_string(equalise_name(equalise)) << ", \"work_per_step\": " << json_number(work_per_step)
      << ", \"calibration_seconds\": " << json_number(calibration_seconds)
      << ", \"search_space\": " << json_string(search_space) << ", \"test_set\": "
      << json_string(test_name) << ", \"results\": [";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const MethodResult& r = results[i];
    out << (i ? ", " : "") << "{\"method\": " << json_string(r.method) << ", \"evaluations\": " << r.evaluations
        << ", \"failures\": " << r.failures << ", \"inner_steps\": " << r.inner_steps
        << ", \"best_val_loss\": " << json_number(r.best_val_loss)
        << ", \"val_accuracy\": " << json_number(r.validation.accuracy) << ", \"test_accuracy\": "
        << json_number(r.test.accuracy) << ", \"test_loss\": " << json_number(r.test.loss)
        << ", \"seconds\": " << json_number(r.seconds) << ", \"work_steps\": " << json_number(r.work)
        << ", \"budget\": " << budget_json(r.budget) << ", \"peak_bytes\": " << r.peak_bytes
        << ", \"gradient_evals\": " << r.cost.gradient_evals << ", \"fwd_over_rev_passes\": "
        << r.cost.fwd_over_rev_passes << ", \"stop_reason\": " << json_string(r.stop_reason)
        << ", \"hyperparameters\": {";
    for (std::size_t k = 0; k < r.hyperparameters.size(); ++k)
      out << (k ? ", " : "") << json_string(r.hyperparameters[k].first) << ": " << json_number(r.hyperparameters[k].second);
    out << "}";
    if (!r.failed_trials.empty()) {  // (absent when nothing failed)
      out << ", \"failed_trials\": [";
      for (std::size_t k = 0; k < r.failed_trials.size(); ++k) {
        const FailedTrial& f = r.failed_trials[k];
        out << (k ? ", " : "") << "{\"trial\": " << f.trial << ", \"inner_step\": " << f.inner_step
            << ", \"reason\": " << json_string(f.reason) << ", \"hyperparameters\": {";
        for (std::size_t j = 0; j < f.hyperparameters.size(); ++j)
          out << (j ? ", " : "") << json_string(f.hyperparameters[j].first) << ": " << json_number(f.hyperparameters[j].second);
        out << "}}";
      }
      out << "]";
    }
    out << "}";
  }
  out << "]}\n";
  return out.str();
}

// --- seeds -------------------------------------------------------------------------------------

SeedSpread seed_spread(const std::vector<double>& values) {
  SeedSpread r;
  double sum = 0;
  for (double v : values)
    if (std::isfinite(v)) {
      sum += v;
      ++r.n;
    }
  if (r.n == 0) return r;
  r.mean = sum / r.n;
  if (r.n < 2) return r;
  double ss = 0;
  for (double v : values)
    if (std::isfinite(v)) ss += (v - r.mean) * (v - r.mean);
  r.sd = std::sqrt(ss / (r.n - 1));
  r.se = r.sd / std::sqrt(static_cast<double>(r.n));
  return r;
}

namespace {

SeedSpread over_seeds(const SeededComparison& s, std::size_t method, double (*of)(const MethodResult&)) {
  std::vector<double> v;
  for (const Comparison& c : s.runs) v.push_back(of(c.results.at(method)));
  return seed_spread(v);
}

std::string mean_sd(const SeedSpread& x, double scale, int precision, const std::string& unit = "") {
  if (x.n == 0) return "–";
  std::string s = number(scale * x.mean, precision) + unit;
  if (x.n >= 2) s += " ± " + number(scale * x.sd, 2);
  return s;
}

}  // namespace

SeedSpread SeededComparison::test_accuracy(std::size_t m) const {
  return over_seeds(*this, m, [](const MethodResult& r) { return r.test.accuracy; });
}
SeedSpread SeededComparison::best_val_loss(std::size_t m) const {
  return over_seeds(*this, m, [](const MethodResult& r) { return r.best_val_loss; });
}
SeedSpread SeededComparison::seconds(std::size_t m) const {
  return over_seeds(*this, m, [](const MethodResult& r) { return r.seconds; });
}
SeedSpread SeededComparison::work(std::size_t m) const {
  return over_seeds(*this, m, [](const MethodResult& r) { return r.work; });
}
SeedSpread SeededComparison::evaluations(std::size_t m) const {
  return over_seeds(*this, m, [](const MethodResult& r) { return static_cast<double>(r.evaluations); });
}

std::string SeededComparison::table(TableFormat format) const {
  require(!runs.empty(), "seeded comparison: no runs");
  const Comparison& first = runs.front();
  std::ostringstream out;
  std::ostringstream seed_list;
  for (std::size_t i = 0; i < seeds.size(); ++i) seed_list << (i ? ", " : "") << seeds[i];
  out << runs.size() << " paired seeds (" << seed_list.str() << "): mean ± sd over seeds, (se) its standard error\n";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"method", first.test_name + " acc % (se)", "best L_val", "runs", "failed", "wall s", "work"});
  const std::size_t n = first.results.size();
  for (std::size_t m = 0; m < n; ++m) {
    const SeedSpread acc = test_accuracy(m);
    int failed = 0;
    for (const Comparison& c : runs) failed += c.results.at(m).failures;
    std::string a = mean_sd(acc, 100, 4);
    if (acc.n >= 2) a += " (" + number(100 * acc.se, 2) + ")";
    rows.push_back({cut(first.results[m].method, 40), a, mean_sd(best_val_loss(m), 1, 4),
                    number(evaluations(m).mean, 3), std::to_string(failed), number(seconds(m).mean, 3),
                    work_steps(work(m).mean)});
  }
  out << render(rows, format);
  // Each method against the best by mean test accuracy: a difference smaller than two standard
  // errors of the difference is not resolved by these seeds.
  std::size_t best = n;
  for (std::size_t m = 0; m < n; ++m) {
    const SeedSpread a = test_accuracy(m);
    if (a.n > 0 && (best == n || a.mean > test_accuracy(best).mean)) best = m;
  }
  if (best < n && runs.size() >= 2) {
    const SeedSpread b = test_accuracy(best);
    out << "best by mean " << first.test_name << " accuracy: " << first.results[best].method << "\n";
    for (std::size_t m = 0; m < n; ++m) {
      if (m == best) continue;
      const SeedSpread a = test_accuracy(m);
      if (a.n < 2 || b.n < 2) continue;
      const double diff = 100 * (b.mean - a.mean), se = 100 * std::sqrt(a.se * a.se + b.se * b.se);
      const bool resolved = diff > 2 * se;
      out << cut("  " + first.results[m].method + ": " + number(diff, 3) + " points behind (se of the difference " +
                     number(se, 2) + ")" + (resolved ? ": more than 2 se, resolved" : ": within the spread, not resolved by " +
                                                               std::to_string(runs.size()) + " seeds"),
                 kColumns)
          << "\n";
    }
  }
  return out.str();
}

std::string SeededComparison::json() const {
  std::ostringstream out;
  out << "{\"seeds\": [";
  for (std::size_t i = 0; i < seeds.size(); ++i) out << (i ? ", " : "") << seeds[i];
  out << "], \"summary\": [";
  const auto item = [](const SeedSpread& x) {
    std::ostringstream s;
    s << "{\"n\": " << x.n << ", \"mean\": " << json_number(x.mean) << ", \"sd\": " << json_number(x.sd)
      << ", \"se\": " << json_number(x.se) << "}";
    return s.str();
  };
  const std::size_t n = runs.empty() ? 0 : runs.front().results.size();
  for (std::size_t m = 0; m < n; ++m) {
    out << (m ? ", " : "") << "{\"method\": " << json_string(runs.front().results[m].method)
        << ", \"test_accuracy\": " << item(test_accuracy(m)) << ", \"best_val_loss\": " << item(best_val_loss(m))
        << ", \"seconds\": " << item(seconds(m)) << ", \"work_steps\": " << item(work(m))
        << ", \"evaluations\": " << item(evaluations(m)) << "}";
  }
  out << "], \"runs\": [";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    std::string one = runs[i].json();
    while (!one.empty() && one.back() == '\n') one.pop_back();
    out << (i ? ", " : "") << "{\"seed\": " << seeds[i] << ", \"comparison\": " << one << "}";
  }
  out << "]}\n";
  return out.str();
}

SeededComparison compare_seeds(const std::vector<std::uint64_t>& seeds,
                               const std::function<Comparison(std::uint64_t seed)>& run_one) {
  require(!seeds.empty(), "compare_seeds: no seeds");
  require(std::set<std::uint64_t>(seeds.begin(), seeds.end()).size() == seeds.size(), "compare_seeds: two seeds are equal");
  SeededComparison s;
  s.seeds = seeds;
  for (std::uint64_t seed : seeds) {
    s.runs.push_back(run_one(seed));
    require(s.runs.back().results.size() == s.runs.front().results.size() &&
                (s.runs.size() == 1 || s.runs.back().results.front().method == s.runs.front().results.front().method),
            "compare_seeds: the run at seed " + std::to_string(seed) + " has other methods than the first");
  }
  return s;
}

SeededComparison compare_seeds(const std::vector<std::uint64_t>& seeds,
                               const std::function<ComparisonPlan(std::uint64_t seed)>& plan) {
  return compare_seeds(seeds, [&plan](std::uint64_t seed) { return compare(plan(seed)); });
}

}  // namespace gradhpo::hpo
