#include "outer.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>

#include "progress.h"

namespace gradhpo::hpo {

const char* outer_name(OuterKind k) {
  switch (k) {
    case OuterKind::sign: return "sign";
    case OuterKind::sgd: return "sgd";
    case OuterKind::adam: return "adam";
  }
  return "?";
}

OuterKind parse_outer(const std::string& name) {
  for (OuterKind k : {OuterKind::sign, OuterKind::sgd, OuterKind::adam})
    if (name == outer_name(k)) return k;
  throw Error("unknown outer optimizer '" + name + "' (expected sign, sgd or adam)");
}

void OuterOptions::validate(std::size_t groups) const {
  require(step.size() == 1 || step.size() == groups,
          "outer optimizer: " + std::to_string(step.size()) + " step sizes for " + std::to_string(groups) +
              " hyperparameter groups (give one, or one per group)");
  for (double s : step) require(std::isfinite(s) && s > 0, "outer optimizer: step size " + std::to_string(s) + " must be > 0");
  require(std::isfinite(clip) && clip >= 0, "outer optimizer: clip must be >= 0 (0: off)");
  require(max_steps >= 1, "outer optimizer: max_steps must be >= 1, got " + std::to_string(max_steps));
  require(sign_halvings_to_stop >= 0 && max_rejections >= 0, "outer optimizer: counts must be >= 0");
}

OuterOptimizer::OuterOptimizer(const Hyperparameters& hyper, OuterOptions options)
    : options_(std::move(options)), hyper_(&hyper) {
  options_.validate(hyper.count());
  const std::size_t N = static_cast<std::size_t>(hyper.size());
  state_.step.resize(N);
  for (std::size_t i = 0; i < N; ++i) {
    const std::size_t g = static_cast<std::size_t>(hyper.group_of(static_cast<std::int64_t>(i)));
    state_.step[i] = options_.step.size() == 1 ? options_.step[0] : options_.step[g];
  }
  state_.last_sign.assign(N, 0);
  state_.halvings.assign(N, 0);
  state_.m.assign(N, 0.0);
  state_.v.assign(N, 0.0);
}

std::vector<std::int64_t> OuterOptimizer::update(Tensor& theta, const Tensor& hypergradient) {
  const std::size_t N = state_.step.size();
  require(static_cast<std::size_t>(hypergradient.numel()) == N && static_cast<std::size_t>(theta.numel()) == N,
          "outer optimizer: θ and its hypergradient must have " + std::to_string(N) + " entries");
  ++state_.t;
  std::vector<double> th = theta.to_vector(), g = hypergradient.to_vector();
  for (std::size_t i = 0; i < N; ++i) {
    require(std::isfinite(g[i]), "outer optimizer: hypergradient " + std::to_string(i) + " is not finite");
    if (options_.clip > 0) g[i] = std::clamp(g[i], -options_.clip, options_.clip);
    switch (options_.kind) {
      case OuterKind::sign: {
        const int s = (g[i] > 0) - (g[i] < 0);
        if (state_.last_sign[i] != 0 && s != 0 && s != state_.last_sign[i]) {  // Algorithm 1: γ ← γ/2 on a flip
          state_.step[i] /= 2;
          ++state_.halvings[i];
        }
        if (s != 0) state_.last_sign[i] = s;
        th[i] -= state_.step[i] * s;
        break;
      }
      case OuterKind::sgd: th[i] -= state_.step[i] * g[i]; break;
      case OuterKind::adam: {
        const double b1 = options_.adam_beta1, b2 = options_.adam_beta2;
        state_.m[i] = b1 * state_.m[i] + (1 - b1) * g[i];
        state_.v[i] = b2 * state_.v[i] + (1 - b2) * g[i] * g[i];
        const double mh = state_.m[i] / (1 - std::pow(b1, static_cast<double>(state_.t)));
        const double vh = state_.v[i] / (1 - std::pow(b2, static_cast<double>(state_.t)));
        th[i] -= state_.step[i] * mh / (std::sqrt(vh) + options_.adam_eps);
        break;
      }
    }
  }
  std::vector<std::int64_t> clipped = hyper_->project(th);  // λ back into its range
  theta = Tensor::from(th, theta.shape(), theta.dtype());
  return clipped;
}

void OuterOptimizer::halve_steps() {
  for (double& s : state_.step) s /= 2;
}

bool OuterOptimizer::converged() const {
  if (options_.kind != OuterKind::sign || options_.sign_halvings_to_stop == 0) return false;
  for (int h : state_.halvings)
    if (h < options_.sign_halvings_to_stop) return false;
  return true;
}

std::string rejection_message(const FailedTrial& f) {
  std::ostringstream m;
  m << "outer step " << f.trial << ", inner step " << f.inner_step << ": " << f.reason << "; hyperparameters:";
  const std::size_t shown = std::min<std::size_t>(f.hyperparameters.size(), 12);
  for (std::size_t i = 0; i < shown; ++i)
    m << (i ? ", " : " ") << f.hyperparameters[i].first << " = " << f.hyperparameters[i].second;
  if (f.hyperparameters.size() > shown) m << ", ... (" << f.hyperparameters.size() << " in all)";
  return m.str();
}

std::string divergence_message(const Hyperparameters& h, const Tensor& theta, int outer_step, const InnerDivergence& e) {
  return rejection_message(failed_trial(h, theta, "", outer_step, e.step(), e.value(), e.what()));
}

namespace {

using Clock = std::chrono::steady_clock;

Tensor start_theta(const BilevelProblem& p, const Tensor& theta0) {
  if (theta0.defined()) p.hyper.check_range(theta0, "outer loop: theta0");
  return theta0.defined() ? theta0.clone().to(DType::f64) : p.hyper.initial(DType::f64);
}

/// The loop's own rule that ends it after a step ("" when none): more rejections than
/// max_rejections (the loop gives up), or, where `sign_rule` applies (the non-greedy loop), the
/// sign optimizer's stopping rule.
std::string stop_rule(const OuterRun& run, const OuterOptions& options, const OuterOptimizer& opt, const std::string& last,
                      bool sign_rule) {
  if (run.rejections > options.max_rejections)
    return "gave up: " + std::to_string(run.rejections) + " diverged inner runs (more than max-rejections = " +
           std::to_string(options.max_rejections) + "), θ is not a learned result; last: " + last;
  if (sign_rule && opt.converged())
    return "sign stopping rule: every step size halved " + std::to_string(options.sign_halvings_to_stop) + " times";
  return "";
}

/// Ends the run after `row` when the caller or the loop's own rule says so; returns whether it ended.
bool ends_after(const OuterStep& row, const OuterOptimizer& opt, const OuterCallback& callback, const OuterOptions& options,
                OuterRun& run) {
  if (callback && !callback(row, opt)) {
    run.stop_reason = "stopped by the caller";
    return true;
  }
  if (row.stop_reason.empty()) return false;
  run.stop_reason = row.stop_reason;
  run.gave_up = run.rejections > options.max_rejections;
  return true;
}

/// Shared by both loops: computes one hypergradient, or records a rejection. Returns true when
/// the step was taken.
bool outer_step(const BilevelProblem& p, const Method& method, OuterOptimizer& opt, Tensor& theta,
                const Segment* seg, OuterStep& row, OuterRun& run) {
  row.theta = theta.clone();
  try {
    Hypergradient hg = method.compute(p, theta, seg);
    row.hypergradient = hg.d_theta.to(DType::f64);
    row.val_loss = hg.val_loss;
    row.train_loss = hg.final_train_loss;
    row.cost = hg.cost;
    if (!hg.final_state.parts.empty()) row.final_weights = hg.final_state.w();
    run.final_state = std::move(hg.final_state);
    row.clipped = opt.update(theta, row.hypergradient);
    return true;
  } catch (const InnerDivergence& e) {
    row.rejected = true;
    // The divergence carries its step but not the offending value (it is in the reason's text).
    row.failure = failed_trial(p.hyper, theta, method.name(), row.step, e.step(), e.value(),
                               e.what());
    row.message = rejection_message(row.failure);
    ++run.rejections;
    opt.halve_steps();
    return false;
  }
}

/// θ, the optimizer's state and the rejection count from a resume point (checked first).
void apply_resume(const BilevelProblem& p, const OuterResume& resume, OuterOptimizer& opt, Tensor& theta, OuterRun& run) {
  p.hyper.check_theta(resume.theta, "resume");
  require(resume.state.step.size() == static_cast<std::size_t>(p.hyper.size()),
          "resume: the outer optimizer's state has " + std::to_string(resume.state.step.size()) + " step sizes for " +
              std::to_string(p.hyper.size()) + " hyperparameters");
  theta = resume.theta.clone().to(DType::f64);
  opt.state() = resume.state;
  run.rejections = resume.rejections;
}

}  // namespace

OuterRun run_outer(const BilevelProblem& problem, const Method& method, const OuterOptions& options,
                   const Tensor& theta0, const OuterCallback& callback, const OuterResume* resume) {
  const auto start = Clock::now();
  OuterOptimizer opt(problem.hyper, options);
  OuterRun run;
  Tensor theta = start_theta(problem, theta0);
  Tensor previous = theta.clone();
  int first = 0;
  if (resume) {
    apply_resume(problem, *resume, opt, theta, run);
    previous = resume->previous_theta.defined() ? resume->previous_theta.clone().to(DType::f64) : theta.clone();
    first = resume->next_step;
  }
  run.stop_reason = "max steps (" + std::to_string(options.max_steps) + ")";
  report_progress("outer", first, options.max_steps);
  for (int o = first; o < options.max_steps; ++o) {
    OuterStep row;
    row.step = o;
    if (outer_step(problem, method, opt, theta, nullptr, row, run)) {
      previous = row.theta;
    } else {
      theta = previous.clone();  // back to the last θ whose run did not diverge
    }
    row.next_theta = theta.clone();
    row.rejections = run.rejections;
    row.stop_reason = stop_rule(run, options, opt, row.message, /*sign_rule=*/true);
    run.steps.push_back(row);
    report_progress("outer", o + 1, options.max_steps);
    if (ends_after(row, opt, callback, options, run)) break;
  }
  run.theta = theta;
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

OuterRun run_greedy(const BilevelProblem& problem, std::int64_t segment_steps, const Method& method,
                    const OuterOptions& options, const Tensor& theta0, const OuterCallback& callback,
                    const OuterResume* resume) {
  require(method.support().segments, "greedy setting: " + method.name() +
                                         " differentiates whole runs only, not the segments the greedy setting updates on");
  require(segment_steps >= 1 && segment_steps <= problem.horizon,
          "greedy setting: the segment length H must be in [1, T = " + std::to_string(problem.horizon) + "], got " +
              std::to_string(segment_steps));
  const auto start = Clock::now();
  OuterOptimizer opt(problem.hyper, options);
  OuterRun run;
  Tensor theta = start_theta(problem, theta0);
  int update = 0, first_pass = 0;
  std::int64_t resume_first = 0;
  if (resume) {
    apply_resume(problem, *resume, opt, theta, run);
    require(resume->pass >= 0 && resume->first_inner >= 0 && resume->first_inner < problem.horizon,
            "resume: the greedy position (pass " + std::to_string(resume->pass) + ", inner step " +
                std::to_string(resume->first_inner) + ") is outside the horizon T = " + std::to_string(problem.horizon));
    update = resume->next_step;
    first_pass = resume->pass;
    resume_first = resume->first_inner;
  }
  run.stop_reason = "max passes (" + std::to_string(options.max_steps) + ")";
  const std::int64_t per_pass = (problem.horizon + segment_steps - 1) / segment_steps;
  const std::int64_t updates = per_pass * options.max_steps;  // without rejections
  report_progress("greedy", std::min<std::int64_t>(update, updates), updates);
  bool stop = false;
  for (int pass = first_pass; pass < options.max_steps && !stop; ++pass) {
    Segment seg;  // from S_0, or from where the interrupted run was
    const bool resumed = resume && pass == first_pass;
    if (resumed) seg.start = resume->start;
    for (std::int64_t first = resumed ? resume_first : 0; first < problem.horizon && !stop; first += segment_steps) {
      seg.first = first;
      seg.steps = std::min(segment_steps, problem.horizon - first);
      OuterStep row;
      row.step = update++;
      row.first_inner = first;
      row.pass = pass;
      const Tensor before = theta.clone();
      InnerState carried = seg.start;
      if (outer_step(problem, method, opt, theta, &seg, row, run)) {
        seg.start = run.final_state;  // training carries on from the segment's end
      } else {
        theta = before;
        seg.start = carried;  // retry the same segment with smaller steps
        first -= segment_steps;
      }
      row.next_theta = theta.clone();
      row.rejections = run.rejections;
      const bool pass_done = first + segment_steps >= problem.horizon;
      row.next_pass = pass_done ? pass + 1 : pass;
      row.next_first = pass_done ? 0 : first + segment_steps;
      if (!pass_done) row.next_start = seg.start;
      row.stop_reason = stop_rule(run, options, opt, row.message, /*sign_rule=*/false);
      run.steps.push_back(row);
      run.steps.back().next_start = InnerState();  // only the callback needs it
      report_progress("greedy", std::min<std::int64_t>(update, updates), updates);
      stop = ends_after(row, opt, callback, options, run);
    }
  }
  run.theta = theta;
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

}  // namespace gradhpo::hpo
