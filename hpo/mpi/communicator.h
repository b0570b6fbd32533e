// gradhpo::mpi — the one seam between gradhpo and MPI (DESIGN.md, "Beyond one machine").
//
// A Communicator is a private duplicate of a communicator (MPI_COMM_WORLD, or an embedder's own
// MPI_Comm): our messages can never match an embedder's, and the duplicate's error handler is
// MPI_ERRORS_RETURN, so every failed MPI call becomes a gradhpo::Error naming the call and the
// rank ("MPI_Gatherv failed on rank 2 of 4: MPI_ERR_TRUNCATE: message truncated") instead of
// MPI's default of aborting the job. The only MPI type in gradhpo's public headers is the
// MPI_Comm this constructor takes.
//
// Sums are rank-ordered: every rank's contribution is gathered to rank 0 and added there in the
// order 0, 1, ..., N-1, then broadcast. MPI_Allreduce may add in any order (and does differ by
// algorithm and message size), so its float sums are not reproducible; ours are bit for bit for
// a given rank count, and for one rank the sum is the contribution itself. The cost — N·n values
// into rank 0 instead of a reduction tree's log N rounds — is what bitwise reproducibility buys;
// it is small next to the work between sums in every workload here (a training step, a trial).
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gradhpo::mpi {

/// MPI for the life of this object: MPI_Init_thread (MPI_THREAD_FUNNELED: only the thread that
/// called it makes MPI calls; OpenMP threads in between are fine) and MPI_Finalize at the end —
/// unless MPI was already initialized (an embedder's own MPI_Init), in which case it does nothing.
class Session {
 public:
  Session(int* argc, char*** argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

 private:
  bool owns_ = false;
};

/// Whether MPI is initialized and not finalized (a Session, or the embedder's MPI_Init).
bool active();

/// A message as received: who sent it, with which tag, and its bytes.
struct Message {
  int source = -1;
  int tag = -1;
  std::string bytes;
};

class Communicator {
 public:
  /// A duplicate of MPI_COMM_WORLD (MPI must be active: throws Error otherwise).
  static Communicator world();
  /// A duplicate of the embedder's `comm`, which stays theirs (its error handler untouched).
  explicit Communicator(MPI_Comm comm);

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  /// "rank 2 of 4", for messages.
  std::string where() const;

  void barrier() const;
  /// `bytes` of rank `root` on every rank.
  void broadcast(std::string& bytes, int root = 0) const;
  /// Every rank's `bytes` on `root`, in rank order (other ranks get an empty vector).
  std::vector<std::string> gather(const std::string& bytes, int root = 0) const;
  /// The element-wise sum over ranks, each element added in rank order (0, 1, ..., N-1) by the
  /// rank that owns its chunk, then gathered to every rank: the same bits on every rank,
  /// reproducible for a given rank count, 2(N-1)/N·n values through each rank's link (no root
  /// carries more). Every rank passes the same n.
  void sum_in_rank_order(double* values, std::int64_t n) const;
  void sum_in_rank_order(float* values, std::int64_t n) const;

  void send(int destination, int tag, const std::string& bytes) const;
  /// Blocks for a message from `source` (nullopt: any rank) with `tag` (nullopt: any tag).
  Message receive(std::optional<int> source = std::nullopt, std::optional<int> tag = std::nullopt) const;
  /// Like receive, but returns nullopt at once when no such message has arrived.
  std::optional<Message> try_receive(std::optional<int> source = std::nullopt,
                                     std::optional<int> tag = std::nullopt) const;

  /// Ends the whole job (MPI_Abort) after printing "gradhpo: rank r of N: <why>" to stderr: what
  /// a rank does with an error it cannot recover from, so that no other rank waits forever.
  [[noreturn]] void abort(const std::string& why) const;

 private:
  std::shared_ptr<void> handle_;  // the duplicated MPI_Comm, freed with the last copy
  MPI_Comm comm() const;
  /// Throws Error("<call> failed on rank r of N: <MPI's message>") unless rc is MPI_SUCCESS.
  void check(int rc, const char* call) const;
  int rank_ = 0, size_ = 1;
};

}  // namespace gradhpo::mpi
