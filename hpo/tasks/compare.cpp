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
  outer.max_steps = budget.inner_steps > 0 ? static_cast<int>(std::min<std::int64_t>(budget.inner_steps / T, 1 << 30))
                                           : 1 << 30;
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

CompareMethod offline_entry(std::string label, std::shared_ptr<const Method> method, OuterOptions outer, Tensor theta0) {
  require(method != nullptr, "comparison: entry '" + label + "' has no method");
  CompareMethod m;
  m.name = label;
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
    const std::int64_t passes = budget.inner_steps > 0 ? budget.inner_steps / p.horizon : 0;
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

Comparison compare(const BilevelProblem& problem, const std::vector<CompareMethod>& methods,
                   const ComparisonOptions& options) {
  problem.validate();
  options.budget.validate(problem.horizon);
  require(!methods.empty(), "comparison: no methods to compare");
  std::set<std::string> names;
  for (const CompareMethod& m : methods) {
    require(!m.name.empty(), "comparison: a method without a name");
    require(static_cast<bool>(m.run), "comparison: method '" + m.name + "' has nothing to run");
    require(names.insert(m.name).second, "comparison: two methods are called '" + m.name + "'");
    if (m.validate) m.validate(problem, options.budget);
  }
  Comparison c;
  c.problem = problem.description;
  c.budget = options.budget;
  c.horizon = problem.horizon;
  c.test_name = options.test_name;
  const auto n_methods = static_cast<std::int64_t>(methods.size());
  report_progress("methods", 0, n_methods);
  for (std::size_t index = 0; index < methods.size(); ++index) {
    const CompareMethod& m = methods[index];
    if (const auto done = options.recorded.find(index); done != options.recorded.end()) {
      c.results.push_back(done->second);
      report_progress("methods", static_cast<std::int64_t>(c.results.size()), n_methods);
      continue;
    }
    MethodResult r;
    TrialJournal journal;
    if (const auto trials = options.recorded_trials.find(index); trials != options.recorded_trials.end())
      journal.recorded = trials->second;
    if (options.on_trial)
      journal.on_trial = [&, position = journal.recorded.size()](const JournalEntry& e) mutable {
        options.on_trial(index, position++, e);
      };
    const TrialJournalScope journal_scope(options.on_trial || !journal.recorded.empty() ? &journal : nullptr);
    try {
      r = m.run(problem, options.budget);
    } catch (const InnerDivergence& e) {
      // A method that lets training diverge where it cannot recover ends its row there; the
      // other methods' rows are not lost (r is still empty: run threw before returning).
      r.method = m.name;
      r.failures = 1;
      r.stop_reason = "stopped: " + std::string(e.what());
      r.failed_trials.push_back(failed_trial(problem.hyper, Tensor(), m.name, -1, e.step(), e.value(), e.what()));
    }
    if ((options.evaluate || options.evaluate_validation) && r.theta.defined()) {
      try {
        const Tensor w = run_inner(problem, r.theta).final_state.w();
        if (options.evaluate) r.test = options.evaluate(w);
        if (options.evaluate_validation) r.validation = options.evaluate_validation(w);
      } catch (const InnerDivergence&) {
        // stays NaN: cannot happen for a θ whose own run finished, unless the problem is not deterministic
      }
    }
    c.results.push_back(std::move(r));
    if (options.on_result) options.on_result(index, c.results.back());
    report_progress("methods", static_cast<std::int64_t>(c.results.size()), n_methods);
  }
  return c;
}

// --- rendering -------------------------------------------------------------------------------

namespace {

std::string bytes(std::size_t b) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(b < 1024 * 1024 ? 1 : 2);
  if (b < 1024 * 1024) s << static_cast<double>(b) / 1024 << " KB";
  else s << static_cast<double>(b) / (1024.0 * 1024.0) << " MB";
  return s.str();
}

/// printf pads by bytes; names hold multi-byte symbols (×, λ, –): pad by code points.
std::size_t width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

std::string percent(double fraction) { return std::isnan(fraction) ? "–" : number(100 * fraction) + "%"; }

std::vector<std::vector<std::string>> cells(const Comparison& c) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"method", "runs", "failed", "inner steps", "best L_val", "val acc", c.test_name + " acc",
                  c.test_name + " loss", "wall s", "peak (own)", "hyperparameters found"});
  for (const MethodResult& r : c.results)
    rows.push_back({r.method, std::to_string(r.evaluations), std::to_string(r.failures), std::to_string(r.inner_steps),
                    number(r.best_val_loss, 6), percent(r.validation.accuracy), percent(r.test.accuracy),
                    number(r.test.loss), number(r.seconds, 3), bytes(r.peak_bytes), r.hyperparameters_brief});
  return rows;
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

}  // namespace

std::string Comparison::table(TableFormat format) const {
  const std::vector<std::vector<std::string>> rows = cells(*this);
  std::vector<std::size_t> w(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t k = 0; k < row.size(); ++k) w[k] = std::max(w[k], width(row[k]));
  std::ostringstream out;
  out << "equal budget: " << budget.describe() << " (T = " << horizon << " inner steps per run)\n";
  if (!problem.empty()) out << problem << "\n";
  auto line = [&](const std::vector<std::string>& row) {
    for (std::size_t k = 0; k < row.size(); ++k) {
      const std::string pad(w[k] - width(row[k]), ' ');
      const bool left = k == 0 || k + 1 == row.size();  // names left, numbers right
      if (format == TableFormat::markdown) out << "| ";
      else if (k) out << "  ";
      out << (left ? row[k] + pad : pad + row[k]);
      if (format == TableFormat::markdown) out << " ";
    }
    out << (format == TableFormat::markdown ? "|\n" : "\n");
  };
  line(rows.front());
  if (format == TableFormat::markdown) {
    for (std::size_t k = 0; k < w.size(); ++k) out << "|" << std::string(w[k] + 1, '-') << (k == 0 || k + 1 == w.size() ? "-" : ":");
    out << "|\n";
  } else {
    std::size_t total = 0;
    for (std::size_t k : w) total += k + 2;
    out << std::string(total - 2, '-') << "\n";
  }
  for (std::size_t i = 1; i < rows.size(); ++i) line(rows[i]);
  return out.str();
}

std::string Comparison::csv() const {
  std::ostringstream out;
  out << "method,evaluations,failures,inner_steps,best_val_loss,val_accuracy," << test_name << "_accuracy," << test_name
      << "_loss,seconds,peak_bytes,gradient_evals,fwd_over_rev_passes,stop_reason,hyperparameters\n";
  for (const MethodResult& r : results) {
    std::ostringstream h;
    for (std::size_t i = 0; i < r.hyperparameters.size(); ++i)
      h << (i ? ";" : "") << r.hyperparameters[i].first << "=" << json_number(r.hyperparameters[i].second);
    out << csv_field(r.method) << "," << r.evaluations << "," << r.failures << "," << r.inner_steps << ","
        << json_number(r.best_val_loss) << "," << json_number(r.validation.accuracy) << ","
        << json_number(r.test.accuracy) << "," << json_number(r.test.loss) << ","
        << json_number(r.seconds) << "," << r.peak_bytes << "," << r.cost.gradient_evals << ","
        << r.cost.fwd_over_rev_passes << "," << csv_field(r.stop_reason) << "," << csv_field(h.str()) << "\n";
  }
  return out.str();
}

std::string Comparison::json() const {
  std::ostringstream out;
  out << "{\"problem\": " << json_string(problem) << ", \"horizon\": " << horizon << ", \"budget\": {\"inner_steps\": "
      << budget.inner_steps << ", \"seconds\": " << json_number(budget.seconds) << "}, \"test_set\": "
      << json_string(test_name) << ", \"results\": [";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const MethodResult& r = results[i];
    out << (i ? ", " : "") << "{\"method\": " << json_string(r.method) << ", \"evaluations\": " << r.evaluations
        << ", \"failures\": " << r.failures << ", \"inner_steps\": " << r.inner_steps
        << ", \"best_val_loss\": " << json_number(r.best_val_loss)
        << ", \"val_accuracy\": " << json_number(r.validation.accuracy) << ", \"test_accuracy\": "
        << json_number(r.test.accuracy) << ", \"test_loss\": " << json_number(r.test.loss)
        << ", \"seconds\": " << json_number(r.seconds) << ", \"peak_bytes\": " << r.peak_bytes
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

}  // namespace gradhpo::hpo
