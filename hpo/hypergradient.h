// What every hypergradient method returns: the hypergradient with respect to the raw
// hyperparameters θ, its parts, and what it cost.
//
//     dL_val/dθ = ∂_θ L_val  +  ∂_w L_val · dw_T/dθ
//                 (direct)      (indirect: what each method computes or approximates)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "unroll.h"

namespace gradhpo::hpo {

/// Time, passes and the peak bytes of the method's own buffers (not the model's activations).
struct Cost {
  double seconds = 0;
  std::int64_t gradient_evals = 0;      ///< reverse passes of L_train and L_val
  std::int64_t fwd_over_rev_passes = 0; ///< forward-over-reverse passes (H·v / H·Z, mixed products)
  std::int64_t directions = 0;          ///< tangent directions per forward-over-reverse pass
  std::int64_t step_passes = 0;         ///< optimizer-step evaluations (plain, JVP or VJP)
  std::size_t trajectory_bytes = 0;     ///< stored iterates S_t and gradients (peak)
  std::size_t info_buffer_bytes = 0;    ///< exact reversal's information buffer (peak)
  std::size_t checkpoint_bytes = 0;     ///< checkpoint snapshots and the segment being replayed (peak)
  std::size_t tangent_bytes = 0;        ///< forward mode's Z, C columns (peak)
  std::size_t peak_bytes = 0;           ///< peak of the sum of the above (and the adjoints)
  double info_bits_per_parameter_step = 0;  ///< exact reversal: information-buffer growth
  /// "1.23 s, 200 gradients, 100 fwd-over-rev (K = 1), peak 12.3 MB (trajectory 12.3 MB)".
  std::string brief() const;
};

/// total += part: times and pass counts add up; the byte fields keep the larger peak (the
/// parts ran one after another). What an outer loop or a search sums over its steps.
void accumulate(Cost& total, const Cost& part);

/// A slice of the inner run: from state `start` at step `first`, `steps` steps. The default is
/// the whole run from S_0. The greedy setting differentiates such slices with S_first held fixed.
struct Segment {
  InnerState start;               ///< empty: the problem's S_0
  std::int64_t first = 0;
  std::int64_t steps = -1;        ///< −1: to the horizon
};

struct Hypergradient {
  std::string method;             ///< e.g. "reverse (store-all)", "forward (K = 12)"
  double val_loss = 0;            ///< L_val(w_T)
  double final_train_loss = 0;    ///< L_train at the last inner step
  Tensor theta;                   ///< where it was computed [N]
  Tensor d_theta;                 ///< dL_val/dθ [N]
  Tensor direct;                  ///< ∂_θ L_val [N]
  Tensor d_w0;                    ///< dL_val/dw_start [P] (reverse mode only; undefined otherwise)
  InnerState final_state;         ///< S_T (the greedy setting carries it on)
  Cost cost;
  std::vector<std::string> notes; ///< what was used (Adam's ε placement, exact reversal's bits, ...)
};

/// Tracks the bytes a method holds and their peak.
class MemoryMeter {
 public:
  void add(std::size_t bytes) { now_ += bytes; peak_ = std::max(peak_, now_); }
  void remove(std::size_t bytes) { now_ -= std::min(now_, bytes); }
  std::size_t peak() const { return peak_; }

 private:
  std::size_t now_ = 0, peak_ = 0;
};

namespace detail {
/// Resolves a segment against the problem (S_0 and the horizon when left default) and checks it.
Segment resolve(const Unroll& u, const Segment* segment);
/// Copies the pass counts into the cost.
void record_counts(Cost& cost, const PassCounts& c);
/// The note that says how Adam's ε was placed (empty for SGD).
std::string adam_note(const BilevelProblem& p);
}  // namespace detail

}  // namespace gradhpo::hpo
