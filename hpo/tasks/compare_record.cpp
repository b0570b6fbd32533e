#include "compare_record.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "../run_store.h"

namespace gradhpo::hpo {

namespace {

using nlohmann::json;

// nlohmann writes a double as the shortest text that reads back to it; NaN and ±inf as text.
json number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}

double number_of(const json& j) {
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    throw Error("not a number: '" + s + "'");
  }
  return j.get<double>();
}

json pairs(const std::vector<std::pair<std::string, double>>& v) {
  json a = json::array();
  for (const auto& [name, value] : v) a.push_back({name, number(value)});
  return a;
}

std::vector<std::pair<std::string, double>> pairs_of(const json& a) {
  std::vector<std::pair<std::string, double>> v;
  for (const json& p : a) v.emplace_back(p.at(0).get<std::string>(), number_of(p.at(1)));
  return v;
}

json cost(const Cost& c) {
  return {{"seconds", number(c.seconds)},
          {"gradient_evals", c.gradient_evals},
          {"fwd_over_rev_passes", c.fwd_over_rev_passes},
          {"directions", c.directions},
          {"step_passes", c.step_passes},
          {"trajectory_bytes", c.trajectory_bytes},
          {"info_buffer_bytes", c.info_buffer_bytes},
          {"checkpoint_bytes", c.checkpoint_bytes},
          {"tangent_bytes", c.tangent_bytes},
          {"peak_bytes", c.peak_bytes},
          {"info_bits_per_parameter_step", number(c.info_bits_per_parameter_step)}};
}

Cost cost_of(const json& j) {
  Cost c;
  c.seconds = number_of(j.at("seconds"));
  c.gradient_evals = j.at("gradient_evals").get<std::int64_t>();
  c.fwd_over_rev_passes = j.at("fwd_over_rev_passes").get<std::int64_t>();
  c.directions = j.at("directions").get<std::int64_t>();
  c.step_passes = j.at("step_passes").get<std::int64_t>();
  c.trajectory_bytes = j.at("trajectory_bytes").get<std::size_t>();
  c.info_buffer_bytes = j.at("info_buffer_bytes").get<std::size_t>();
  c.checkpoint_bytes = j.at("checkpoint_bytes").get<std::size_t>();
  c.tangent_bytes = j.at("tangent_bytes").get<std::size_t>();
  c.peak_bytes = j.at("peak_bytes").get<std::size_t>();
  c.info_bits_per_parameter_step = number_of(j.at("info_bits_per_parameter_step"));
  return c;
}

json budget(const Budget& b) {
  return {{"inner_steps", b.inner_steps}, {"seconds", number(b.seconds)}, {"work", number(b.work)},
          {"trials", b.trials}, {"work_per_step", number(b.work_per_step)}};
}

Budget budget_of(const json& j) {
  Budget b;
  b.inner_steps = j.at("inner_steps").get<std::int64_t>();
  b.seconds = number_of(j.at("seconds"));
  b.work = number_of(j.at("work"));
  b.trials = j.at("trials").get<std::int64_t>();
  b.work_per_step = number_of(j.at("work_per_step"));
  return b;
}

json score(const Score& s) { return {{"loss", number(s.loss)}, {"accuracy", number(s.accuracy)}}; }
Score score_of(const json& j) { return {number_of(j.at("loss")), number_of(j.at("accuracy"))}; }

}  // namespace

std::string method_section(std::size_t index) { return numbered_section("method/", index); }

json failure(const FailedTrial& f) {
  return {{"method", f.method}, {"trial", f.trial}, {"inner_step", f.inner_step}, {"value", number(f.value)},
          {"hyperparameters", pairs(f.hyperparameters)}, {"reason", f.reason}};
}

FailedTrial failure_of(const json& f) {
  FailedTrial t;
  t.method = f.at("method").get<std::string>();
  t.trial = f.at("trial").get<std::int64_t>();
  t.inner_step = f.at("inner_step").get<std::int64_t>();
  t.value = number_of(f.at("value"));
  t.hyperparameters = pairs_of(f.at("hyperparameters"));
  t.reason = f.at("reason").get<std::string>();
  return t;
}

json doubles(const std::vector<double>& v) {
  json a = json::array();
  for (double x : v) a.push_back(number(x));
  return a;
}

std::vector<double> doubles_of(const json& a) {
  std::vector<double> v;
  for (const json& x : a) v.push_back(number_of(x));
  return v;
}

std::string trial_prefix(std::size_t index) { return numbered_section("trials/", index) + "/"; }

std::string trial_section(std::size_t index, std::size_t trial) { return numbered_section(trial_prefix(index), trial); }

std::string encode_trial(const JournalEntry& e) {
  const Trial& t = e.trial;
  return json{{"index", t.index},
              {"point", doubles(t.point)},
              {"values", doubles(t.values)},
              {"theta", t.theta.defined() ? doubles(t.theta.to(DType::f64).to_vector()) : json(nullptr)},
              {"val_loss", number(t.val_loss)},
              {"final_train_loss", number(t.final_train_loss)},
              {"failed", t.failed},
              {"failure", failure(t.failure)},
              {"inner_steps", t.inner_steps},
              {"seconds", number(t.seconds)},
              {"steps_run", e.steps_run},
              {"work", json{{"multiply_adds", e.work.multiply_adds}, {"elementwise", e.work.elementwise}}}}
      .dump();
}

JournalEntry decode_trial(const std::string& text, const std::string& where) {
  try {
    const json j = json::parse(text);
    JournalEntry e;
    Trial& t = e.trial;
    t.index = j.at("index").get<int>();
    t.point = doubles_of(j.at("point"));
    t.values = doubles_of(j.at("values"));
    if (!j.at("theta").is_null()) {
      const std::vector<double> theta = doubles_of(j.at("theta"));
      t.theta = Tensor::from(theta, Shape{static_cast<std::int64_t>(theta.size())}, DType::f64);
    }
    t.val_loss = number_of(j.at("val_loss"));
    t.final_train_loss = number_of(j.at("final_train_loss"));
    t.failed = j.at("failed").get<bool>();
    t.failure = failure_of(j.at("failure"));
    t.inner_steps = j.at("inner_steps").get<std::int64_t>();
    t.seconds = number_of(j.at("seconds"));
    e.steps_run = j.at("steps_run").get<std::int64_t>();
    e.work.multiply_adds = j.at("work").at("multiply_adds").get<std::int64_t>();
    e.work.elementwise = j.at("work").at("elementwise").get<std::int64_t>();
    return e;
  } catch (const json::exception& err) {
    throw Error(where + ": a malformed trial record: " + err.what());
  }
}

std::string encode_method_result(const MethodResult& r) {
  json theta = nullptr;
  if (r.theta.defined()) {
    theta = json::array();
    for (double x : r.theta.to(DType::f64).to_vector()) theta.push_back(number(x));
  }
  json failures = json::array();
  for (const FailedTrial& f : r.failed_trials) failures.push_back(failure(f));
  return json{{"method", r.method},
              {"theta", theta},
              {"best_val_loss", number(r.best_val_loss)},
              {"hyperparameters", pairs(r.hyperparameters)},
              {"hyperparameters_brief", r.hyperparameters_brief},
              {"test", score(r.test)},
              {"validation", score(r.validation)},
              {"evaluations", r.evaluations},
              {"failures", r.failures},
              {"failed_trials", failures},
              {"inner_steps", r.inner_steps},
              {"seconds", number(r.seconds)},
              {"peak_bytes", r.peak_bytes},
              {"cost", cost(r.cost)},
              {"stop_reason", r.stop_reason},
              {"metadata", r.metadata},
              {"work", number(r.work)},
              {"budget", budget(r.budget)}}
      .dump();
}

MethodResult decode_method_result(const std::string& text, const std::string& where) {
  try {
    const json j = json::parse(text);
    MethodResult r;
    r.method = j.at("method").get<std::string>();
    if (!j.at("theta").is_null()) {
      std::vector<double> theta;
      for (const json& x : j.at("theta")) theta.push_back(number_of(x));
      r.theta = Tensor::from(theta, Shape{static_cast<std::int64_t>(theta.size())}, DType::f64);
    }
    r.best_val_loss = number_of(j.at("best_val_loss"));
    r.hyperparameters = pairs_of(j.at("hyperparameters"));
    r.hyperparameters_brief = j.at("hyperparameters_brief").get<std::string>();
    r.test = score_of(j.at("test"));
    r.validation = score_of(j.at("validation"));
    r.evaluations = j.at("evaluations").get<int>();
    r.failures = j.at("failures").get<int>();
    for (const json& f : j.at("failed_trials")) r.failed_trials.push_back(failure_of(f));
    r.inner_steps = j.at("inner_steps").get<std::int64_t>();
    r.seconds = number_of(j.at("seconds"));
    r.peak_bytes = j.at("peak_bytes").get<std::size_t>();
    r.cost = cost_of(j.at("cost"));
    r.stop_reason = j.at("stop_reason").get<std::string>();
    r.metadata = j.at("metadata").get<std::map<std::string, std::string>>();
    r.work = number_of(j.at("work"));
    r.budget = budget_of(j.at("budget"));  // what the method was given (equalised: the first method's use)
    return r;
  } catch (const json::exception& e) {
    throw Error(where + ": a malformed comparison row: " + e.what());
  }
}

std::string encode_comparison(const Comparison& c) {
  json rows = json::array();
  for (const MethodResult& r : c.results) rows.push_back(encode_method_result(r));
  return json{{"problem", c.problem},
              {"budget", budget(c.budget)},
              {"equalise", equalise_name(c.equalise)},
              {"search_space", c.search_space},
              {"work_per_step", number(c.work_per_step)},
              {"calibration_seconds", number(c.calibration_seconds)},
              {"horizon", c.horizon},
              {"test_name", c.test_name},
              {"results", rows}}
      .dump();
}

Comparison decode_comparison(const std::string& text, const std::string& where) {
  try {
    const json j = json::parse(text);
    Comparison c;
    c.problem = j.at("problem").get<std::string>();
    c.budget = budget_of(j.at("budget"));
    c.equalise = parse_equalise(j.at("equalise").get<std::string>());
    c.search_space = j.at("search_space").get<std::string>();
    c.work_per_step = number_of(j.at("work_per_step"));
    c.calibration_seconds = number_of(j.at("calibration_seconds"));
    c.horizon = j.at("horizon").get<std::int64_t>();
    c.test_name = j.at("test_name").get<std::string>();
    for (const json& r : j.at("results")) c.results.push_back(decode_method_result(r.get<std::string>(), where));
    return c;
  } catch (const json::exception& e) {
    throw Error(where + ": a malformed comparison: " + e.what());
  }
}

}  // namespace gradhpo::hpo
