// Run state that outlives a process: what an interrupted outer loop (solve.h) or online method
// (online/online.h) needs to continue to the same bits, as typed, versioned records — never fields
// packed into a tensor (STYLE.md 17).
//
// The file format (one format for both records), little-endian as the machine writes it:
//     "GHPOSTAT"  u32 record type (1 BilevelState, 2 SolveState, 3 RunRecord)  u32 record version
//     u64 payload bytes  payload  u32 CRC-32 of everything before it
// The payload is a sequence of fields in the order save_state writes them: numbers as they are
// in memory, strings and vectors as a u64 length and the elements, tensors as a defined flag,
// dtype, rank, extents and their bytes in host memory. Writing goes through the run store's one
// commit primitive, commit_file (run_store.h: temporary file in the same folder, fsync, rename,
// fsync of the folder), so a reader sees the old state or the new one, never a mix; reading refuses a missing,
// truncated or corrupt file, another record type or version, or a checksum mismatch, naming the
// file and what is wrong, and returns nothing half-loaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "outer.h"
#include "trial.h"

namespace gradhpo::hpo {

/// Where an online method is: the optax-style state of online/online.h.
struct BilevelState {
  std::string method;               ///< the method that made it (checked when it is resumed)
  InnerState inner;                 ///< S_t: w and the optimizer's slots
  Tensor theta;                     ///< raw hyperparameters θ (float64)
  OuterState outer;                 ///< the outer optimizer's state
  std::int64_t step = 0;            ///< inner steps taken
  std::uint64_t rng = 0;            ///< RNG state for methods that sample (a seed advanced per use)
  std::map<std::string, Tensor> extra;  ///< method-specific tensors (EMA weights, last direction, ...)
  std::vector<double> train_losses; ///< L_train at each step taken
  std::vector<double> val_losses;   ///< L_val after each step (where the method evaluated it)
};

/// One outer step as the run keeps it (a row of Summary, solve.h; what results.json is made from).
struct SolveRow {
  int step = 0;                     ///< outer step (greedy: update) index
  std::int64_t first_inner = 0;     ///< greedy: the segment's first inner step
  std::vector<double> theta;        ///< raw θ the hypergradient was taken at
  std::vector<double> hypergradient;///< dL_val/dθ (empty when rejected)
  double val_loss = 0;
  double train_loss = 0;
  double hypergradient_norm = 0;
  Cost cost;
  bool rejected = false;
  FailedTrial failure;              ///< when rejected: what failed and where
  int pass = 0;                     ///< greedy: the pass over the horizon this segment belongs to
  bool pass_end = false;            ///< greedy: this segment reached T (a model trained for the whole horizon)
  /// What the caller scored at this step (SolveOptions::on_step: validation accuracy, a greedy
  /// pass end's test accuracy), kept with the row in the state so a resumed run still has them.
  std::map<std::string, double> metrics;
  /// Flat indices of θ that the update after this step moved back into their groups' ranges
  /// (OuterStep::clipped; the row's θ is where the step started, so these name entries of the next
  /// row's θ). Record version 2; empty in rows read from version 1.
  std::vector<std::int64_t> clipped;
};

/// Where an interrupted outer loop continues (solve.h), after `next_step` outer steps.
struct SolveState {
  static constexpr int kVersion = 3;  // 2: no stop_reason; 1: nor rows' `clipped` (both still read)
  std::string method;               ///< the registry name of the offline method
  std::string options_json;         ///< the method's options and the outer loop's, as recorded
  Tensor theta;                     ///< θ the next step starts from (float64)
  Tensor previous_theta;            ///< the last θ whose run did not diverge (a rejection goes back to it)
  OuterState outer;                 ///< the outer optimizer's state
  int next_step = 0;
  int rejections = 0;
  // Greedy: the pass, the next segment's first inner step and the state it starts from (empty: S_0).
  int pass = 0;
  std::int64_t first_inner = 0;
  InnerState start;
  std::vector<SolveRow> rows;       ///< every step taken so far (early stopping looks at all of them)
  /// Why the loop ended after the last row, when a rule other than max_steps ended it (the sign
  /// stopping rule, too many rejections; not a caller's stop); empty while it goes on. A resumed state
  /// that has one takes no more steps.
  std::string stop_reason;
};

/// One run as the run store (run_store.h) keeps it in its one file: what ran (the command and
/// the configuration that defines its results) and named sections of bytes — the outer loop's
/// SolveState ("solve"), a comparison's finished method rows ("method/<i>"), per-method
/// metadata ("meta/<i>"), ... each a record or a JSON text of the command that owns it.
struct RunRecord {
  static constexpr int kVersion = 1;
  std::string command;              ///< "hpo", "compare", "reproduce quickstart", ...
  std::string config_json;          ///< the options that define the run's results, as JSON
  std::map<std::string, std::string> sections;
};

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one: commit_file
/// (run_store.h), the one way the run store reaches disk. Throws Error naming the path.
void write_file_atomically(const std::string& path, const std::string& bytes);

/// BilevelState: record type 1, version kBilevelStateVersion.
constexpr int kBilevelStateVersion = 2;  // 1: zlib's CRC in the header, no record type
void save_state(const BilevelState& state, const std::string& path);
BilevelState load_state(const std::string& path);
/// The same record as bytes, and back (a run store's section); `where` names the source in messages.
std::string bilevel_state_bytes(const BilevelState& state);
BilevelState bilevel_state_from_bytes(const std::string& bytes, const std::string& where);
/// SolveState: record type 2, version SolveState::kVersion.
void save_state(const SolveState& state, const std::string& path);
SolveState load_solve_state(const std::string& path);
/// The same record as bytes (what save_state writes), and back; `where` names the source in messages.
std::string solve_state_bytes(const SolveState& state);
SolveState solve_state_from_bytes(const std::string& bytes, const std::string& where);
/// RunRecord: record type 3, version RunRecord::kVersion.
std::string run_record_bytes(const RunRecord& record);
RunRecord run_record_from_bytes(const std::string& bytes, const std::string& where);

namespace detail {
/// CRC-32 (the polynomial of zlib, PNG and gzip: reflected 0xEDB88320, initial and final ~0), so
/// crc32_of("123456789") = 0xCBF43926 as zlib's crc32 gives.
std::uint32_t crc32_of(const void* data, std::size_t bytes);
}  // namespace detail

}  // namespace gradhpo::hpo
