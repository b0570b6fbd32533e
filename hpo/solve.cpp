#include "solve.h"

#include <charconv>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "registry.h"

namespace gradhpo::hpo {

namespace {

std::string number(double x) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, x).ptr;  // the shortest text that reads back to x
  return std::string(buf, end);
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "none registered; call register_builtin_methods()" : s;
}

/// The outer optimizer's options as recorded in a state, max_steps left out (a resumed run may
/// take more steps than the interrupted one planned).
std::string outer_json(const OuterOptions& o) {
  std::string steps;
  for (double s : o.step) steps += (steps.empty() ? "" : ", ") + number(s);
  return std::string("{\"kind\": \"") + outer_name(o.kind) + "\", \"step\": [" + steps + "], \"clip\": " + number(o.clip) +
         ", \"sign-halvings-to-stop\": " + std::to_string(o.sign_halvings_to_stop) +
         ", \"max-rejections\": " + std::to_string(o.max_rejections) + ", \"adam-beta1\": " + number(o.adam_beta1) +
         ", \"adam-beta2\": " + number(o.adam_beta2) + ", \"adam-eps\": " + number(o.adam_eps) + "}";
}

double norm_of(const std::vector<double>& g) {
  double s = 0;
  for (double x : g) s += x * x;
  return std::sqrt(s);
}

SolveRow row_of(const OuterStep& s, bool greedy) {
  SolveRow row;
  row.step = s.step;
  row.first_inner = s.first_inner;
  row.theta = s.theta.to(DType::f64).to_vector();
  if (s.hypergradient.defined()) {
    row.hypergradient = s.hypergradient.to_vector();
    row.hypergradient_norm = norm_of(row.hypergradient);
  }
  row.val_loss = s.val_loss;
  row.train_loss = s.train_loss;
  row.cost = s.cost;
  row.rejected = s.rejected;
  row.failure = s.failure;
  row.clipped = s.clipped;
  row.pass = s.pass;
  // Greedy: a segment that reached T leaves weights trained for the whole horizon.
  row.pass_end = greedy && !s.rejected && s.next_first == 0;
  return row;
}


/// Early stopping (Micaelli & Storkey, Appendix B, Figure 3): the row with the lowest L_val
/// among the candidates — every step not rejected, or in the greedy setting every pass end (the
/// weights carried to T are the model that setting delivers). The first such row on a tie.
int best_row(const std::vector<SolveRow>& rows, bool greedy) {
  int best = -1;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const bool candidate = greedy ? rows[i].pass_end : !rows[i].rejected;
    if (candidate && (best < 0 || rows[i].val_loss < rows[static_cast<std::size_t>(best)].val_loss))
      best = static_cast<int>(i);
  }
  return best;
}

OuterResume resume_of(const SolveState& s) {
  OuterResume from;
  from.theta = s.theta;
  from.previous_theta = s.previous_theta;
  from.state = s.outer;
  from.next_step = s.next_step;
  from.rejections = s.rejections;
  from.pass = s.pass;
  from.first_inner = s.first_inner;
  from.start = s.start;
  return from;
}

}  // namespace

std::string SolveOptions::recorded_options() const {
  const Options m = Options::parse(Registry::global().options(method), method_options, method);
  return "{\"method\": " + m.to_json() + ", \"outer\": " + outer_json(outer) +
         ", \"greedy-segment-steps\": " + std::to_string(greedy_segment_steps) + "}";
}

void SolveOptions::validate(const BilevelProblem& problem) const {
  const Registry& r = Registry::global();
  const std::string offline = joined(r.names(MethodKind::offline));
  if (!r.contains(method)) throw Error("solve: unknown method '" + method + "' (offline methods: " + offline + ")");
  if (r.kind(method) != MethodKind::offline)
    throw Error("solve: '" + method + "' is " + (r.kind(method) == MethodKind::online ? "an online" : "a search") +
                " method; the outer loop steps on an offline method's hypergradient (" + offline + ")");
  problem.validate();
  const OfflineEntry& entry = r.offline(method);
  const Options parsed = Options::parse(entry.options, method_options, method);
  outer.validate(problem.hyper.count());
  if (greedy_segment_steps != 0) {
    require(greedy_segment_steps >= 1 && greedy_segment_steps <= problem.horizon,
            "solve: greedy_segment_steps (the greedy segment H) must be in [1, T = " + std::to_string(problem.horizon) +
                "], got " + std::to_string(greedy_segment_steps));
    require(entry.support.segments, "solve: the greedy setting differentiates segments of the run, and " + method +
                                        " differentiates whole runs only");
  }
  entry.make(parsed)->check_supports(problem);
  if (theta0.defined()) problem.hyper.check_range(theta0, "solve: theta0");
  if (!resume) return;
  require(resume->method == method, "solve: the resume state is of method '" + resume->method + "', not '" + method + "'");
  const std::string recorded = recorded_options();
  require(resume->options_json == recorded, "solve: the resume state was made with the options " + resume->options_json +
                                                ", these are " + recorded);
  problem.hyper.check_theta(resume->theta, "solve: the resume state's θ");
  require(resume->next_step >= 0 && resume->rows.size() == static_cast<std::size_t>(resume->next_step),
          "solve: the resume state has " + std::to_string(resume->rows.size()) + " rows for " +
              std::to_string(resume->next_step) + " steps taken");
}

Summary solve(const BilevelProblem& problem, const SolveOptions& o) {
  o.validate(problem);
  const std::unique_ptr<Method> method = Registry::global().make_offline(o.method, o.method_options);
  const bool greedy = o.greedy_segment_steps > 0;
  const std::string recorded = o.recorded_options();
  Summary s;
  s.method = method->name();
  if (const std::string b = method->options().brief(); !b.empty()) s.method += " (" + b + ")";
  s.method += std::string(" + ") + outer_name(o.outer.kind);
  if (greedy) s.method += ", greedy (H = " + std::to_string(o.greedy_segment_steps) + ")";
  OuterResume from;
  Tensor last_good;  // θ of the last step not rejected: where a rejection goes back to
  if (o.resume) {
    s.rows = o.resume->rows;
    from = resume_of(*o.resume);
    last_good = o.resume->previous_theta;
  }

  // Per outer step: the row, the caller's look at it, and the state a resume continues from.
  auto record = [&](const OuterStep& step, const OuterOptimizer& opt) {
    SolveRow row = row_of(step, greedy);
    const bool go = o.on_step ? o.on_step(row, step.final_weights) : true;
    if (!step.rejected) last_good = step.theta;
    s.rows.push_back(std::move(row));
    if (!o.state_file.empty() || o.save) {
      SolveState state;
      state.method = o.method;
      state.options_json = recorded;
      state.theta = step.next_theta;
      state.previous_theta = last_good.defined() ? last_good : step.next_theta;
      state.outer = opt.state();
      state.next_step = step.step + 1;
      state.rejections = step.rejections;
      state.pass = step.next_pass;
      state.first_inner = step.next_first;
      state.start = step.next_start;
      state.rows = s.rows;
      state.stop_reason = step.stop_reason;  // a resume of a loop that had ended takes no more steps
      if (!o.state_file.empty()) save_state(state, o.state_file);
      if (o.save) o.save(state);
    }
    return go;
  };
  const OuterResume* at = o.resume ? &from : nullptr;
  OuterRun run;
  if (o.resume && !o.resume->stop_reason.empty()) {  // the loop had ended: nothing more to run
    run.theta = o.resume->theta;
    run.stop_reason = o.resume->stop_reason;
    run.rejections = o.resume->rejections;
    run.gave_up = run.rejections > o.outer.max_rejections;
  } else {
    run = greedy ? run_greedy(problem, o.greedy_segment_steps, *method, o.outer, o.theta0, record, at)
                 : run_outer(problem, *method, o.outer, o.theta0, record, at);
  }

  s.theta = run.theta;
  s.final_state = std::move(run.final_state);
  s.stop_reason = run.stop_reason;
  s.rejections = run.rejections;
  s.gave_up = run.gave_up;
  s.seconds = run.seconds;
  for (const SolveRow& row : s.rows) {
    if (row.rejected) s.failures.push_back(row.failure);
    accumulate(s.cost, row.cost);
  }
  const int best = best_row(s.rows, greedy);
  if (best >= 0) {
    const SolveRow& row = s.rows[static_cast<std::size_t>(best)];
    s.best_step = row.step;
    s.best_theta = Tensor::from(row.theta, Shape{static_cast<std::int64_t>(row.theta.size())}, DType::f64);
  }
  return s;
}

std::string Summary::brief() const {
  std::ostringstream b;
  b << method << ": " << rows.size() << " outer steps, " << rejections << " rejected";
  if (best_step >= 0)
    b << ", best L_val " << std::setprecision(4) << rows[static_cast<std::size_t>(best_step)].val_loss << " at step "
      << best_step;
  b << ", " << std::fixed << std::setprecision(1) << seconds << " s; " << (gave_up ? "" : "stopped: ") << stop_reason;
  return b.str();
}

std::string Summary::full_report(const Hyperparameters& h) const {
  std::ostringstream r;
  r << brief() << "\n\n" << std::setw(5) << "step" << std::setw(14) << "L_val" << std::setw(14) << "|dL/dtheta|"
    << std::setw(10) << "seconds" << "\n";
  for (const SolveRow& row : rows) {
    r << std::setw(5) << row.step;
    if (row.first_inner > 0) r << " (inner " << row.first_inner << ")";
    if (row.rejected) {
      r << "  rejected: " << row.failure.brief() << "\n";
      continue;
    }
    r << std::scientific << std::setprecision(6) << std::setw(14) << row.val_loss << std::setw(14) << row.hypergradient_norm
      << std::fixed << std::setprecision(2) << std::setw(10) << row.cost.seconds << (row.pass_end ? "  pass end" : "");
    if (!row.clipped.empty()) {
      r << "  clipped to range:";
      for (std::size_t k = 0; k < row.clipped.size(); ++k) r << (k ? ", " : " ") << h.entry_name(row.clipped[k]);
    }
    r << "\n";
    r << std::defaultfloat;
  }
  auto values = [&](const char* what, const Tensor& theta) {
    r << what << ":";
    for (std::int64_t i = 0; i < theta.numel(); ++i)
      r << (i ? ", " : " ") << h.entry_name(i) << " = " << std::setprecision(6) << h.value_at(theta, i);
    r << "\n";
  };
  r << std::defaultfloat << "\n";
  if (theta.defined()) values("final hyperparameters", theta);
  if (best_theta.defined()) values(("best hyperparameters (step " + std::to_string(best_step) + ")").c_str(), best_theta);
  r << "cost: " << cost.brief() << "\n";
  return r.str();
}

}  // namespace gradhpo::hpo
