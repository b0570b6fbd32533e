// The run store: how a run's folder reaches disk so that a kill at any moment loses at most the
// step in progress and never mixes two runs or two points of one run.
//
// One commit primitive. Everything a run writes goes through commit_file: the bytes to a
// temporary file in the same folder, fsync, rename over the target, fsync of the folder. A
// reader (a resumed run, a user) sees the old file or the new one whole. We chose this atomic
// replacement over an append-only journal: a run's record is small (rows of θ and its
// hypergradient, a comparison's method rows, at most a greedy run's carried weights), an outer
// step or a trial takes seconds while rewriting the record takes milliseconds, and a whole-file
// replacement needs no replay, no torn-tail recovery and no compaction — the file on disk is
// always exactly one consistent record.
//
// One source of truth per run. The folder's run.state (a RunRecord, state.h, checksummed) holds
// the run's identity (command and the configuration that defines its results) and named
// sections: the outer loop's SolveState after every outer step, a comparison's row per finished
// method, a search's trials, per-method metadata. Each commit replaces the whole record, so a
// row and the optimizer state it belongs to are on disk together or not at all. Every other
// file (config.json, results.json/.csv, summary.json, plots, index.html) is derived: the command
// regenerates it from the record after each commit and at the start of --resume, so a kill
// between two derived writes is repaired by the next start.
//
// Folders. A folder that holds a run is refused unless it is resumed (FolderUse::resume) or
// replaced (FolderUse::overwrite); resuming a folder without a run is an error; every output
// folder is checked (exists or can be made, is writable) before any work.
//
// Fault injection. fail_at_commit(n), or $GRADHPO_FAULT_AT_COMMIT=n read at the first commit,
// makes the process kill itself (SIGKILL) inside the n-th commit_file, after the temporary file
// is written and before the rename — the widest window a crash can hit. The faults test
// (tests/faults) kills runs at every commit point in turn and checks that resuming them gives
// the uninterrupted run's bits.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "state.h"

namespace gradhpo::hpo {

/// The one commit primitive: `bytes` replace `path` atomically and durably (temporary file in
/// the same folder, fsync, rename, fsync of the folder). Throws Error naming the path.
void commit_file(const std::string& path, const std::string& bytes);
/// Fault injection: the n-th commit_file of this process (counting from 1) kills the process
/// before its rename; 0 turns it off. Overrides $GRADHPO_FAULT_AT_COMMIT.
void fail_at_commit(std::int64_t n);
/// How many commit_file calls this process has made (the n of the next one is this + 1).
std::int64_t commits_made();

enum class FolderUse : std::uint8_t {
  fresh,      ///< a new run: the folder may exist but must not hold a run
  resume,     ///< continue the run the folder holds (it must hold one)
  overwrite,  ///< replace the run the folder holds, if any
};

/// The store's file in a run folder.
inline constexpr const char* kRunStateFile = "run.state";

/// True when `folder` holds a run: its run.state, or an older build's checkpoint.bin.
bool holds_run(const std::string& folder);
/// Checks an output folder before any work: `flag` (e.g. "--out") names it in messages. Fresh:
/// refused when it holds a run (naming --resume and --overwrite); resume: refused when it does
/// not exist or holds no run; every use: the folder exists or can be created, and is writable
/// (a file is created and removed in it). Creates the folder.
void check_run_folder(const std::string& folder, FolderUse use, const std::string& flag = "--out");

/// The section of the k-th of a sequence of records: `prefix` and k in six digits
/// ("trial/000012"), so that sections sort in the order the run made them.
std::string numbered_section(const std::string& prefix, std::size_t k);

class RunStore {
 public:
  /// A new run in `folder` (checked by check_run_folder first): its record has `command` and
  /// `config_json` and no sections, and is committed at once, so the run's identity is on disk
  /// before any work. Overwrite: the old run.state is replaced by this one.
  static RunStore create(const std::string& folder, const std::string& command, const std::string& config_json,
                         FolderUse use = FolderUse::fresh, const std::string& flag = "--out");
  /// The run `folder` holds, for --resume: refused when there is none, when run.state is corrupt,
  /// or when it was made by another command than `command`. Removes the temporary files (*.tmp)
  /// of a commit that a kill interrupted.
  static RunStore open(const std::string& folder, const std::string& command, const std::string& flag = "--resume");

  const std::string& folder() const { return folder_; }
  std::string file(const std::string& name) const { return folder_ + "/" + name; }
  const RunRecord& record() const { return record_; }
  bool has(const std::string& section) const { return record_.sections.count(section) != 0; }
  /// A section's bytes; throws Error naming the section and the folder when there is none.
  const std::string& get(const std::string& section) const;
  /// The names of the sections that start with `prefix`, in order.
  std::vector<std::string> sections(const std::string& prefix) const;

  /// Sets sections (an empty map: none) and commits the whole record in one commit_file.
  void commit(const std::map<std::string, std::string>& changes);
  /// The same, the run's configuration replaced too (a resume that raised --outer-steps).
  void commit(const std::map<std::string, std::string>& changes, const std::string& config_json);
  /// A file derived from the record (results.json, index.html, a plot script) through commit_file;
  /// nothing is written when the file already holds `text`.
  void write_derived(const std::string& name, const std::string& text) const;

 private:
  RunStore(std::string folder, RunRecord record) : folder_(std::move(folder)), record_(std::move(record)) {}
  std::string folder_;
  RunRecord record_;
};

}  // namespace gradhpo::hpo
